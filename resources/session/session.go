package session

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"iproc/protocol"
	"iproc/reporting/directory"
	"iproc/resources/routing"
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
// history. Past it the held events are dropped and read again from the log.
const maxHeld = 4096

// Session is one agent's session. Its subscriptions live in the routing
// index and its team-status watch in the report, keyed by the *Session.
type Session struct {
	// ID is the opaque session id (the resource id).
	ID string
	// Agent is the agent as it was in the directory at login.
	Agent directory.Agent
	token string // SHA-256 of the resume token, hex

	mu         sync.Mutex
	conn       Conn
	lost       Conn        // the connection dropped for overflowing, until Detach
	lastSeq    uint64      // highest seq delivered on the current connection
	held       bool        // live events are held while history is replayed
	heldEvents []heldEvent // bounded by maxHeld
	heldLost   bool        // heldEvents overflowed
	detachedAt time.Time   // zero while attached
	// storedDetached is set while the log's record of the session says it
	// is detached (Detach stored it, or it was restored so).
	storedDetached bool
	ended          bool
	endReason      string
	owner          string    // instance the session is attached to (cluster mode)
	orphanedAt     time.Time // when its owner was first seen not alive
}

type heldEvent struct {
	seq    uint64
	frames [][]byte
}

// viewer is how the routing index sees the session's agent.
func (s *Session) viewer() routing.Viewer {
	return routing.Viewer{AgentID: s.Agent.ID, Extension: s.Agent.Extension, SeesAll: s.Agent.Type.SeesAllTopics(), FullCustomerData: s.Agent.SeesCustomerData()}
}

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

// deliver sends the frames of the event seq unless this connection already
// had it. While held, the event is kept for the end of the replay.
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
			// It closes itself (1013); the session is resumable. Detach,
			// called when the connection is gone, stores the time.
			s.lost, s.conn = s.conn, nil
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

// endLocked marks the session ended for reason and tells its connection;
// s.mu must be held. It reports false when it had ended already.
func (s *Session) endLocked(reason string) bool {
	if s.ended {
		return false
	}
	s.ended, s.endReason = true, reason
	if s.conn != nil {
		s.conn.Send(endedFrame(reason))
		s.conn = nil
	}
	s.held, s.heldEvents, s.heldLost = false, nil, false
	return true
}

// endedFrame is the session.ended event.
func endedFrame(reason string) []byte {
	data, _ := json.Marshal(map[string]string{"reason": reason})
	return protocol.EventFrame(protocol.EventSessionEnded, 0, data)
}
