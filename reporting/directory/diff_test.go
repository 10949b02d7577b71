package directory

import (
	"fmt"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	base := build(t, testAgents(), testTeams())
	for _, tc := range []struct {
		name   string
		agents func([]Agent) []Agent
		teams  func([]Team) []Team
		want   []Change
	}{
		{name: "no change", want: nil},
		{
			name:  "team order in the file does not matter",
			teams: func(ts []Team) []Team { slices.Reverse(ts); return ts },
		},
		{
			name: "team added",
			teams: func(ts []Team) []Team {
				return append(ts, Team{ID: "t4", Name: "Retention", Members: []string{"1004"}, Supervisors: []string{"3001"}})
			},
			want: []Change{{Kind: ChangeTeamAdded, TeamID: "t4", TeamName: "Retention", MemberIDs: []string{"1004", "3001"}}},
		},
		{
			name:  "team removed",
			teams: func(ts []Team) []Team { return slices.DeleteFunc(ts, func(t Team) bool { return t.ID == "t2" }) },
			want:  []Change{{Kind: ChangeTeamRemoved, TeamID: "t2", TeamName: "Support", MemberIDs: []string{"1003", "1004", "2001"}}},
		},
		{
			name:  "team renamed",
			teams: func(ts []Team) []Team { ts[1].Name = "Inside Sales"; return ts },
			want:  []Change{{Kind: ChangeTeamChanged, TeamID: "t1", TeamName: "Inside Sales"}},
		},
		{
			name:  "member added",
			teams: func(ts []Team) []Team { ts[1].Members = append(ts[1].Members, "1004"); return ts },
			want:  []Change{{Kind: ChangeMemberAdded, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"1004"}}},
		},
		{
			name:  "supervisor added",
			teams: func(ts []Team) []Team { ts[0].Supervisors = append(ts[0].Supervisors, "3001"); return ts },
			want:  []Change{{Kind: ChangeMemberAdded, TeamID: "t2", TeamName: "Support", MemberIDs: []string{"3001"}}},
		},
		{
			name:  "members removed",
			teams: func(ts []Team) []Team { ts[1].Members = []string{"1002"}; ts[1].Supervisors = nil; return ts },
			want:  []Change{{Kind: ChangeMemberRemoved, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"1001", "3001", "2001"}}},
		},
		{
			name: "member moved from members to supervisors",
			teams: func(ts []Team) []Team {
				ts[1].Members = []string{"1001", "1002"}
				ts[1].Supervisors = []string{"2001", "3001"}
				return ts
			},
		},
		{
			name:   "agent renamed: removed and added again in each of its teams",
			agents: func(as []Agent) []Agent { as[4].Name = "Sue Visor"; return as },
			want: []Change{
				{Kind: ChangeMemberRemoved, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"2001"}},
				{Kind: ChangeMemberAdded, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"2001"}},
				{Kind: ChangeMemberRemoved, TeamID: "t2", TeamName: "Support", MemberIDs: []string{"2001"}},
				{Kind: ChangeMemberAdded, TeamID: "t2", TeamName: "Support", MemberIDs: []string{"2001"}},
			},
		},
		{
			name:   "agent type changed",
			agents: func(as []Agent) []Agent { as[0].Type = TypeTeamLead; return as },
			want: []Change{
				{Kind: ChangeMemberRemoved, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"1001"}},
				{Kind: ChangeMemberAdded, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"1001"}},
			},
		},
		{
			name: "extension and password changes are invisible",
			agents: func(as []Agent) []Agent {
				as[0].Extension = "5999"
				as[1].PasswordHash = "$2a$04$" + testHash()[7:59] + "."
				return as
			},
		},
		{
			name:   "agent without teams added",
			agents: func(as []Agent) []Agent { return append(as, Agent{ID: "9001", Name: "Solo", Type: TypeAgent}) },
		},
		{
			name: "several changes, in team id order",
			teams: func(ts []Team) []Team {
				ts = slices.DeleteFunc(ts, func(t Team) bool { return t.ID == "t3" })
				ts[1].Name = "Sales EMEA"                // t1
				ts[1].Members = []string{"1002", "1004"} // t1: 1001, 3001 out; 1004 in
				return append(ts, Team{ID: "t0", Name: "New", Members: []string{}, Supervisors: []string{}})
			},
			want: []Change{
				{Kind: ChangeTeamAdded, TeamID: "t0", TeamName: "New"},
				{Kind: ChangeTeamChanged, TeamID: "t1", TeamName: "Sales EMEA"},
				{Kind: ChangeMemberRemoved, TeamID: "t1", TeamName: "Sales EMEA", MemberIDs: []string{"1001", "3001"}},
				{Kind: ChangeMemberAdded, TeamID: "t1", TeamName: "Sales EMEA", MemberIDs: []string{"1004"}},
				{Kind: ChangeTeamRemoved, TeamID: "t3", TeamName: "Empty"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agents, teams := testAgents(), testTeams()
			if tc.agents != nil {
				agents = tc.agents(agents)
			}
			if tc.teams != nil {
				teams = tc.teams(teams)
			}
			cur := build(t, agents, teams)
			got := Diff(base, cur)
			if !equalChanges(got, tc.want) {
				t.Errorf("Diff =\n%s\nwant\n%s", showChanges(got), showChanges(tc.want))
			}
			if again := Diff(base, cur); !equalChanges(again, got) {
				t.Errorf("Diff is not deterministic:\n%s\nthen\n%s", showChanges(got), showChanges(again))
			}
		})
	}
}

func TestDiffNil(t *testing.T) {
	d := build(t, testAgents(), testTeams())
	if got := Diff(d, d); got != nil {
		t.Errorf("Diff(d, d) = %s; want nil", showChanges(got))
	}
	if got := Diff(nil, nil); got != nil {
		t.Errorf("Diff(nil, nil) = %s; want nil", showChanges(got))
	}
	wantAdded := []Change{
		{Kind: ChangeTeamAdded, TeamID: "t1", TeamName: "Sales", MemberIDs: []string{"1001", "1002", "3001", "2001"}},
		{Kind: ChangeTeamAdded, TeamID: "t2", TeamName: "Support", MemberIDs: []string{"1003", "1004", "2001"}},
		{Kind: ChangeTeamAdded, TeamID: "t3", TeamName: "Empty"},
	}
	if got := Diff(nil, d); !equalChanges(got, wantAdded) {
		t.Errorf("Diff(nil, d) =\n%s\nwant\n%s", showChanges(got), showChanges(wantAdded))
	}
	if got := Diff(d, nil); len(got) != 3 || got[0].Kind != ChangeTeamRemoved || got[2].TeamID != "t3" {
		t.Errorf("Diff(d, nil) = %s; want three teamremoved", showChanges(got))
	}
}

// equalChanges compares changes, counting nil and empty MemberIDs as equal.
func equalChanges(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return x.Kind == y.Kind && x.TeamID == y.TeamID && x.TeamName == y.TeamName && slices.Equal(x.MemberIDs, y.MemberIDs)
	})
}

func showChanges(cs []Change) string {
	if len(cs) == 0 {
		return "  (none)"
	}
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("  %s %s %q %v\n", c.Kind, c.TeamID, c.TeamName, c.MemberIDs)
	}
	return s
}
