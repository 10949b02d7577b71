package session

import (
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// subKey indexes agent subscriptions: a topic and the agent id (or, for
// CDRs, the extension) its events must name for the agent to see them.
type subKey struct{ topic, key string }

// sessionKey returns where s's subscription to topic is indexed: see-all
// (supervisors, team leads), under a subKey (agents), or nowhere when the
// agent can never receive the topic (campaign group states, CDRs without an
// extension). It follows entitled (SPEC §3.6).
func sessionKey(s *Session, topic string) (k subKey, all, ok bool) {
	if s.Agent.Type.SeesAllTopics() {
		return subKey{}, true, true
	}
	switch topic {
	case protocol.TopicContactProcessed, protocol.TopicCallback:
		return subKey{topic, s.Agent.ID}, false, s.Agent.ID != ""
	case protocol.TopicCDR:
		return subKey{topic, s.Agent.Extension}, false, s.Agent.Extension != ""
	}
	return subKey{}, false, false
}

// eventKey returns the subKey of the agent sessions entitled to ev.
func eventKey(ev store.Event) (subKey, bool) {
	switch ev.Name {
	case protocol.TopicContactProcessed, protocol.TopicCallback:
		return subKey{ev.Name, ev.Meta.AgentID}, ev.Meta.AgentID != ""
	case protocol.TopicCDR:
		return subKey{ev.Name, ev.Meta.Ext}, ev.Meta.Ext != ""
	}
	return subKey{}, false
}

// addSub indexes s's new subscription to topic; r.mu must be held. The
// list grows in place: readers hold shorter headers and never see the new
// slot.
func (r *Registry) addSub(topic string, s *Session) {
	k, all, ok := sessionKey(s, topic)
	switch {
	case !ok:
	case all:
		r.topics[topic] = append(r.topics[topic], s)
	default:
		r.own[k] = append(r.own[k], s)
	}
}

// removeSub drops s's subscription to topic from the index; r.mu must be
// held. The list is copied, so readers keep walking the old one.
func (r *Registry) removeSub(topic string, s *Session) {
	k, all, ok := sessionKey(s, topic)
	switch {
	case !ok:
	case all:
		r.topics[topic] = without(r.topics[topic], s)
	default:
		if l := without(r.own[k], s); len(l) > 0 {
			r.own[k] = l
		} else {
			delete(r.own, k)
		}
	}
}

// deliverTopic sends the topic event ev to s if s subscribes to it and its
// filter matches, under one lock of s. The index already checked that s is
// entitled to it.
func (s *Session) deliverTopic(ev store.Event, cache *eventCache) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.subs[ev.Name]
	if !ok || !cache.matches(ev, f) {
		return
	}
	s.deliverOneLocked(ev.Seq, cache.frame(ev))
}

// deliverOneLocked is deliverLocked for one frame, without allocating
// unless the session is held.
func (s *Session) deliverOneLocked(seq uint64, frame []byte) {
	if s.held {
		s.deliverLocked(seq, [][]byte{frame})
		return
	}
	if s.conn == nil || s.ended || (seq != 0 && seq <= s.lastSeq) {
		return
	}
	if !s.conn.Send(frame) {
		s.conn = nil // it closes itself; the session is resumable
		s.detachedAt = time.Now()
		return
	}
	if seq != 0 {
		s.lastSeq = seq
	}
}

// DispatchBatch delivers committed events, in seq order, like Dispatch for
// each. A run of consecutive events of one topic is handed to each
// see-all subscriber in one go, so its connection queues the whole run
// before its writer runs and writes it with one system call.
func (r *Registry) DispatchBatch(evs []store.Event) {
	for i := 0; i < len(evs); {
		j := i + 1
		if protocol.IsTopic(evs[i].Name) {
			for j < len(evs) && evs[j].Name == evs[i].Name {
				j++
			}
		}
		if j-i == 1 {
			r.Dispatch(evs[i])
		} else {
			r.dispatchRun(evs[i:j])
		}
		i = j
	}
}

// dispatchRun delivers events of one topic. Every session gets them in seq
// order: a see-all subscriber gets the whole run, an agent those naming it,
// in order; the two kinds of session are distinct.
func (r *Registry) dispatchRun(run []store.Event) {
	caches := make([]eventCache, len(run))
	r.mu.RLock()
	all := r.topics[run[0].Name]
	own := make([][]*Session, len(run))
	for k, ev := range run {
		if key, ok := eventKey(ev); ok {
			own[k] = r.own[key]
		}
	}
	r.mu.RUnlock()
	for _, s := range all {
		for k, ev := range run {
			s.deliverTopic(ev, &caches[k])
		}
	}
	for k, ev := range run {
		for _, s := range own[k] {
			s.deliverTopic(ev, &caches[k])
		}
	}
}
