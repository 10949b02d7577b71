package session

import (
	"context"
	"encoding/json"

	"iproc/protocol"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
	"iproc/resources/routing"
)

// DispatchBatch delivers committed events, in seq order, to the sessions
// entitled to them. It is called from one goroutine and never blocks on a
// connection. A run of consecutive events of one topic is routed at once,
// so that a subscriber of the whole topic queues the run before its writer
// runs and the run goes out in one system call.
func (r *Registry) DispatchBatch(evs []store.Event) {
	for i := 0; i < len(evs); {
		j := i + 1
		if protocol.IsTopic(evs[i].Name) {
			for j < len(evs) && evs[j].Name == evs[i].Name {
				j++
			}
			r.dispatchTopic(evs[i:j])
		} else {
			r.dispatchOther(evs[i])
		}
		r.applied.Store(evs[j-1].Seq)
		i = j
	}
	r.commits.notify()
}

// Dispatch delivers one committed event (DispatchBatch of one).
func (r *Registry) Dispatch(ev store.Event) { r.DispatchBatch([]store.Event{ev}) }

// dispatchTopic delivers a run of events of one topic to the sessions the
// routing index names. Each event is encoded at most twice for all of
// them: whole, and with its customer data masked.
func (r *Registry) dispatchTopic(run []store.Event) {
	frames := make([]topicFrames, len(run))
	r.routes.RouteRun(run, func(s *Session, i int) {
		s.deliver(run[i].Seq, frames[i].get(r.customer, run[i], routing.WholeCustomerData(s.viewer(), run[i])))
	})
}

// topicFrames holds the encodings of one topic event, made on demand.
type topicFrames struct {
	whole, masked [][]byte
}

// get returns the event's frame, whole or with its customer data masked.
// Each is encoded only when a recipient needs it; an event with no customer
// data has one frame for both.
func (f *topicFrames) get(customer routing.CustomerFields, ev store.Event, whole bool) [][]byte {
	if whole {
		if f.whole == nil {
			f.whole = [][]byte{protocol.EventFrame(ev.Name, ev.Seq, ev.Data)}
		}
		return f.whole
	}
	if f.masked == nil {
		if data, changed := customer.Mask(ev.Data); changed {
			f.masked = [][]byte{protocol.EventFrame(ev.Name, ev.Seq, data)}
		} else {
			f.masked = f.get(customer, ev, true)
		}
	}
	return f.masked
}

// dispatchOther applies an event that is not a topic: an agent state
// (session.stateChanged to the agent's session, memberstatuschanged to the
// watchers of its teams) or a session event of another instance.
func (r *Registry) dispatchOther(ev store.Event) {
	switch ev.Name {
	case teamstatus.EventAgentState:
		st, ok := teamstatus.Decode(ev)
		if !ok {
			return
		}
		r.mu.RLock()
		own := r.byAgent[st.AgentID]
		r.mu.RUnlock()
		var ownFrames [][]byte
		if own != nil {
			ownFrames = [][]byte{stateChangedFrame(ev.Seq, st)}
		}
		r.team.Apply(ev.Seq, st, own, own != nil, ownFrames, func(s *Session, frames [][]byte) { s.deliver(ev.Seq, frames) })
	case EventSessionOpened, EventSessionSubs, EventSessionClosed:
		r.applyRemote(ev)
	case EventDirectoryReloaded:
		r.applyReload(ev)
	}
}

// framesFor returns the frames event ev becomes for session s on replay:
// what live dispatch would have sent it.
func (r *Registry) framesFor(s *Session, ev store.Event) [][]byte {
	switch {
	case protocol.IsTopic(ev.Name):
		if r.routes.Receives(s, ev) {
			var f topicFrames
			return f.get(r.customer, ev, routing.WholeCustomerData(s.viewer(), ev))
		}
	case ev.Name == teamstatus.EventAgentState:
		st, ok := teamstatus.Decode(ev)
		if !ok {
			return nil
		}
		var frames [][]byte
		if st.AgentID == s.Agent.ID {
			frames = append(frames, stateChangedFrame(ev.Seq, st))
		}
		return append(frames, r.team.StatusFrames(s, ev.Seq, st)...)
	case ev.Name == EventDirectoryReloaded:
		return r.reloadFrames(s, ev.Seq)
	}
	return nil
}

// replayPage is how many events replay reads from the log at a time.
const replayPage = 512

// replay reads the log from the session's position to the head, sending
// what the session is entitled to, until it is caught up; then it ends the
// hold and sends the live events held meanwhile, unless already read (seq
// at or below the position).
func (r *Registry) replay(ctx context.Context, s *Session) {
	for {
		s.mu.Lock()
		if s.conn == nil || s.ended {
			s.held, s.heldEvents, s.heldLost = false, nil, false
			s.mu.Unlock()
			return
		}
		if s.heldLost { // the held events overflowed: they are read from the log instead
			s.heldEvents, s.heldLost = nil, false
		}
		pos := s.lastSeq
		_, head := r.log.Bounds()
		if pos >= head {
			s.flushHeldLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		evs, err := r.log.Read(ctx, pos, replayPage)
		if err != nil {
			r.logger.Warn().Err(err).Str("session_id", s.ID).Msg("replay read failed; going live")
			s.mu.Lock()
			s.flushHeldLocked()
			s.mu.Unlock()
			return
		}
		if len(evs) == 0 { // pruned meanwhile: nothing retained up to head
			s.mu.Lock()
			s.lastSeq = max(s.lastSeq, head)
			s.mu.Unlock()
			continue
		}
		for _, ev := range evs {
			if !r.replayOne(ctx, s, ev) {
				return
			}
		}
	}
}

// replayOne sends ev to s if it is new to its connection, waiting for room
// in the queue (held, s gets no live events meanwhile, so waiting holds no
// lock). It returns false when the connection is gone.
func (r *Registry) replayOne(ctx context.Context, s *Session, ev store.Event) bool {
	frames := r.framesFor(s, ev)
	s.mu.Lock()
	c, fresh := s.conn, ev.Seq > s.lastSeq
	s.mu.Unlock()
	if c == nil {
		return true // detached or ended: the next turn of the loop stops
	}
	if fresh {
		for _, f := range frames {
			if !c.SendWait(ctx, f) {
				return false
			}
		}
	}
	s.mu.Lock()
	if s.conn == c {
		s.lastSeq = max(s.lastSeq, ev.Seq)
	}
	s.mu.Unlock()
	return true
}

// stateChangedFrame is session.stateChanged for st committed at seq.
func stateChangedFrame(seq uint64, st teamstatus.State) []byte {
	data, _ := json.Marshal(stateView{State: st.State, Reason: st.Reason, Since: teamstatus.FormatTime(st.Since)})
	return protocol.EventFrame(protocol.EventSessionStateChanged, seq, data)
}
