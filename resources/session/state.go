package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// agentState is the data of an agent.state event.
type agentState struct {
	AgentID string    `json:"agentId"`
	State   string    `json:"state"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

// stateView is what getState and session.stateChanged carry.
type stateView struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Since  string `json:"since"`
}

// sessionRecord is the persisted form of a session (projection bucket
// "session"): enough to resume it after a restart.
type sessionRecord struct {
	ID        string                       `json:"id"`
	AgentID   string                       `json:"agentId"`
	TokenHash string                       `json:"tokenHash"`
	Subs      map[string]map[string]string `json:"subs,omitempty"`
	Watching  bool                         `json:"watching,omitempty"`
	// Owner is the instance the session is attached to (cluster mode).
	Owner string `json:"owner,omitempty"`
}

const (
	bucketSession    = "session"
	bucketAgentState = "agentstate"
	// bucketLastSession maps an agent to the last session opened for it.
	bucketLastSession = "lastsession"
)

func stateRecord(agentID, state, reason string, since time.Time) store.Record {
	data, _ := json.Marshal(agentState{AgentID: agentID, State: state, Reason: reason, Since: since.UTC()})
	return store.Record{Name: EventAgentState, Data: data, Meta: store.Meta{AgentID: agentID}}
}

// Projector persists sessions and agent states in the log's projection, in
// the same commit as their events.
type Projector struct{}

// Project implements store.Projector.
func (Projector) Project(kv store.KV, ev store.Event) error {
	switch ev.Name {
	case EventAgentState:
		var st agentState
		if json.Unmarshal(ev.Data, &st) != nil || st.AgentID == "" {
			return nil
		}
		return kv.Put(bucketAgentState, st.AgentID, ev.Data)
	case EventSessionOpened, EventSessionSubs:
		var rec sessionRecord
		if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
			return nil
		}
		if ev.Name == EventSessionOpened && rec.AgentID != "" {
			if err := kv.Put(bucketLastSession, rec.AgentID, []byte(rec.ID)); err != nil {
				return err
			}
		}
		return kv.Put(bucketSession, rec.ID, ev.Data)
	case EventSessionClosed:
		var rec sessionRecord
		if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
			return nil
		}
		return kv.Delete(bucketSession, rec.ID)
	}
	return nil
}

// load restores sessions (detached, resumable for the grace period from now)
// and agent states from the projection.
func (r *Registry) load() error {
	var recs []sessionRecord
	err := r.log.View(func(kv store.KV) error {
		if err := kv.ForEach(bucketAgentState, func(_ string, v []byte) error {
			var st agentState
			if json.Unmarshal(v, &st) == nil && st.AgentID != "" {
				r.team.states[st.AgentID] = st
			}
			return nil
		}); err != nil {
			return err
		}
		if err := kv.ForEach(bucketLastSession, func(agent string, v []byte) error {
			r.lastOpened[agent] = string(v)
			return nil
		}); err != nil {
			return err
		}
		return kv.ForEach(bucketSession, func(_ string, v []byte) error {
			var rec sessionRecord
			if json.Unmarshal(v, &rec) == nil && rec.ID != "" {
				recs = append(recs, rec)
			}
			return nil
		})
	})
	if err != nil {
		return errors.Join(errors.New("session: load sessions"), err)
	}
	dir := r.Directory()
	now := r.now()
	for _, rec := range recs {
		agent, ok := dir.Agent(rec.AgentID)
		if !ok {
			continue
		}
		s := &Session{ID: rec.ID, Agent: agent, token: rec.TokenHash, subs: map[string]filter{}, detachedAt: now, watching: rec.Watching, owner: rec.Owner}
		if r.remoteOwner(rec.Owner) {
			s.detachedAt = time.Time{} // the owner's to expire
		}
		for topic, f := range rec.Subs {
			s.subs[topic] = filter(f)
			r.addSub(topic, s)
		}
		r.byID[s.ID] = s
		r.byAgent[agent.ID] = s
		if s.watching {
			r.team.watch(s, dir.TeamsOf(agent.ID))
		}
	}
	return nil
}

// GetState returns the agent's committed state.
func (r *Registry) GetState(s *Session) (any, error) {
	st := agentState{State: protocol.StateLoggedOut}
	err := r.log.View(func(kv store.KV) error {
		if v := kv.Get(bucketAgentState, s.Agent.ID); v != nil {
			return json.Unmarshal(v, &st)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return stateView{State: st.State, Reason: st.Reason, Since: formatTime(st.Since)}, nil
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
		var v any
		dec := json.NewDecoder(bytes.NewReader(req.Reason))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return protocol.Errorf(protocol.CodeInvalid, "data.reason: must be a string or a number")
		}
		t, ok := scalarText(v)
		if !ok || len(t) > 256 {
			return protocol.Errorf(protocol.CodeInvalid, "data.reason: must be a string or a number of at most 256 characters")
		}
		reason = t
	}
	if _, err := r.log.Append(ctx, []store.Record{stateRecord(s.Agent.ID, req.State, reason, r.now())}); err != nil {
		return unavailable(err)
	}
	return nil
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
	var f filter // nil when there is none: an idle session keeps no empty map
	for k, raw := range req.Filter {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return protocol.Errorf(protocol.CodeInvalid, "data.filter.%s: must be a scalar", k)
		}
		t, ok := scalarText(v)
		if !ok {
			return protocol.Errorf(protocol.CodeInvalid, "data.filter.%s: must be a string, number, boolean or null", k)
		}
		if f == nil {
			f = filter{}
		}
		f[k] = t
	}
	r.mu.Lock()
	s.mu.Lock()
	for _, t := range req.Topics {
		if _, had := s.subs[t]; !had {
			r.addSub(t, s)
		}
		s.subs[t] = f
	}
	s.mu.Unlock()
	r.mu.Unlock()
	return r.persist(ctx, s)
}

// Unsubscribe removes subscriptions.
func (r *Registry) Unsubscribe(ctx context.Context, s *Session, req SubscribeRequest) error {
	if err := checkTopics(req.Topics); err != nil {
		return err
	}
	r.mu.Lock()
	s.mu.Lock()
	for _, t := range req.Topics {
		if _, had := s.subs[t]; had {
			delete(s.subs, t)
			r.removeSub(t, s)
		}
	}
	s.mu.Unlock()
	r.mu.Unlock()
	return r.persist(ctx, s)
}

// persist commits the session's subscriptions and watch flag.
func (r *Registry) persist(ctx context.Context, s *Session) error {
	s.mu.Lock()
	rec := sessionRecord{ID: s.ID, AgentID: s.Agent.ID, TokenHash: s.token, Watching: s.watching, Subs: map[string]map[string]string{}, Owner: s.owner}
	for t, f := range s.subs {
		if f == nil {
			f = filter{} // persisted as {} as before
		}
		rec.Subs[t] = f
	}
	s.mu.Unlock()
	data, _ := json.Marshal(rec)
	if _, err := r.log.Append(ctx, []store.Record{{Name: EventSessionSubs, Data: data, Meta: store.Meta{AgentID: s.Agent.ID, Origin: r.instance}}}); err != nil {
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
