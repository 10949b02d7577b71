// Package teamstatus is the live team-status report (SPEC §3.5) and the
// agent-state projection it is built from: agent states are events in the
// log ("agent.state"), projected into the "agentstate" bucket in the same
// commit, and applied to the live report in seq order; directory reloads
// reach the report as the changes directory.Diff finds.
//
// Concurrency: a Report has one mutex. It orders snapshots (Begin) against
// live changes (Apply) and reloads (SetDirectory), so a watcher never sees a
// change older than its snapshot. The callbacks that deliver frames to
// watchers run with the mutex held: they must not block and must not call
// back into the Report.
package teamstatus

import (
	"encoding/json"
	"time"

	"iproc/reporting/store"
)

// EventAgentState is the name of the log event that records an agent's
// state (login, setState, logout).
const EventAgentState = "agent.state"

// bucketAgentState maps an agent id to its latest agent.state data.
const bucketAgentState = "agentstate"

// State is an agent's state: the data of an agent.state event.
type State struct {
	AgentID string    `json:"agentId"`
	State   string    `json:"state"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

// Record returns the log record of agent agentID entering state for
// reason at since.
func Record(agentID, state, reason string, since time.Time) store.Record {
	data, _ := json.Marshal(State{AgentID: agentID, State: state, Reason: reason, Since: since.UTC()})
	return store.Record{Name: EventAgentState, Data: data, Meta: store.Meta{AgentID: agentID}}
}

// Decode returns the state an agent.state event records; ok is false for
// data that is not one.
func Decode(ev store.Event) (State, bool) {
	var st State
	if ev.Name != EventAgentState || json.Unmarshal(ev.Data, &st) != nil || st.AgentID == "" {
		return State{}, false
	}
	return st, true
}

// Projector keeps the latest state of each agent in the log's projection,
// in the same commit as the agent.state event.
type Projector struct{}

// Project implements store.Projector.
func (Projector) Project(kv store.KV, ev store.Event) error {
	st, ok := Decode(ev)
	if !ok {
		return nil
	}
	return kv.Put(bucketAgentState, st.AgentID, ev.Data)
}

// Lookup returns the committed state of agentID from the projection; ok is
// false for an agent that never had one.
func Lookup(kv store.KV, agentID string) (State, bool) {
	var st State
	v := kv.Get(bucketAgentState, agentID)
	if v == nil || json.Unmarshal(v, &st) != nil {
		return State{}, false
	}
	return st, true
}

// LoadStates returns every agent's committed state from the projection.
func LoadStates(kv store.KV) ([]State, error) {
	var out []State
	err := kv.ForEach(bucketAgentState, func(_ string, v []byte) error {
		var st State
		if json.Unmarshal(v, &st) == nil && st.AgentID != "" {
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// FormatTime formats t as the protocol's timestamps are: RFC 3339 in UTC
// with milliseconds.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
