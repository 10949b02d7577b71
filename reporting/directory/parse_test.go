package directory

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// doc builds a directory file from raw agents and teams JSON; HASH stands
// for the test hash.
func doc(agents, teams string) []byte {
	return withHash(fmt.Sprintf(`{"agents": [%s], "teams": [%s]}`, agents, teams))
}

// withHash replaces every HASH in s by the test hash.
func withHash(s string) []byte { return []byte(strings.ReplaceAll(s, "HASH", testHash())) }

// okAgents are four valid agents: 1001–1003 and supervisor 2001.
const okAgents = `{"id": "1001", "name": "Ann", "type": "Agent", "extension": "5001", "passwordHash": "HASH"},
	{"id": "1002", "name": "Bob", "type": "Agent", "extension": "5002", "passwordHash": "HASH"},
	{"id": "1003", "name": "Cy", "type": "Agent", "passwordHash": "HASH"},
	{"id": "2001", "name": "Sue", "type": "Supervisor", "passwordHash": "HASH"}`

const okTeam = `{"id": "t1", "name": "Sales", "members": ["1001", "1002"], "supervisors": ["2001"]}`

func TestParseInvalid(t *testing.T) {
	if _, err := Parse(doc(okAgents, okTeam)); err != nil {
		t.Fatalf("the base document is invalid: %v", err)
	}
	badHash := "$2a$04$tooShort" + strings.Repeat("x", 20)
	for _, tc := range []struct {
		name string
		in   []byte
		want string // the whole problem, item name included
	}{
		{"syntax error", []byte("{\"agents\": [\n  {\"id\": \"1\",}\n]}"), "invalid JSON at line 2, column 14: invalid character '}'"},
		{"truncated", []byte(`{"agents": [`), "invalid JSON at line 1, column 12: unexpected end of JSON input"},
		{"trailing data", []byte(`{"agents": []} {}`), "invalid JSON at line 1, column 16"},
		{"array", []byte(`[]`), "the directory must be a JSON object"},
		{"null", []byte(`null`), "the directory must be a JSON object"},
		{"empty input", []byte(``), "invalid JSON at line 1, column 1: unexpected end of JSON input"},
		{"unknown top-level field", []byte(strings.Replace(string(doc(okAgents, okTeam)), `"teams"`, `"groups"`, 1)),
			`unknown top-level field "groups" (a directory has only "agents", "teams" and "reasonCodes")`},
		{"no agents", []byte(`{"teams": []}`), `"agents" is required`},
		{"empty agents", doc(``, ``), `"agents" is empty: a directory needs at least one agent`},
		{"agents not an array", []byte(`{"agents": {"id": "1"}}`), `"agents" must be an array`},
		{"agent not an object", doc(okAgents+`, "1004"`, ``), `agents[4]: must be a JSON object`},
		{"unknown agent field", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "passwordHash": "HASH", "Password": "x"}`, ``),
			`agents[4] (id "1004"): unknown field "Password" (known: id, name, type, extension, passwordHash, customerData)`},
		{"field in the wrong case", doc(okAgents+`, {"ID": "1004", "name": "Di", "type": "Agent", "passwordHash": "HASH"}`, ``),
			`agents[4]: unknown field "ID"`},
		{"missing id", doc(okAgents+`, {"name": "Di", "type": "Agent", "passwordHash": "HASH"}`, ``), `agents[4]: "id" is required`},
		{"numeric id", doc(`{"id": 1004, "name": "Di", "type": "Agent", "passwordHash": "HASH"}`, ``),
			`agents[0]: "id" must be a string: write it in quotes, "1004"`},
		{"id with spaces", doc(okAgents+`, {"id": "1004 ", "name": "Di", "type": "Agent", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004 "): id has leading or trailing spaces`},
		{"missing name", doc(okAgents+`, {"id": "1004", "type": "Agent", "passwordHash": "HASH"}`, ``), `agents[4] (id "1004"): "name" is required`},
		{"blank name", doc(okAgents+`, {"id": "1004", "name": "  ", "type": "Agent", "passwordHash": "HASH"}`, ``), `agents[4] (id "1004"): "name" is required`},
		{"name not a string", doc(okAgents+`, {"id": "1004", "name": ["Di"], "type": "Agent", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): "name" must be a string`},
		{"missing type", doc(okAgents+`, {"id": "1004", "name": "Di", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): "type" is required (Agent, Supervisor or TeamLead)`},
		{"bad type", doc(`{"id": "1001", "name": "A", "type": "Agent", "passwordHash": "HASH"},
			{"id": "1002", "name": "B", "type": "Agent", "passwordHash": "HASH"},
			{"id": "1003", "name": "C", "type": "Agent", "passwordHash": "HASH"},
			{"id": "1004", "name": "D", "type": "Boss", "passwordHash": "HASH"}`, ``),
			`agents[3] (id "1004"): type "Boss" is not Agent, Supervisor or TeamLead`},
		{"type in the wrong case", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "agent", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): type "agent" is not Agent, Supervisor or TeamLead`},
		{"duplicate agent id", doc(okAgents+`, {"id": "1002", "name": "Di", "type": "Agent", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1002"): duplicate agent id (agents[1] has it too)`},
		{"duplicate extension", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "extension": "5001", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): extension "5001" is already agents[0]'s`},
		{"extension with spaces", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "extension": " 5004", "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): extension " 5004" has leading or trailing spaces`},
		{"numeric extension", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "extension": 5004, "passwordHash": "HASH"}`, ``),
			`agents[4] (id "1004"): "extension" must be a string: write it in quotes, "5004"`},
		{"missing hash", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent"}`, ``),
			`agents[4] (id "1004"): "passwordHash" is required (make one with iproc hash-password)`},
		{"bad hash", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "passwordHash": "`+badHash+`"}`, ``),
			`agents[4] (id "1004"): "passwordHash" is not a valid bcrypt hash`},
		{"plain-text password as hash", doc(okAgents+`, {"id": "1004", "name": "Di", "type": "Agent", "passwordHash": "hunter2"}`, ``),
			`agents[4] (id "1004"): "passwordHash" is not a valid bcrypt hash`},
		{"teams not an array", withHash(`{"agents": [{"id": "1", "name": "A", "type": "Agent", "passwordHash": "HASH"}], "teams": {}}`),
			`"teams" must be an array`},
		{"team not an object", doc(okAgents, `"t1"`), `teams[0]: must be a JSON object`},
		{"unknown team field", doc(okAgents, `{"id": "t1", "name": "Sales", "lead": "2001"}`),
			`teams[0] (id "t1"): unknown field "lead" (known: id, name, members, supervisors)`},
		{"missing team id", doc(okAgents, okTeam+`, {"name": "Support"}`), `teams[1]: "id" is required`},
		{"missing team name", doc(okAgents, okTeam+`, {"id": "t2"}`), `teams[1] (id "t2"): "name" is required`},
		{"duplicate team id", doc(okAgents, okTeam+`, {"id": "t1", "name": "Support"}`), `teams[1] (id "t1"): duplicate team id (teams[0] has it too)`},
		{"unknown member", doc(okAgents, `{"id": "t1", "name": "Sales", "members": ["1001", "1009"]}`),
			`teams[0] (id "t1"): members[1] "1009" is not an agent id`},
		{"unknown supervisor", doc(okAgents, `{"id": "t1", "name": "Sales", "supervisors": ["2009"]}`),
			`teams[0] (id "t1"): supervisors[0] "2009" is not an agent id`},
		{"member listed twice", doc(okAgents, `{"id": "t1", "name": "Sales", "members": ["1001", "1002", "1001"]}`),
			`teams[0] (id "t1"): members[2] "1001" is listed twice`},
		{"empty member id", doc(okAgents, `{"id": "t1", "name": "Sales", "members": [""]}`), `teams[0] (id "t1"): members[0] is empty`},
		{"numeric member id", doc(okAgents, `{"id": "t1", "name": "Sales", "members": [1001]}`),
			`teams[0] (id "t1"): "members[0]" must be a string: write it in quotes, "1001"`},
		{"null member id", doc(okAgents, `{"id": "t1", "name": "Sales", "members": [null]}`), `teams[0] (id "t1"): "members[0]" must be a string`},
		{"members not an array", doc(okAgents, `{"id": "t1", "name": "Sales", "members": "1001"}`), `teams[0] (id "t1"): "members" must be an array`},
		{"member whose agent is invalid", doc(okAgents+`, {"name": "Di", "type": "Agent", "passwordHash": "HASH"}`, `{"id": "t1", "name": "Sales", "members": ["1004"]}`),
			`teams[0] (id "t1"): members[0] "1004" is not an agent id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.in)
			if err == nil || d != nil {
				t.Fatalf("Parse = %v, %v; want an error containing %q", d, err, tc.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("err = %T %v; want a *ValidationError with problems", err, err)
			}
			found := false
			for _, p := range ve.Problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Errorf("problems = %q; want one containing %q", ve.Problems, tc.want)
			}
			for _, secret := range []string{testHash(), badHash, "hunter2", "$2a$"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q repeats the password hash %q", err, secret)
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	in := doc(`{"id": "1", "name": "A", "type": "Boss", "passwordHash": "HASH"},
		{"id": "2", "type": "Agent", "passwordHash": "HASH"},
		{"id": "3", "name": "C", "type": "Agent"}`,
		`{"id": "t1", "name": "T", "members": ["1", "x", "y"]}, {"id": "t1", "name": "U"}`)
	_, err := Parse(in)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v; want a *ValidationError", err)
	}
	want := []string{
		`agents[0] (id "1"): type "Boss" is not Agent, Supervisor or TeamLead`,
		`agents[1] (id "2"): "name" is required`,
		`agents[2] (id "3"): "passwordHash" is required (make one with iproc hash-password)`,
		`teams[0] (id "t1"): members[1] "x" is not an agent id`,
		`teams[0] (id "t1"): members[2] "y" is not an agent id`,
		`teams[1] (id "t1"): duplicate team id (teams[0] has it too)`,
	}
	if strings.Join(ve.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(ve.Problems, "\n"), strings.Join(want, "\n"))
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, want[0]+"; "+want[1]) || !strings.HasSuffix(msg, "; and 1 more problems") || strings.Contains(msg, want[5]) {
		t.Errorf("Error() = %q; want the first five problems joined, then a count", msg)
	}
}

func TestParseLongValuesAreShortened(t *testing.T) {
	long := strings.Repeat("B", 500)
	_, err := Parse(doc(`{"id": "1", "name": "A", "type": "`+long+`", "passwordHash": "HASH"}`, ``))
	if err == nil || strings.Contains(err.Error(), long[:41]) || !strings.Contains(err.Error(), long[:40]+"…") {
		t.Errorf("err = %v; want the type cut at 40 bytes", err)
	}
}

func TestDemo(t *testing.T) {
	d := Demo()
	if d == nil || Demo() != d {
		t.Fatal("Demo() must return one shared directory")
	}
	if _, err := Parse(demoJSON); err != nil {
		t.Fatalf("demo.json: %v", err)
	}
	want := []Agent{
		{ID: "1001", Name: "Ann Lee", Type: TypeAgent, Extension: "5001"},
		{ID: "1002", Name: "Bob Ray", Type: TypeAgent, Extension: "5002"},
		{ID: "1003", Name: "Carla Diaz", Type: TypeAgent, Extension: "5003"},
		{ID: "1004", Name: "Dev Patel", Type: TypeAgent, Extension: "5004"},
		{ID: "2001", Name: "Sam Carter", Type: TypeSupervisor, Extension: "6001"},
		{ID: "3001", Name: "Tina Brooks", Type: TypeTeamLead, Extension: "7001"},
	}
	got := d.Agents()
	if len(got) != len(want) {
		t.Fatalf("demo has %d agents, want %d", len(got), len(want))
	}
	for i, a := range got {
		if cost, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil || cost != bcrypt.DefaultCost {
			t.Errorf("demo agent %s: hash cost %d, %v; want %d", a.ID, cost, err, bcrypt.DefaultCost)
		}
		a.PasswordHash = ""
		if a != want[i] {
			t.Errorf("demo agent %d = %+v, want %+v", i, a, want[i])
		}
	}
	sales, _ := d.Team("t1")
	support, _ := d.Team("t2")
	if len(d.Teams()) != 2 || sales.Name != "Sales" || support.Name != "Support" ||
		strings.Join(sales.MemberIDs(), ",") != "1001,1002,3001,2001" || strings.Join(support.MemberIDs(), ",") != "1003,1004,2001" {
		t.Errorf("demo teams = %+v", d.Teams())
	}

	// The demo agents log in with DemoPassword. At the default cost this is
	// the slow part of the package's tests, so it is done once, for one
	// agent; the hashes were all made from DemoPassword in one run.
	if a, ok := d.Authenticate("1001", DemoPassword); !ok || a.Name != "Ann Lee" {
		t.Errorf("Authenticate(1001, DemoPassword) = %+v, %v; want Ann Lee", a, ok)
	}
}
