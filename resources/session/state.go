package session

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"

	"iproc/protocol"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
	"iproc/resources/routing"
)

// stateView is what getState and session.stateChanged carry.
type stateView struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Since  string `json:"since"`
}

// GetState returns the agent's committed state.
func (r *Registry) GetState(s *Session) (any, error) {
	st := teamstatus.State{State: protocol.StateLoggedOut}
	err := r.log.View(func(kv store.KV) error {
		if got, ok := teamstatus.Lookup(kv, s.Agent.ID); ok {
			st = got
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return stateView{State: st.State, Reason: st.Reason, Since: teamstatus.FormatTime(st.Since)}, nil
}

// SetStateRequest is the data of setState.
type SetStateRequest struct {
	State  string          `json:"state"`
	Reason json.RawMessage `json:"reason"`
}

// SetState records the agent's new state; watchers and the session itself
// are told once it is committed.
func (r *Registry) SetState(ctx context.Context, s *Session, req SetStateRequest) error {
	switch req.State {
	case protocol.StateReady, protocol.StateNotReady, protocol.StateACW:
	case "":
		return protocol.Errorf(protocol.CodeInvalid, "data.state: required (ready, not_ready or ACW)")
	default:
		return protocol.Errorf(protocol.CodeInvalid, "data.state: %q is not ready, not_ready or ACW", req.State)
	}
	reason := ""
	if len(req.Reason) > 0 && string(req.Reason) != "null" {
		t, ok := scalarText(req.Reason)
		if !ok || len(t) > 256 {
			return protocol.Errorf(protocol.CodeInvalid, "data.reason: must be a string or a number of at most 256 characters")
		}
		reason = t
	}
	if _, err := r.log.Append(ctx, []store.Record{teamstatus.Record(s.Agent.ID, req.State, reason, r.now())}); err != nil {
		return unavailable(err)
	}
	return nil
}

// BeginTeamStatus starts the team-status report for s: its connection gets
// reply (the answer to report.teamstatus.begin), then one teamadded per
// team with every member, and from then on the live changes.
func (r *Registry) BeginTeamStatus(ctx context.Context, s *Session, reply []byte) error {
	r.team.Begin(s, s.Agent.ID, func(snapshot [][]byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == nil {
			return
		}
		s.conn.Send(reply)
		for _, f := range snapshot {
			s.conn.Send(f)
		}
	})
	if s.Ended() { // ended meanwhile: remove took its watch already, or will
		r.team.End(s)
	}
	return r.persist(ctx, s)
}

// EndTeamStatus stops the team-status report for s.
func (r *Registry) EndTeamStatus(ctx context.Context, s *Session) error {
	r.team.End(s)
	return r.persist(ctx, s)
}

// SubscribeRequest is the data of subscribe and unsubscribe.
type SubscribeRequest struct {
	Topics []string                   `json:"topics"`
	Filter map[string]json.RawMessage `json:"filter"`
}

// Subscribe adds or replaces the session's subscriptions. They are in force
// when it returns.
func (r *Registry) Subscribe(ctx context.Context, s *Session, req SubscribeRequest) error {
	if err := checkTopics(req.Topics); err != nil {
		return err
	}
	var f routing.Filter
	for k, raw := range req.Filter {
		t, ok := scalarText(raw)
		if !ok {
			return protocol.Errorf(protocol.CodeInvalid, "data.filter.%s: must be a string, number, boolean or null", k)
		}
		if f == nil {
			f = routing.Filter{}
		}
		f[k] = t
	}
	r.routes.Subscribe(s, s.viewer(), req.Topics, f)
	if s.Ended() { // ended meanwhile: remove may have run before Subscribe
		r.routes.Remove(s)
	}
	return r.persist(ctx, s)
}

// Unsubscribe removes subscriptions.
func (r *Registry) Unsubscribe(ctx context.Context, s *Session, req SubscribeRequest) error {
	if err := checkTopics(req.Topics); err != nil {
		return err
	}
	r.routes.Unsubscribe(s, req.Topics)
	return r.persist(ctx, s)
}

// persist commits the session's subscriptions and watch, so that they
// survive a restart and reach the other instances.
func (r *Registry) persist(ctx context.Context, s *Session) error {
	if _, err := r.log.Append(ctx, []store.Record{r.record(EventSessionSubs, s)}); err != nil {
		return unavailable(err)
	}
	return nil
}

func checkTopics(topics []string) error {
	if len(topics) == 0 {
		return protocol.Errorf(protocol.CodeInvalid, "data.topics: required, one or more of %v", protocol.Topics())
	}
	var bad []string
	for _, t := range topics {
		if !protocol.IsTopic(t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return protocol.Errorf(protocol.CodeInvalid, "data.topics: unknown topic %q (known: %v)", bad, protocol.Topics())
	}
	return nil
}

// scalarText returns the text of a JSON scalar as filters compare it (see
// routing.FieldText); ok is false for an object, an array or bad JSON.
func scalarText(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil || dec.More() {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		if t {
			return "true", true
		}
		return "false", true
	case nil:
		return "null", true
	}
	return "", false
}
