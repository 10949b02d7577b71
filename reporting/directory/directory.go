// Package directory is the agent and team directory (SPEC §7.1): who may log
// in, with which type and extension, and which teams each agent belongs to or
// supervises.
//
// A Directory is an immutable, validated snapshot. Parse and Load build one
// and refuse anything doubtful; nothing changes it afterwards, so any number
// of goroutines may read it without locks. A reload builds a new Directory
// and swaps the pointer; Diff tells watchers what changed between the two.
package directory

import (
	_ "embed"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
)

// AgentType is an agent's role. Topic rights follow the type alone (SPEC
// §3.6), whatever the teams.
type AgentType string

// The agent types of SPEC §7.1.
const (
	TypeAgent      AgentType = "Agent"
	TypeSupervisor AgentType = "Supervisor"
	TypeTeamLead   AgentType = "TeamLead"
)

// Valid reports whether t is one of the known agent types.
func (t AgentType) Valid() bool {
	return t == TypeAgent || t == TypeSupervisor || t == TypeTeamLead
}

// SeesAllTopics reports whether agents of type t may receive every event of
// every topic (supervisors and team leads) rather than only their own.
func (t AgentType) SeesAllTopics() bool {
	return t == TypeSupervisor || t == TypeTeamLead
}

// Agent is one person who can log in. Its JSON form is that of the directory
// file (SPEC §7.1), password hash included: never send an Agent to a client.
type Agent struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Type AgentType `json:"type"`
	// Extension is the phone extension CDRs reach the agent by; empty when
	// the agent has none. Extensions are unique within a directory.
	Extension string `json:"extension,omitempty"`
	// PasswordHash is the bcrypt hash of the agent's password.
	PasswordHash string `json:"passwordHash"`
	// CustomerData is CustomerDataFull for an agent who sees customer data
	// (phone numbers) whole in every event and report; otherwise it sees
	// them whole only in its own calls' (CustomerDataMasked, the default
	// when empty).
	CustomerData string `json:"customerData,omitempty"`
}

// The values of Agent.CustomerData.
const (
	CustomerDataFull   = "full"
	CustomerDataMasked = "masked"
)

// SeesCustomerData reports whether a sees customer data whole in every
// event and report.
func (a Agent) SeesCustomerData() bool { return a.CustomerData == CustomerDataFull }

// Team is a named group of agents. Members and Supervisors keep the order of
// the directory file. An agent may appear in both lists; watchers count it
// once.
//
// A Team returned by a Directory shares its Members and Supervisors with the
// Directory: read them, never write to their elements. (They are clipped, so
// append copies.)
type Team struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Members     []string `json:"members"`
	Supervisors []string `json:"supervisors"`
}

// MemberIDs returns the team's members followed by its supervisors, each id
// once, in file order.
func (t Team) MemberIDs() []string {
	out := make([]string, 0, len(t.Members)+len(t.Supervisors))
	seen := make(map[string]struct{}, cap(out))
	for _, list := range [2][]string{t.Members, t.Supervisors} {
		for _, id := range list {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				out = append(out, id)
			}
		}
	}
	return out
}

// Directory is an immutable, validated snapshot of agents and teams; it is
// safe for concurrent use. Build one with Parse, Load or Demo.
type Directory struct {
	agents    map[string]Agent  // by id
	agentList []Agent           // sorted by id
	teams     map[string]Team   // by id
	teamList  []Team            // sorted by id
	teamsOf   map[string][]Team // agent id → teams it is in or supervises, sorted by id
	dummyHash []byte            // compared against for unknown ids (see Authenticate)
	raw       []byte            // the JSON it was parsed from
	reasons   map[string]string // reason code → label (optional)
}

// ReasonCodes returns the labels of the reason codes agents set with
// setState (the directory file's optional "reasonCodes"), for desktops to
// show words rather than codes; nil when there are none.
func (d *Directory) ReasonCodes() map[string]string { return maps.Clone(d.reasons) }

// Load reads and parses the directory file at path. Its errors name the file.
func Load(path string) (*Directory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("directory file: %w", err) // *PathError names the file
	}
	d, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("directory file %q: %w", path, err)
	}
	return d, nil
}

// DemoPassword is the password of every agent of the bundled demo directory.
const DemoPassword = "demo-pass-2026"

//go:embed demo.json
var demoJSON []byte

var demo = sync.OnceValue(func() *Directory {
	d, err := Parse(demoJSON)
	if err != nil {
		panic("directory: the bundled demo.json is invalid: " + err.Error())
	}
	return d
})

// Demo returns the bundled demo directory: agents 1001–1004 (Agent, extensions
// 5001–5004), supervisor 2001 (6001) and team lead 3001 (7001), in teams t1
// "Sales" (1001, 1002, 3001; supervisor 2001) and t2 "Support" (1003, 1004;
// supervisor 2001). Every password is DemoPassword.
func Demo() *Directory { return demo() }

// Agent returns the agent with the given id.
func (d *Directory) Agent(id string) (Agent, bool) {
	a, ok := d.agents[id]
	return a, ok
}

// Agents returns every agent, sorted by id.
func (d *Directory) Agents() []Agent { return slices.Clone(d.agentList) }

// Team returns the team with the given id.
func (d *Directory) Team(id string) (Team, bool) {
	t, ok := d.teams[id]
	return t, ok
}

// Teams returns every team, sorted by id.
func (d *Directory) Teams() []Team { return slices.Clone(d.teamList) }

// TeamsOf returns the teams agentID is a member of or supervises, sorted by
// id; nil for an unknown agent or one in no team.
func (d *Directory) TeamsOf(agentID string) []Team { return slices.Clone(d.teamsOf[agentID]) }

// Raw returns the JSON the directory was parsed from (password hashes
// included): what a reload stores, so that every instance parses the same
// directory. The caller must not modify it.
func (d *Directory) Raw() []byte { return d.raw }

// PublicAgent is an agent as GET /admin/directory shows it: without its
// password hash.
type PublicAgent struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Type         AgentType `json:"type"`
	Extension    string    `json:"extension,omitempty"`
	CustomerData string    `json:"customerData,omitempty"`
}

// Public is the directory without secrets: agents without password hashes,
// and teams, each sorted by id, and the reason-code labels.
type Public struct {
	Agents      []PublicAgent     `json:"agents"`
	Teams       []Team            `json:"teams"`
	ReasonCodes map[string]string `json:"reasonCodes,omitempty"`
}

// Public returns the directory without its password hashes.
func (d *Directory) Public() Public {
	out := Public{Agents: make([]PublicAgent, 0, len(d.agentList)), Teams: d.Teams(), ReasonCodes: d.ReasonCodes()}
	for _, a := range d.agentList {
		out.Agents = append(out.Agents, PublicAgent{ID: a.ID, Name: a.Name, Type: a.Type, Extension: a.Extension, CustomerData: a.CustomerData})
	}
	return out
}
