package directory

import (
	"maps"
	"slices"
)

// The kinds of Change, named after the report.teamstatus events they cause
// (SPEC §3.5, §5).
const (
	ChangeTeamAdded     = "teamadded"
	ChangeTeamRemoved   = "teamremoved"
	ChangeTeamChanged   = "teamchanged"
	ChangeMemberAdded   = "memberadded"
	ChangeMemberRemoved = "memberremoved"
)

// Change is one difference between two directories that team-status
// watchers can see.
type Change struct {
	// Kind is one of the Change* constants.
	Kind string
	// TeamID and TeamName identify the team; for ChangeTeamRemoved the name
	// is the old one, otherwise the new one.
	TeamID   string
	TeamName string
	// MemberIDs are the agents concerned, members then supervisors, each
	// once: every member for ChangeTeamAdded and ChangeTeamRemoved, the
	// added or removed ones for ChangeMemberAdded and ChangeMemberRemoved,
	// none for ChangeTeamChanged.
	MemberIDs []string
}

// Diff lists what changed from old to cur, team by team in id order. For
// one team that exists in both, a rename gives ChangeTeamChanged first, then
// ChangeMemberRemoved, then ChangeMemberAdded. Membership counts members and
// supervisors alike: moving an agent from one list to the other changes
// nothing a watcher sees.
//
// An agent whose name or type changed, and who stays in a team, is reported
// as removed from that team and added again, so that watchers, which show
// memberName and memberType, pick up the new values. Changes of extension or
// password are not visible to watchers and are not reported. A nil
// directory counts as one with no teams. No change gives nil.
func Diff(old, cur *Directory) []Change {
	oldTeams, curTeams := teamsByID(old), teamsByID(cur)
	ids := slices.Sorted(maps.Keys(oldTeams))
	for id := range curTeams {
		if _, ok := oldTeams[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	var out []Change
	for _, id := range ids {
		o, had := oldTeams[id]
		n, has := curTeams[id]
		switch {
		case !has:
			out = append(out, Change{Kind: ChangeTeamRemoved, TeamID: id, TeamName: o.Name, MemberIDs: o.MemberIDs()})
		case !had:
			out = append(out, Change{Kind: ChangeTeamAdded, TeamID: id, TeamName: n.Name, MemberIDs: n.MemberIDs()})
		default:
			if o.Name != n.Name {
				out = append(out, Change{Kind: ChangeTeamChanged, TeamID: id, TeamName: n.Name})
			}
			before, after := o.MemberIDs(), n.MemberIDs()
			inBefore, inAfter := set(before), set(after)
			var removed, added []string
			for _, m := range before {
				if !inAfter[m] || agentChanged(old, cur, m) {
					removed = append(removed, m)
				}
			}
			for _, m := range after {
				if !inBefore[m] || agentChanged(old, cur, m) {
					added = append(added, m)
				}
			}
			if len(removed) > 0 {
				out = append(out, Change{Kind: ChangeMemberRemoved, TeamID: id, TeamName: n.Name, MemberIDs: removed})
			}
			if len(added) > 0 {
				out = append(out, Change{Kind: ChangeMemberAdded, TeamID: id, TeamName: n.Name, MemberIDs: added})
			}
		}
	}
	return out
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func teamsByID(d *Directory) map[string]Team {
	if d == nil {
		return nil
	}
	return d.teams
}

// agentChanged reports whether agent id looks different to watchers in cur
// than in old.
func agentChanged(old, cur *Directory, id string) bool {
	a, _ := old.Agent(id)
	b, _ := cur.Agent(id)
	return a.Name != b.Name || a.Type != b.Type
}
