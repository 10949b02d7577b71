package directory

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testPassword is the password of every agent of the test directories.
const testPassword = "pw-for-tests"

// testHash is testPassword hashed once at bcrypt.MinCost.
var testHash = sync.OnceValue(func() string {
	h, err := HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return h
})

// fileJSON is the directory file format, for building test inputs.
type fileJSON struct {
	Agents []Agent `json:"agents"`
	Teams  []Team  `json:"teams"`
}

// testAgents are agents 1001–1004 (Agent, ext 5001–5004; 1004 has none),
// supervisor 2001 and team lead 3001.
func testAgents() []Agent {
	return []Agent{
		{ID: "1001", Name: "Ann Lee", Type: TypeAgent, Extension: "5001"},
		{ID: "1002", Name: "Bob Ray", Type: TypeAgent, Extension: "5002"},
		{ID: "1003", Name: "Cy Dunn", Type: TypeAgent, Extension: "5003"},
		{ID: "1004", Name: "Di Hart", Type: TypeAgent},
		{ID: "2001", Name: "Sue Pervis", Type: TypeSupervisor, Extension: "6001"},
		{ID: "3001", Name: "Tom Lead", Type: TypeTeamLead, Extension: "7001"},
	}
}

// testTeams: t2 Support (1003, 1004; supervisor 2001), t1 Sales (1001,
// 1002, 3001; supervisor 2001), t3 Empty; deliberately not in id order.
func testTeams() []Team {
	return []Team{
		{ID: "t2", Name: "Support", Members: []string{"1003", "1004"}, Supervisors: []string{"2001"}},
		{ID: "t1", Name: "Sales", Members: []string{"1001", "1002", "3001"}, Supervisors: []string{"2001"}},
		{ID: "t3", Name: "Empty", Members: []string{}, Supervisors: []string{}},
	}
}

// encode marshals agents and teams as a directory file, filling in
// testHash where an agent has no hash.
func encode(t testing.TB, agents []Agent, teams []Team) []byte {
	t.Helper()
	for i := range agents {
		if agents[i].PasswordHash == "" {
			agents[i].PasswordHash = testHash()
		}
	}
	b, err := json.Marshal(fileJSON{Agents: agents, Teams: teams})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func build(t testing.TB, agents []Agent, teams []Team) *Directory {
	t.Helper()
	d, err := Parse(encode(t, agents, teams))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func agentIDs(as []Agent) []string { return ids(as, func(a Agent) string { return a.ID }) }
func teamIDs(ts []Team) []string   { return ids(ts, func(t Team) string { return t.ID }) }

func TestParseValid(t *testing.T) {
	d := build(t, testAgents(), testTeams())

	if got, want := agentIDs(d.Agents()), []string{"1001", "1002", "1003", "1004", "2001", "3001"}; !slices.Equal(got, want) {
		t.Errorf("Agents() ids = %v, want %v", got, want)
	}
	if got, want := teamIDs(d.Teams()), []string{"t1", "t2", "t3"}; !slices.Equal(got, want) {
		t.Errorf("Teams() ids = %v, want %v", got, want)
	}
	a, ok := d.Agent("3001")
	if !ok || a.Name != "Tom Lead" || a.Type != TypeTeamLead || a.Extension != "7001" || a.PasswordHash != testHash() {
		t.Errorf("Agent(3001) = %+v, %v", a, ok)
	}
	if _, ok := d.Agent("9999"); ok {
		t.Error("Agent(9999) found")
	}
	sales, ok := d.Team("t1")
	if !ok || sales.Name != "Sales" || !slices.Equal(sales.Members, []string{"1001", "1002", "3001"}) || !slices.Equal(sales.Supervisors, []string{"2001"}) {
		t.Errorf("Team(t1) = %+v, %v", sales, ok)
	}
	if empty, ok := d.Team("t3"); !ok || len(empty.Members) != 0 || len(empty.Supervisors) != 0 || empty.Members == nil {
		t.Errorf("Team(t3) = %#v, %v; want an empty, non-nil team", empty, ok)
	}
	if _, ok := d.Team("t9"); ok {
		t.Error("Team(t9) found")
	}
}

func TestParseOptionalParts(t *testing.T) {
	// No "teams" at all, an empty extension, and agents whose types are
	// each allowed.
	doc := `{"agents": [
		{"id": "1", "name": "A", "type": "Agent", "extension": "", "passwordHash": "` + testHash() + `"},
		{"id": "2", "name": "B", "type": "Supervisor", "passwordHash": "` + testHash() + `", "extension": null}
	]}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(d.Teams()) != 0 || d.TeamsOf("1") != nil {
		t.Errorf("Teams() = %v, TeamsOf(1) = %v; want none", d.Teams(), d.TeamsOf("1"))
	}
}

func TestTeamsOf(t *testing.T) {
	teams := append(testTeams(), Team{ID: "t0", Name: "Both", Members: []string{"2001"}, Supervisors: []string{"2001", "3001"}})
	d := build(t, testAgents(), teams)
	for _, tc := range []struct {
		agent string
		want  []string
	}{
		{"1001", []string{"t1"}},
		{"1003", []string{"t2"}},
		{"2001", []string{"t0", "t1", "t2"}}, // supervises t1, t2; both member and supervisor of t0, counted once
		{"3001", []string{"t0", "t1"}},       // member of t1, supervisor of t0
		{"9999", nil},
	} {
		if got := teamIDs(d.TeamsOf(tc.agent)); !slices.Equal(got, tc.want) {
			t.Errorf("TeamsOf(%s) = %v, want %v", tc.agent, got, tc.want)
		}
	}
	both, _ := d.Team("t0")
	if got := both.MemberIDs(); !slices.Equal(got, []string{"2001", "3001"}) {
		t.Errorf("MemberIDs of t0 = %v, want [2001 3001]", got)
	}
}

func TestSeesAllTopics(t *testing.T) {
	for typ, want := range map[AgentType]bool{TypeAgent: false, TypeSupervisor: true, TypeTeamLead: true, "Boss": false} {
		if got := typ.SeesAllTopics(); got != want {
			t.Errorf("%s.SeesAllTopics() = %v, want %v", typ, got, want)
		}
	}
}

func TestReturnedSlicesAreCopies(t *testing.T) {
	d := build(t, testAgents(), testTeams())
	as := d.Agents()
	as[0].Name = "changed"
	ts := d.Teams()
	ts[0].Name = "changed"
	ts[0].Members = append(ts[0].Members, "1004") // clipped: must not reach the directory
	of := d.TeamsOf("2001")
	of[0] = Team{ID: "x"}
	if a, _ := d.Agent(as[0].ID); a.Name == "changed" {
		t.Error("changing Agents() changed the directory")
	}
	if tm, _ := d.Team("t1"); tm.Name != "Sales" || len(tm.Members) != 3 {
		t.Errorf("changing Teams() changed the directory: %+v", tm)
	}
	if got := teamIDs(d.TeamsOf("2001")); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("changing TeamsOf() changed the directory: %v", got)
	}
}

func TestAuthenticate(t *testing.T) {
	long := strings.Repeat("p", 72)
	h, err := HashPassword(long, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	agents := append(testAgents(), Agent{ID: "4001", Name: "Long", Type: TypeAgent, PasswordHash: h})
	d := build(t, agents, testTeams())

	if a, ok := d.Authenticate("1001", testPassword); !ok || a.ID != "1001" || a.Name != "Ann Lee" {
		t.Errorf("Authenticate(1001, right) = %+v, %v; want Ann Lee", a, ok)
	}
	if a, ok := d.Authenticate("4001", long); !ok || a.ID != "4001" {
		t.Errorf("Authenticate(4001, 72-byte password) = %+v, %v; want success", a, ok)
	}
	for _, tc := range []struct{ name, id, password string }{
		{"wrong password", "1001", "nope"},
		{"another agent's id", "1002", "pw-for-test"},
		{"unknown agent", "9999", testPassword},
		{"empty id", "", testPassword},
		{"empty password", "1001", ""},
		// bcrypt ignores bytes past 72, so this would match: it must not.
		{"password over 72 bytes", "4001", long + "x"},
	} {
		if a, ok := d.Authenticate(tc.id, tc.password); ok || a != (Agent{}) {
			t.Errorf("%s: Authenticate(%q) = %+v, %v; want failure", tc.name, tc.id, a, ok)
		}
	}
}

func TestDummyHashCost(t *testing.T) {
	// Unknown ids are compared against a hash of the directory's usual
	// cost, so they take as long as known ones.
	d := build(t, testAgents(), testTeams())
	if cost, ok := checkHash(string(d.dummyHash)); !ok || cost != bcrypt.MinCost {
		t.Errorf("dummy hash cost = %d, %v; want %d", cost, ok, bcrypt.MinCost)
	}
	if cost, ok := checkHash(string(Demo().dummyHash)); !ok || cost != bcrypt.DefaultCost {
		t.Errorf("demo dummy hash cost = %d, %v; want %d", cost, ok, bcrypt.DefaultCost)
	}
	if got := usualCost(map[int]int{4: 2, 10: 2, 12: 1}); got != 10 {
		t.Errorf("usualCost tie = %d, want the higher, 10", got)
	}
	if got := usualCost(map[int]int{4: 3, 10: 1}); got != 4 {
		t.Errorf("usualCost = %d, want the most common, 4", got)
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if cost, ok := checkHash(h); !ok || cost != bcrypt.MinCost {
		t.Errorf("HashPassword gave %q: checkHash cost %d, %v", h, cost, ok)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Error("hash does not match its password")
	}
	secret := strings.Repeat("secret-", 11) // 77 bytes
	for _, tc := range []struct {
		name, password string
		cost           int
		want           string
	}{
		{"empty", "", bcrypt.MinCost, "empty"},
		{"over 72 bytes", secret, bcrypt.MinCost, "at most 72"},
		{"cost too low", "pw", bcrypt.MinCost - 1, "cost 3"},
		{"cost too high", "pw", bcrypt.MaxCost + 1, "cost 32"},
	} {
		_, err := HashPassword(tc.password, tc.cost)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: HashPassword err = %v, want one containing %q", tc.name, err, tc.want)
		}
		if err != nil && tc.password != "" && strings.Contains(err.Error(), tc.password) {
			t.Errorf("%s: error %q contains the password", tc.name, err)
		}
	}
}

func TestCheckHash(t *testing.T) {
	good := testHash()
	for _, h := range []string{good, "$2b$" + good[4:], "$2y$" + good[4:], dummyHash, string(dummyHashAt(31))} {
		if _, ok := checkHash(h); !ok {
			t.Errorf("checkHash(%q) refused a valid hash", h)
		}
	}
	for _, h := range []string{
		"",
		"not-a-hash",
		good[:59],
		good + "x",
		"$2x$" + good[4:],
		"$3a$" + good[4:],
		"$2a$+4" + good[6:],
		"$2a$03" + good[6:],
		"$2a$32" + good[6:],
		good[:20] + "!" + good[21:],
		"#" + good[1:],
	} {
		if _, ok := checkHash(h); ok {
			t.Errorf("checkHash(%q) accepted a bad hash", h)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, encode(t, testAgents(), testTeams()), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(d.Agents()) != 6 || len(d.Teams()) != 3 {
		t.Errorf("Load gave %d agents, %d teams; want 6, 3", len(d.Agents()), len(d.Teams()))
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"agents": [], "teams": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var ve *ValidationError
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"agents" is empty`) || !errors.As(err, &ve) {
		t.Errorf("Load(bad) err = %v; want the file name, the problem, and a *ValidationError", err)
	}

	missing := filepath.Join(dir, "missing.json")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) err = %v; want the file name and os.ErrNotExist", err)
	}
}

func TestConcurrentReads(t *testing.T) {
	d := build(t, testAgents(), testTeams())
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if _, ok := d.Authenticate("1001", testPassword); !ok {
					errs <- "Authenticate failed"
					return
				}
				if len(d.TeamsOf("2001")) != 2 || len(d.Agents()) != 6 || !func() bool { a, _ := d.Agent("2001"); return a.Type.SeesAllTopics() }() {
					errs <- "inconsistent read"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestReasonCodes(t *testing.T) {
	base := `{"agents":[{"id":"1","name":"A","type":"Agent","passwordHash":"` + testHash() + `"}],"teams":[]`
	d, err := Parse([]byte(base + `,"reasonCodes":{"1":"Break","32":"Training"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.ReasonCodes(); len(got) != 2 || got["32"] != "Training" {
		t.Fatalf("ReasonCodes() = %v", got)
	}
	if pub := d.Public(); pub.ReasonCodes["1"] != "Break" {
		t.Fatalf("Public().ReasonCodes = %v", pub.ReasonCodes)
	}
	if none, err := Parse([]byte(base + `}`)); err != nil || none.ReasonCodes() != nil {
		t.Fatalf("without reasonCodes: %v, %v", none.ReasonCodes(), err)
	}
	for _, bad := range []struct{ codes, want string }{
		{`[]`, `"reasonCodes": must be a JSON object`},
		{`{"1":5}`, `"1" must be a string`},
		{`{"1":"  "}`, `code "1" needs a code and a label`},
		{`{"1":"` + strings.Repeat("x", 65) + `"}`, `longer than 64 bytes`},
	} {
		_, err := Parse([]byte(base + `,"reasonCodes":` + bad.codes + `}`))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("reasonCodes %s: %v, want a problem containing %q", bad.codes, err, bad.want)
		}
	}
}
