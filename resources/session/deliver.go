package session

import (
	"bytes"
	"encoding/json"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// Dispatch delivers one committed event to every session entitled to it. It
// is called from one goroutine, in seq order, and never blocks on a
// connection.
func (r *Registry) Dispatch(ev store.Event) {
	r.applied.Store(ev.Seq)
	cache := newEventCache()
	switch {
	case protocol.IsTopic(ev.Name):
		// The index holds only sessions entitled to the event: those that
		// see the whole topic and the agent sessions the event names.
		r.mu.RLock()
		all := r.topics[ev.Name]
		var own []*Session
		if k, ok := eventKey(ev); ok {
			own = r.own[k]
		}
		r.mu.RUnlock()
		for _, s := range all {
			s.deliverTopic(ev, cache)
		}
		for _, s := range own {
			s.deliverTopic(ev, cache)
		}
	case ev.Name == EventAgentState:
		r.dispatchState(ev, cache)
	case ev.Name == EventSessionOpened, ev.Name == EventSessionSubs, ev.Name == EventSessionClosed:
		r.applyRemote(ev)
	}
}

// framesFor returns the frames event ev becomes for session s: none, the
// shared topic frame, or the agent-state frames (session.stateChanged to the
// agent's own session, memberstatuschanged to watchers of its teams).
func (r *Registry) framesFor(s *Session, ev store.Event, cache *eventCache) [][]byte {
	switch {
	case protocol.IsTopic(ev.Name):
		f, ok := s.subscribed(ev.Name)
		if !ok || !entitled(s, ev) || !cache.matches(ev, f) {
			return nil
		}
		return [][]byte{cache.frame(ev)}
	case ev.Name == EventAgentState:
		st, ok := cache.state(ev)
		if !ok {
			return nil
		}
		var frames [][]byte
		if st.AgentID == s.Agent.ID {
			frames = append(frames, cache.stateChanged(ev, st))
		}
		if s.isWatching() {
			frames = append(frames, r.memberStatusFrames(s, ev.Seq, st)...)
		}
		return frames
	}
	return nil
}

// entitled applies SPEC §3.6: supervisors and team leads see every topic;
// an agent sees only its own events and never campaign group states.
func entitled(s *Session, ev store.Event) bool {
	if s.Agent.Type.SeesAllTopics() {
		return true
	}
	switch ev.Name {
	case protocol.TopicContactProcessed, protocol.TopicCallback:
		return ev.Meta.AgentID != "" && ev.Meta.AgentID == s.Agent.ID
	case protocol.TopicCDR:
		return s.Agent.Extension != "" && ev.Meta.Ext == s.Agent.Extension
	}
	return false
}

// eventCache holds what one event encodes to, so that it is encoded once for
// all its recipients.
type eventCache struct {
	seq     uint64
	topic   []byte
	fields  map[string]string
	parsed  bool
	st      agentState
	stOK    bool
	stDone  bool
	changed []byte
}

func newEventCache() *eventCache { return &eventCache{} }

func (c *eventCache) reset(seq uint64) {
	if c.seq != seq {
		*c = eventCache{seq: seq}
	}
}

func (c *eventCache) frame(ev store.Event) []byte {
	c.reset(ev.Seq)
	if c.topic == nil {
		c.topic = protocol.EventFrame(ev.Name, ev.Seq, ev.Data)
	}
	return c.topic
}

// matches reports whether the event's data has every field of f equal to
// its value, comparing scalars by their text.
func (c *eventCache) matches(ev store.Event, f filter) bool {
	if len(f) == 0 {
		return true
	}
	c.reset(ev.Seq)
	if !c.parsed {
		c.parsed = true
		c.fields = scalarFields(ev.Data)
	}
	for k, want := range f {
		got, ok := c.fields[k]
		if !ok || got != want {
			return false
		}
	}
	return true
}

func (c *eventCache) state(ev store.Event) (agentState, bool) {
	c.reset(ev.Seq)
	if !c.stDone {
		c.stDone = true
		c.stOK = json.Unmarshal(ev.Data, &c.st) == nil && c.st.AgentID != ""
	}
	return c.st, c.stOK
}

func (c *eventCache) stateChanged(ev store.Event, st agentState) []byte {
	if c.changed == nil {
		data, _ := json.Marshal(stateView{State: st.State, Reason: st.Reason, Since: formatTime(st.Since)})
		c.changed = protocol.EventFrame(protocol.EventSessionStateChanged, ev.Seq, data)
	}
	return c.changed
}

// scalarFields returns the text of every top-level scalar field of data.
func scalarFields(data json.RawMessage) map[string]string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if t, ok := scalarText(v); ok {
			out[k] = t
		}
	}
	return out
}

// scalarText returns the text of a JSON scalar: strings as they are,
// numbers as written, booleans and null by name.
func scalarText(v any) (string, bool) {
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

func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
