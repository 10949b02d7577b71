package session

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"iproc/protocol"
	"iproc/reporting/store"
	"iproc/resources/directory"
)

// teamStatus is the live team-status report: the current state of every
// agent and which sessions watch which teams. Its mutex orders snapshots
// (report.teamstatus.begin) against live changes, so a watcher never sees a
// change older than its snapshot.
type teamStatus struct {
	mu       sync.Mutex
	states   map[string]agentState            // agent id → latest state
	watchers map[string]map[*Session]struct{} // team id → watching sessions
	// watching holds every watching session, also those in no team (yet):
	// a directory reload may give them one.
	watching map[*Session]struct{}
}

func (t *teamStatus) init() {
	t.states = map[string]agentState{}
	t.watchers = map[string]map[*Session]struct{}{}
	t.watching = map[*Session]struct{}{}
}

// watch indexes s under each of teams; t.mu must be held (or the registry
// not yet shared).
func (t *teamStatus) watch(s *Session, teams []directory.Team) {
	t.watching[s] = struct{}{}
	for _, team := range teams {
		set := t.watchers[team.ID]
		if set == nil {
			set = map[*Session]struct{}{}
			t.watchers[team.ID] = set
		}
		set[s] = struct{}{}
	}
}

func (t *teamStatus) unwatchLocked(s *Session) {
	delete(t.watching, s)
	for id, set := range t.watchers {
		delete(set, s)
		if len(set) == 0 {
			delete(t.watchers, id)
		}
	}
}

func (t *teamStatus) unwatch(s *Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unwatchLocked(s)
}

// member is a team member as teamadded, memberadded and
// memberstatuschanged show it (seed 002): every field is always present.
type member struct {
	MemberID   string `json:"memberId"`
	MemberType string `json:"memberType"`
	MemberName string `json:"memberName"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
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

// memberIDs lists a team's members and supervisors, each once.
func memberIDs(team directory.Team) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{team.Members, team.Supervisors} {
		for _, id := range list {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// memberOf describes agent id with its current state; t.mu must be held.
func (t *teamStatus) memberOf(dir *directory.Directory, id string) member {
	m := member{MemberID: id, Status: protocol.StateLoggedOut}
	if a, ok := dir.Agent(id); ok {
		m.MemberType, m.MemberName = string(a.Type), a.Name
	}
	if st, ok := t.states[id]; ok {
		m.Status, m.Reason = st.State, st.Reason
	}
	return m
}

// teamFrame encodes a team-status event for watcher; members is a
// []member, a []removedMember, or nil for an event without members.
func teamFrame(name string, seq uint64, watcher string, team directory.Team, members any) []byte {
	data, _ := json.Marshal(teamEvent{AgentID: watcher, Team: teamView{TeamID: team.ID, TeamName: team.Name, Members: members}})
	return protocol.EventFrame(name, seq, data)
}

// memberStatusFrames returns a memberstatuschanged frame for each team
// watcher s watches that holds the agent of st.
func (r *Registry) memberStatusFrames(s *Session, seq uint64, st agentState) [][]byte {
	return newStatusEncoder(r.Directory(), seq, st).frames(s.Agent.ID)
}

// statusEncoder builds the memberstatuschanged frames of one agent-state
// event for any number of watchers: data.team is encoded once per team,
// and only data.agentId differs between watchers.
type statusEncoder struct {
	dir        *directory.Directory
	seq        uint64
	st         agentState
	agentTeams []directory.Team           // the teams the agent belongs to or supervises
	teams      map[string]json.RawMessage // team id → encoded data.team
}

func newStatusEncoder(dir *directory.Directory, seq uint64, st agentState) *statusEncoder {
	return &statusEncoder{dir: dir, seq: seq, st: st, agentTeams: dir.TeamsOf(st.AgentID)}
}

// frames returns a frame for each team that both watcher and the agent
// belong to (as members or supervisors), found by team id without scanning
// the members.
func (e *statusEncoder) frames(watcher string) [][]byte {
	if len(e.agentTeams) == 0 {
		return nil
	}
	var frames [][]byte
	for _, team := range e.dir.TeamsOf(watcher) {
		if !slices.ContainsFunc(e.agentTeams, func(t directory.Team) bool { return t.ID == team.ID }) {
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
	m := member{MemberID: e.st.AgentID, Status: e.st.State, Reason: e.st.Reason}
	if a, ok := e.dir.Agent(e.st.AgentID); ok {
		m.MemberType, m.MemberName = string(a.Type), a.Name
	}
	b, _ := json.Marshal(teamView{TeamID: team.ID, TeamName: team.Name, Members: []member{m}})
	if e.teams == nil {
		e.teams = map[string]json.RawMessage{}
	}
	e.teams[team.ID] = b
	return b
}

// dispatchState applies an agent.state event and delivers it to the agent's
// own session (session.stateChanged, as framesFor does) and to the watchers
// of its teams (memberstatuschanged, encoded once per team for all).
func (r *Registry) dispatchState(ev store.Event, cache *eventCache) {
	st, ok := cache.state(ev)
	if !ok {
		return
	}
	r.team.mu.Lock()
	defer r.team.mu.Unlock()
	r.team.states[st.AgentID] = st
	targets := map[*Session]struct{}{}
	r.mu.RLock()
	if own := r.byAgent[st.AgentID]; own != nil {
		targets[own] = struct{}{}
	}
	r.mu.RUnlock()
	enc := newStatusEncoder(r.Directory(), ev.Seq, st)
	for _, team := range enc.agentTeams {
		for s := range r.team.watchers[team.ID] {
			targets[s] = struct{}{}
		}
	}
	for s := range targets {
		var frames [][]byte
		if s.Agent.ID == st.AgentID {
			frames = append(frames, cache.stateChanged(ev, st))
		}
		if s.isWatching() {
			frames = append(frames, enc.frames(s.Agent.ID)...)
		}
		if len(frames) > 0 {
			s.deliver(ev.Seq, frames)
		}
	}
}

// BeginTeamStatus starts the team-status report for s: it sends success
// (the already-encoded answer), then one teamadded per team with every
// member, and from then on the live changes.
func (r *Registry) BeginTeamStatus(ctx context.Context, s *Session, success []byte) error {
	dir := r.Directory()
	teams := dir.TeamsOf(s.Agent.ID)
	r.team.mu.Lock()
	s.mu.Lock()
	s.watching = true
	if s.conn != nil {
		s.conn.Send(success)
		for _, team := range teams {
			members := []member{}
			for _, id := range memberIDs(team) {
				members = append(members, r.team.memberOf(dir, id))
			}
			s.conn.Send(teamFrame(protocol.EventTeamAdded, 0, s.Agent.ID, team, members))
		}
	}
	s.mu.Unlock()
	r.team.unwatchLocked(s)
	r.team.watch(s, teams)
	r.team.mu.Unlock()
	return r.persist(ctx, s)
}

// EndTeamStatus stops the team-status report for s.
func (r *Registry) EndTeamStatus(ctx context.Context, s *Session) error {
	r.team.mu.Lock()
	s.mu.Lock()
	s.watching = false
	s.mu.Unlock()
	r.team.unwatchLocked(s)
	r.team.mu.Unlock()
	return r.persist(ctx, s)
}

// SetDirectory replaces the directory (a reload) and tells each watcher what
// changed for it: teamadded, teamremoved, teamchanged, memberadded,
// memberremoved.
func (r *Registry) SetDirectory(dir *directory.Directory) {
	r.team.mu.Lock()
	defer r.team.mu.Unlock()
	old := r.dir.Swap(dir)
	watchers := make([]*Session, 0, len(r.team.watching))
	for s := range r.team.watching {
		watchers = append(watchers, s)
	}
	for _, s := range watchers {
		for _, f := range r.reloadFrames(old, dir, s.Agent.ID) {
			s.send(f)
		}
		r.team.unwatchLocked(s)
		r.team.watch(s, dir.TeamsOf(s.Agent.ID))
	}
}

// reloadFrames compares what watcher w saw in old with what it sees in new.
func (r *Registry) reloadFrames(old, cur *directory.Directory, w string) [][]byte {
	oldTeams := map[string]directory.Team{}
	for _, t := range old.TeamsOf(w) {
		oldTeams[t.ID] = t
	}
	var frames [][]byte
	for _, t := range cur.TeamsOf(w) {
		before, had := oldTeams[t.ID]
		delete(oldTeams, t.ID)
		if !had {
			members := []member{}
			for _, id := range memberIDs(t) {
				members = append(members, r.team.memberOf(cur, id))
			}
			frames = append(frames, teamFrame(protocol.EventTeamAdded, 0, w, t, members))
			continue
		}
		if before.Name != t.Name {
			frames = append(frames, teamFrame(protocol.EventTeamChanged, 0, w, t, nil))
		}
		was := map[string]bool{}
		for _, id := range memberIDs(before) {
			was[id] = true
		}
		var added []member
		for _, id := range memberIDs(t) {
			if !was[id] {
				added = append(added, r.team.memberOf(cur, id))
			}
			delete(was, id)
		}
		if len(added) > 0 {
			frames = append(frames, teamFrame(protocol.EventMemberAdded, 0, w, t, added))
		}
		var removed []removedMember
		for _, id := range memberIDs(before) {
			if was[id] {
				removed = append(removed, removedMember{MemberID: id})
			}
		}
		if len(removed) > 0 {
			frames = append(frames, teamFrame(protocol.EventMemberRemoved, 0, w, t, removed))
		}
	}
	for _, t := range old.TeamsOf(w) {
		if _, gone := oldTeams[t.ID]; gone {
			frames = append(frames, teamFrame(protocol.EventTeamRemoved, 0, w, t, nil))
		}
	}
	return frames
}
