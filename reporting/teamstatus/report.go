package teamstatus

import (
	"encoding/json"
	"slices"
	"sync"

	"iproc/protocol"
	"iproc/reporting/directory"
)

// Deliver hands frames to watcher w; the frames of a memberstatuschanged
// carry the seq of the agent.state event behind them, those of a snapshot
// or a reload carry none.
type Deliver[W comparable] func(w W, frames [][]byte)

// Report is the live team-status report for watchers of type W (a session
// pointer, say). Make one with New.
type Report[W comparable] struct {
	mu       sync.Mutex
	dir      *directory.Directory
	states   map[string]State      // agent id → latest state
	watchers map[string]map[W]bool // team id → its watchers
	watching map[W]string          // every watcher → its agent id, also those in no team (yet)
}

// New makes a report over dir with every agent logged out.
func New[W comparable](dir *directory.Directory) *Report[W] {
	return &Report[W]{dir: dir, states: map[string]State{}, watchers: map[string]map[W]bool{}, watching: map[W]string{}}
}

// Restore sets the agents' states, as loaded from the projection at start.
func (r *Report[W]) Restore(states []State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range states {
		r.states[st.AgentID] = st
	}
}

// Watch makes w a watcher of agentID's teams without a snapshot (a watch
// restored from the log or mirrored from another instance).
func (r *Report[W]) Watch(w W, agentID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchLocked(w, agentID)
}

// Begin makes w a watcher of agentID's teams and hands it, through send, a
// teamadded snapshot per team; no live change reaches w before its
// snapshot.
func (r *Report[W]) Begin(w W, agentID string, send func(frames [][]byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var frames [][]byte
	for _, team := range r.dir.TeamsOf(agentID) {
		frames = append(frames, teamFrame(protocol.EventTeamAdded, 0, agentID, team, r.membersLocked(team.MemberIDs())))
	}
	send(frames)
	r.watchLocked(w, agentID)
}

// End stops w's watch.
func (r *Report[W]) End(w W) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unwatchLocked(w)
}

// Watching reports whether w watches.
func (r *Report[W]) Watching(w W) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.watching[w]
	return ok
}

// Watchers returns the number of watchers.
func (r *Report[W]) Watchers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watching)
}

// Apply records st, the state committed at seq, and delivers a
// memberstatuschanged per shared team to every watcher of the agent's
// teams. own, when the agent's own session is known, is delivered to as
// well, with ownFrames first (its session.stateChanged) — in one call, so
// that the watcher that is also the agent gets both frames of the one seq.
func (r *Report[W]) Apply(seq uint64, st State, own W, hasOwn bool, ownFrames [][]byte, deliver Deliver[W]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[st.AgentID] = st
	enc := newStatusEncoder(r.dir, seq, st)
	seen := map[W]bool{}
	for _, team := range enc.agentTeams {
		for w := range r.watchers[team.ID] {
			if seen[w] {
				continue
			}
			seen[w] = true
			frames := enc.frames(r.watching[w])
			if hasOwn && w == own {
				frames = append(slices.Clip(ownFrames), frames...)
			}
			deliver(w, frames)
		}
	}
	if hasOwn && !seen[own] && len(ownFrames) > 0 {
		deliver(own, ownFrames)
	}
}

// StatusFrames returns the memberstatuschanged frames that w, watching as
// agentID, gets for st committed at seq: none when w does not watch. Replay
// uses it, event by event.
func (r *Report[W]) StatusFrames(w W, seq uint64, st State) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	agentID, ok := r.watching[w]
	if !ok {
		return nil
	}
	return newStatusEncoder(r.dir, seq, st).frames(agentID)
}

// SetDirectory replaces the directory, a reload committed at seq, and tells
// each watcher what changed for it (see reloadFramesLocked); the events
// carry seq.
func (r *Report[W]) SetDirectory(seq uint64, dir *directory.Directory, deliver Deliver[W]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.dir
	r.dir = dir
	changes := changesByTeam(old, dir)
	for w, agentID := range r.watching {
		if frames := r.reloadFramesLocked(seq, old, dir, changes, agentID); len(frames) > 0 {
			deliver(w, frames)
		}
	}
	// The watchers are indexed by the teams of the directory in force.
	clear(r.watchers)
	for w, agentID := range r.watching {
		r.indexLocked(w, agentID)
	}
}

// ReloadFrames returns the events that w got, or would have got, for the
// reload from old to cur committed at seq: none when w does not watch.
// Replay uses it; members show their states as they are now.
func (r *Report[W]) ReloadFrames(w W, seq uint64, old, cur *directory.Directory) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	agentID, ok := r.watching[w]
	if !ok {
		return nil
	}
	return r.reloadFramesLocked(seq, old, cur, changesByTeam(old, cur), agentID)
}

func changesByTeam(old, cur *directory.Directory) map[string][]directory.Change {
	byTeam := map[string][]directory.Change{}
	for _, c := range directory.Diff(old, cur) {
		byTeam[c.TeamID] = append(byTeam[c.TeamID], c)
	}
	return byTeam
}

// reloadFramesLocked is what watcher agentID is told of a reload from old
// to cur: a team it now sees → teamadded, one it no longer sees →
// teamremoved, and for a team it still sees the changes directory.Diff
// lists (teamchanged, memberremoved, memberadded; a member whose name or
// type changed is removed and added again). r.mu must be held.
func (r *Report[W]) reloadFramesLocked(seq uint64, old, cur *directory.Directory, changes map[string][]directory.Change, agentID string) [][]byte {
	before, after := old.TeamsOf(agentID), cur.TeamsOf(agentID)
	var frames [][]byte
	for _, team := range after {
		if !hasTeam(before, team.ID) {
			frames = append(frames, teamFrame(protocol.EventTeamAdded, seq, agentID, team, r.membersOfLocked(cur, team.MemberIDs())))
			continue
		}
		for _, c := range changes[team.ID] {
			frames = append(frames, r.changeFrameLocked(seq, cur, agentID, team, c))
		}
	}
	for _, team := range before {
		if !hasTeam(after, team.ID) {
			frames = append(frames, teamFrame(protocol.EventTeamRemoved, seq, agentID, team, nil))
		}
	}
	return frames
}

// changeFrameLocked is the event of change c of team (as it is in cur) for
// watcher.
func (r *Report[W]) changeFrameLocked(seq uint64, cur *directory.Directory, watcher string, team directory.Team, c directory.Change) []byte {
	switch c.Kind {
	case directory.ChangeMemberAdded:
		return teamFrame(protocol.EventMemberAdded, seq, watcher, team, r.membersOfLocked(cur, c.MemberIDs))
	case directory.ChangeMemberRemoved:
		removed := make([]removedMember, len(c.MemberIDs))
		for i, id := range c.MemberIDs {
			removed[i] = removedMember{MemberID: id}
		}
		return teamFrame(protocol.EventMemberRemoved, seq, watcher, team, removed)
	default: // teamchanged
		return teamFrame(protocol.EventTeamChanged, seq, watcher, team, nil)
	}
}

func hasTeam(teams []directory.Team, id string) bool {
	return slices.ContainsFunc(teams, func(t directory.Team) bool { return t.ID == id })
}

// watchLocked indexes w under agentID's teams; r.mu must be held.
func (r *Report[W]) watchLocked(w W, agentID string) {
	r.unwatchLocked(w)
	r.watching[w] = agentID
	r.indexLocked(w, agentID)
}

// indexLocked files w under agentID's teams; r.mu must be held.
func (r *Report[W]) indexLocked(w W, agentID string) {
	for _, team := range r.dir.TeamsOf(agentID) {
		if r.watchers[team.ID] == nil {
			r.watchers[team.ID] = map[W]bool{}
		}
		r.watchers[team.ID][w] = true
	}
}

// unwatchLocked drops w; r.mu must be held.
func (r *Report[W]) unwatchLocked(w W) {
	agentID, ok := r.watching[w]
	if !ok {
		return
	}
	delete(r.watching, w)
	for _, team := range r.dir.TeamsOf(agentID) {
		delete(r.watchers[team.ID], w)
		if len(r.watchers[team.ID]) == 0 {
			delete(r.watchers, team.ID)
		}
	}
}

// membersLocked describes the agents ids with their current states; r.mu
// must be held.
func (r *Report[W]) membersLocked(ids []string) []member { return r.membersOfLocked(r.dir, ids) }

// membersOfLocked is membersLocked with the names and types of dir.
func (r *Report[W]) membersOfLocked(dir *directory.Directory, ids []string) []member {
	out := make([]member, 0, len(ids))
	for _, id := range ids {
		out = append(out, memberOf(dir, id, r.states[id]))
	}
	return out
}

// member is a team member as teamadded, memberadded and
// memberstatuschanged show it (seed 002), with since, when the state began,
// as an extension; every other field is always present.
type member struct {
	MemberID   string `json:"memberId"`
	MemberType string `json:"memberType"`
	MemberName string `json:"memberName"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Since      string `json:"since,omitempty"`
}

// memberOf describes agent id in state st (zero: never logged in).
func memberOf(dir *directory.Directory, id string, st State) member {
	m := member{MemberID: id, Status: protocol.StateLoggedOut}
	if a, ok := dir.Agent(id); ok {
		m.MemberType, m.MemberName = string(a.Type), a.Name
	}
	if st.State != "" {
		m.Status, m.Reason = st.State, st.Reason
	}
	if !st.Since.IsZero() {
		m.Since = FormatTime(st.Since)
	}
	return m
}

// removedMember is a member as memberremoved shows it (seed 002): its id
// only.
type removedMember struct {
	MemberID string `json:"memberId"`
}

// teamView is data.team of a team-status event; Members is nil for
// teamchanged and teamremoved, which carry none.
type teamView struct {
	TeamID   string `json:"teamId"`
	TeamName string `json:"teamName"`
	Members  any    `json:"members,omitempty"`
}

type teamEvent struct {
	AgentID string   `json:"agentId"`
	Team    teamView `json:"team"`
}

// teamFrame encodes a team-status event for watcher, with seq (0: none);
// members is a []member, a []removedMember, or nil.
func teamFrame(name string, seq uint64, watcher string, team directory.Team, members any) []byte {
	data, _ := json.Marshal(teamEvent{AgentID: watcher, Team: teamView{TeamID: team.ID, TeamName: team.Name, Members: members}})
	return protocol.EventFrame(name, seq, data)
}

// statusEncoder builds the memberstatuschanged frames of one agent-state
// event for any number of watchers: data.team is encoded once per team,
// and only data.agentId differs between watchers.
type statusEncoder struct {
	dir        *directory.Directory
	seq        uint64
	st         State
	agentTeams []directory.Team           // the teams the agent belongs to or supervises
	teams      map[string]json.RawMessage // team id → encoded data.team
}

func newStatusEncoder(dir *directory.Directory, seq uint64, st State) *statusEncoder {
	return &statusEncoder{dir: dir, seq: seq, st: st, agentTeams: dir.TeamsOf(st.AgentID)}
}

// frames returns a frame for each team that both watcher and the agent
// belong to (as members or supervisors).
func (e *statusEncoder) frames(watcher string) [][]byte {
	if len(e.agentTeams) == 0 {
		return nil
	}
	var frames [][]byte
	for _, team := range e.dir.TeamsOf(watcher) {
		if !hasTeam(e.agentTeams, team.ID) {
			continue
		}
		w, _ := json.Marshal(watcher)
		t := e.team(team)
		data := make([]byte, 0, len(`{"agentId":,"team":}`)+len(w)+len(t))
		data = append(append(append(append(append(data, `{"agentId":`...), w...), `,"team":`...), t...), '}')
		frames = append(frames, protocol.EventFrame(protocol.EventMemberStatusChanged, e.seq, data))
	}
	return frames
}

// team returns data.team for team: its id and name and the agent as its
// only member.
func (e *statusEncoder) team(team directory.Team) json.RawMessage {
	if b, ok := e.teams[team.ID]; ok {
		return b
	}
	b, _ := json.Marshal(teamView{TeamID: team.ID, TeamName: team.Name, Members: []member{memberOf(e.dir, e.st.AgentID, e.st)}})
	if e.teams == nil {
		e.teams = map[string]json.RawMessage{}
	}
	e.teams[team.ID] = b
	return b
}
