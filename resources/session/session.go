// Package session is iproc's session registry: one session per agent per
// instance domain, created by prepareSession (with the confirm / override
// flow), outliving its connection for a grace period so it can be resumed,
// and the routing of committed events to the sessions entitled to them
// (topic subscriptions, SPEC §3.6 rights, team-status watches).
//
// Concurrency: the Registry's mutex guards only its maps; each Session has its
// own mutex guarding its connection, subscriptions and delivery position.
// Events are dispatched from one goroutine (the server's hub) in seq order;
// delivery never blocks: a Conn enqueues or closes itself.
package session

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"iproc/protocol"
	"iproc/resources/directory"
)

// Conn is the registry's view of a client connection.
type Conn interface {
	// Send enqueues one frame without blocking. It returns false when the
	// connection is closed or its queue overflowed (it then closes itself
	// with 1013).
	Send(frame []byte) bool
	// SendWait enqueues one frame, waiting for room; it is used only to
	// replay history, from the connection's own reader. It returns false
	// when the connection closed or ctx ended.
	SendWait(ctx context.Context, frame []byte) bool
}

// maxHeld bounds the live events a session holds while it is replaying
// history or waiting for its prepareSession answer to go out. Past it the
// held events are dropped and read again from the log.
const maxHeld = 4096

// Session is one agent's session.
type Session struct {
	// ID is the opaque session id (the resource id).
	ID string
	// Agent is the agent as it was in the directory at login.
	Agent directory.Agent
	token string

	mu         sync.Mutex
	conn       Conn
	lastSeq    uint64            // highest seq delivered on the current connection
	subs       map[string]filter // topic → filter
	watching   bool              // report.teamstatus.begin in force
	held       bool              // live events are held (replay or pending answer)
	heldEvents []heldEvent       // bounded by maxHeld
	heldLost   bool              // heldEvents overflowed
	detachedAt time.Time         // zero while attached
	ended      bool
	owner      string    // instance the session is attached to (cluster mode)
	orphanedAt time.Time // when its owner was first seen not alive
}

type heldEvent struct {
	seq    uint64
	frames [][]byte
}

// filter keeps events whose data has every field equal (as text) to value.
type filter map[string]string

// Attached reports whether c is the session's current connection and the
// session has not ended.
func (s *Session) Attached(c Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended && s.conn == c
}

// Ended reports whether the session has ended.
func (s *Session) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// send enqueues a frame that is not part of the seq stream (session.ended,
// team snapshots). It reports whether the connection took it.
func (s *Session) send(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return false
	}
	return s.conn.Send(frame)
}

// deliver sends the frames of the event seq unless this connection already
// had it. While held, the event is kept for release.
func (s *Session) deliver(seq uint64, frames [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverLocked(seq, frames)
}

func (s *Session) deliverLocked(seq uint64, frames [][]byte) {
	if s.conn == nil || s.ended || len(frames) == 0 {
		return
	}
	if s.held {
		if len(s.heldEvents) >= maxHeld {
			s.heldEvents, s.heldLost = nil, true
			return
		}
		if !s.heldLost {
			s.heldEvents = append(s.heldEvents, heldEvent{seq, frames})
		}
		return
	}
	if seq != 0 && seq <= s.lastSeq {
		return
	}
	for _, f := range frames {
		if !s.conn.Send(f) {
			s.conn = nil // it closes itself; the session is resumable
			s.detachedAt = time.Now()
			return
		}
	}
	if seq != 0 {
		s.lastSeq = seq
	}
}

// flushHeldLocked ends the hold and sends the held events not yet sent.
func (s *Session) flushHeldLocked() {
	held := s.heldEvents
	s.held, s.heldEvents, s.heldLost = false, nil, false
	for _, h := range held {
		s.deliverLocked(h.seq, h.frames)
	}
}

// subscribed returns the filter for topic and whether the session subscribes.
func (s *Session) subscribed(topic string) (filter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.subs[topic]
	return f, ok
}

// isWatching reports whether team-status events are wanted.
func (s *Session) isWatching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watching
}

// Topics returns the session's subscribed topics.
func (s *Session) Topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for t := range s.subs {
		out = append(out, t)
	}
	return out
}

// endedFrame is the session.ended event.
func endedFrame(reason string) []byte {
	data, _ := json.Marshal(map[string]string{"reason": reason})
	return protocol.EventFrame(protocol.EventSessionEnded, 0, data)
}
