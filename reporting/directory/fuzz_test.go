package directory

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics, that it fails only with a
// *ValidationError, and that what it accepts is consistent and survives a
// round trip through the file format.
func FuzzParse(f *testing.F) {
	f.Add(demoJSON)
	f.Add(encode(f, testAgents(), testTeams()))
	f.Add(doc(okAgents, okTeam))
	f.Add(doc(okAgents, `{"id": "t1", "name": "T", "members": ["1001", "2001"], "supervisors": ["2001"]}, {"id": "t2", "name": "E"}`))
	f.Add(doc(`{"id": "1", "name": "A", "type": "Boss", "passwordHash": "HASH", "x": 1}`, `{"id": "t1", "members": ["9"]}`))
	f.Add([]byte(`{"agents": [{"id": 1}], "teams": {}}`))
	f.Add([]byte(`{"agents": null, "teams": [null, 1, "x", []]}`))
	f.Add([]byte(`[{"agents": []}]`))
	f.Add([]byte("{\"agents\": [\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			if d != nil || !errors.As(err, &ve) || len(ve.Problems) == 0 || err.Error() == "" {
				t.Fatalf("Parse = %v, %T %v; want nil and a *ValidationError with problems", d, err, err)
			}
			return
		}
		agents, teams := d.Agents(), d.Teams()
		if len(agents) == 0 {
			t.Fatal("accepted a directory without agents")
		}
		if !slices.IsSortedFunc(agents, func(a, b Agent) int { return cmp.Compare(a.ID, b.ID) }) ||
			!slices.IsSortedFunc(teams, func(a, b Team) int { return cmp.Compare(a.ID, b.ID) }) {
			t.Fatal("Agents or Teams not sorted by id")
		}
		for _, a := range agents {
			if got, ok := d.Agent(a.ID); !ok || got != a || !a.Type.Valid() || a.ID == "" || a.Name == "" {
				t.Fatalf("agent %+v: lookup %+v, %v", a, got, ok)
			}
			if _, ok := checkHash(a.PasswordHash); !ok {
				t.Fatalf("agent %q accepted with a bad hash", a.ID)
			}
			for _, tm := range d.TeamsOf(a.ID) {
				if !slices.Contains(tm.MemberIDs(), a.ID) {
					t.Fatalf("TeamsOf(%q) lists team %q, which does not hold it", a.ID, tm.ID)
				}
			}
		}
		for _, tm := range teams {
			for _, id := range tm.MemberIDs() {
				if _, ok := d.Agent(id); !ok {
					t.Fatalf("team %q holds unknown agent %q", tm.ID, id)
				}
				if !slices.ContainsFunc(d.TeamsOf(id), func(x Team) bool { return x.ID == tm.ID }) {
					t.Fatalf("TeamsOf(%q) misses team %q", id, tm.ID)
				}
			}
		}
		again, err := json.Marshal(fileJSON{Agents: agents, Teams: teams})
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parsing the accepted directory: %v", err)
		}
		if changes := Diff(d, d2); changes != nil || !slices.Equal(d2.Agents(), agents) {
			t.Fatalf("round trip changed the directory: %+v", changes)
		}
	})
}
