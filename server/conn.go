package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/resources/session"
)

// conn is one WebSocket connection: a reader goroutine, a bounded queue of
// outbound frames, and a writer goroutine that exists only while there is
// something to write: the only goroutine that writes frames to the socket.
//
// The queue is a slice under mu rather than a channel, and the writer
// (flush) is started by the first frame queued and ends when the queue is
// empty: an idle connection then holds a few words and one timer, not a
// channel buffer of SendQueueSize slots and a parked goroutine's stack. The
// writer takes every queued frame at once and writes them with one system
// call (frames.go). Pings are due on a timer and written by the writer too.
type conn struct {
	srv    *Server
	ws     *websocket.Conn
	remote string

	mu         sync.Mutex
	queue      [][]byte      // frames for the writer
	spare      [][]byte      // the array of the last batch, reused by queue
	unwritten  int           // frames queued or being written, at most SendQueueSize
	writing    bool          // a writer goroutine runs (or lingers, parked)
	parked     bool          // the writer lingers for more frames (wake it)
	wake       chan struct{} // capacity 1: wakes the parked writer; nil while none lingers
	linger     *time.Timer   // the lingering writer's timer, its own
	finished   bool          // the writer ended the connection: nothing more is written
	pingWanted bool          // the ping timer fired
	pong       []byte        // the payload of a peer's ping to answer; nil when none
	writers    sync.WaitGroup
	ping       *time.Timer
	room       chan struct{} // capacity 1: the writer wrote what it took

	done      chan struct{}
	isClosing atomic.Bool // done is closed (a cheaper test than a select)
	closeOnce sync.Once
	closeCode int
	closeText string

	ctx context.Context // ends when the server shuts down

	sess atomic.Pointer[session.Session]
	// replaying is set while resumeSession replays history; replayedTo is
	// the highest seq it queued: frames up to it are timed apart from live
	// ones.
	replaying  atomic.Bool
	replayedTo atomic.Uint64
}

var _ session.Conn = (*conn)(nil)

// newConn makes the connection state of an upgraded socket; its ping timer
// runs from now.
func newConn(s *Server, ws *websocket.Conn, remote string) *conn {
	c := &conn{
		srv: s, ws: ws, remote: remote, ctx: s.ctx,
		room: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	c.ping = time.AfterFunc(s.cfg.PingPeriod, c.pingDue)
	return c
}

// logAt adds the connection's fields (remote, and session and agent once
// there is a session) to e, an event of the server's logger. The fields are
// added per event rather than kept in a child logger: a zerolog child holds
// a 500-byte context buffer, per connection and again per session.
func (c *conn) logAt(e *zerolog.Event) *zerolog.Event {
	e = e.Str("remote", c.remote)
	if s := c.sess.Load(); s != nil {
		e = e.Str("session_id", s.ID).Str("agent_id", s.Agent.ID)
	}
	return e
}

// wakeUp wakes the goroutine waiting on ch, if any, without blocking.
func wakeUp(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// startWriterLocked starts the writer unless one runs or the connection is
// finished; c.mu must be held.
func (c *conn) startWriterLocked() {
	if c.finished {
		return
	}
	if c.parked {
		c.parked = false
		wakeUp(c.wake)
		return
	}
	if c.writing {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.flush()
}

// kick starts the writer if it is not running, so that it sees a close or
// a due ping.
func (c *conn) kick() {
	c.mu.Lock()
	c.startWriterLocked()
	c.mu.Unlock()
}

// pingDue is the ping timer's function.
func (c *conn) pingDue() {
	c.mu.Lock()
	c.pingWanted = true
	c.startWriterLocked()
	c.mu.Unlock()
}

// pongDue is the ping handler: the pong is written by the writer, like
// every other frame, so that no other goroutine writes to the socket (a
// pong written from the reader could cut into a frame, or move the
// writer's deadline). A newer ping replaces an unanswered one (RFC 6455
// 5.5.3 allows answering only the most recent).
func (c *conn) pongDue(data string) error {
	c.mu.Lock()
	c.pong = append(make([]byte, 0, len(data)), data...) // non-nil even when empty
	c.startWriterLocked()
	c.mu.Unlock()
	return nil
}

// push appends frame to the queue unless SendQueueSize frames are already
// waiting or being written.
func (c *conn) push(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.unwritten >= c.srv.cfg.SendQueueSize {
		return false
	}
	c.queue = append(c.queue, frame)
	c.unwritten++
	c.startWriterLocked()
	return true
}

// Send enqueues one frame without blocking; a full queue closes the
// connection with 1013 (the session stays resumable).
func (c *conn) Send(frame []byte) bool {
	if c.closing() {
		return false
	}
	if c.push(frame) {
		return true
	}
	if c.closing() {
		return false
	}
	c.srv.metrics.slowConsumers.Inc()
	c.closeWith(websocket.CloseTryAgainLater, "slow consumer")
	return false
}

// SendWait enqueues one frame, waiting for room in the queue; used to replay
// history from the connection's own reader goroutine.
func (c *conn) SendWait(ctx context.Context, frame []byte) bool {
	for {
		if c.closing() {
			return false
		}
		if c.push(frame) {
			if c.replaying.Load() {
				c.replayedTo.Store(max(c.replayedTo.Load(), frameSeq(frame)))
			}
			return true
		}
		select {
		case <-c.room:
		case <-c.done:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// closeWith asks the writer to send a close frame with code and end the
// connection; the first call wins. When it returns, a writer that will
// finish the connection runs.
func (c *conn) closeWith(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.isClosing.Store(true)
		close(c.done)
		c.kick()
	})
}

// session returns the connection's session while it is attached to it.
func (c *conn) session() *session.Session {
	s := c.sess.Load()
	if s == nil || !s.Attached(c) {
		return nil
	}
	return s
}

// closeDrain is how long the reader keeps reading (and discarding) after the
// close frame went out, waiting for the peer's close: closing the socket with
// unread input would reset the connection and lose the close frame.
const closeDrain = time.Second

// keepQueue is the largest queue array an idle connection keeps after a
// burst; a larger one is left to the garbage collector.
const keepQueue = 64

// writerLinger is how long the writer waits for more frames once the queue
// is empty: a connection that receives steadily keeps one writer goroutine,
// an idle one gives it (and its stack) back.
const writerLinger = time.Second

// lingerWait parks the writer for writerLinger or until startWriterLocked
// wakes it. It reports whether to go on; false means the writer ended
// (writing is false, and the next frame starts a new one).
func (c *conn) lingerWait() bool {
	if c.linger == nil {
		c.linger = time.NewTimer(writerLinger)
	} else {
		c.linger.Reset(writerLinger)
	}
	select {
	case <-c.wake:
		c.linger.Stop()
		return true
	case <-c.linger.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parked { // nobody came: end, keeping nothing
		c.parked, c.writing = false, false
		c.wake, c.linger = nil, nil
		return false
	}
	select { // the wake that raced the timer
	case <-c.wake:
	default:
	}
	return true
}

// flush is the writer: it writes the queued frames and a due ping until the
// queue is empty, lingers a moment for more, then ends. Once the connection is closing it sends the
// close frame, bounds the reader's drain (which ends the reader) and marks
// the connection finished. runConn closes the socket once the reader and
// every writer are over.
func (c *conn) flush() {
	defer c.writers.Done()
	for {
		c.mu.Lock()
		if c.closing() {
			c.finished, c.writing = true, false
			c.queue, c.spare = nil, nil
			c.mu.Unlock()
			c.ping.Stop()
			c.writeClose()
			c.limitDrain()
			return
		}
		ping := c.pingWanted
		c.pingWanted = false
		pong := c.pong
		c.pong = nil
		batch := c.queue
		c.queue, c.spare = c.spare[:0], nil
		if len(batch) == 0 && !ping && pong == nil {
			c.spare = batch
			if c.wake == nil {
				c.wake = make(chan struct{}, 1)
			}
			c.parked = true
			c.mu.Unlock()
			if !c.lingerWait() {
				return
			}
			continue
		}
		c.mu.Unlock()
		var err error
		if pong != nil {
			err = c.ws.WriteControl(websocket.PongMessage, pong, time.Now().Add(c.srv.cfg.WriteWait))
		}
		if ping && err == nil {
			if err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteWait)); err == nil {
				c.ping.Reset(c.srv.cfg.PingPeriod)
			}
		}
		if err == nil {
			err = c.writeFrames(batch)
		}
		clear(batch)
		c.mu.Lock()
		c.unwritten -= len(batch)
		if cap(batch) <= keepQueue && c.spare == nil {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		wakeUp(c.room)
		if err != nil {
			c.closeWith(websocket.CloseAbnormalClosure, "write failed")
		}
	}
}

// closing reports whether the connection has been asked to close.
func (c *conn) closing() bool { return c.isClosing.Load() }

// writeClose sends the close frame chosen by closeWith, unless the
// connection already failed.
func (c *conn) writeClose() {
	if c.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
}

// limitDrain sets the read deadline that ends the reader's drain. The
// underlying net.Conn is safe for concurrent use, so the writer may call it.
func (c *conn) limitDrain() {
	_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(closeDrain))
}

// extendRead moves the read deadline PongWait ahead, unless the connection
// is closing, whose drain keeps its short deadline.
func (c *conn) extendRead() error {
	if err := c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.PongWait)); err != nil {
		return err
	}
	if c.closing() { // the writer may have set the drain deadline meanwhile
		c.limitDrain()
	}
	return nil
}

// readLoop reads requests until the peer goes away or the connection is
// closed, handling each in order. Once the connection is closing it only
// drains input until the peer's close frame or the drain deadline.
func (c *conn) readLoop() {
	c.ws.SetReadLimit(protocol.MaxMessageBytes)
	_ = c.extendRead()
	c.ws.SetPongHandler(func(string) error { return c.extendRead() })
	c.ws.SetPingHandler(c.pongDue)
	// The peer's close is answered by the writer (closeWith below), not by
	// gorilla's default handler, which would write from this goroutine.
	c.ws.SetCloseHandler(func(int, string) error { return nil })
	draining := false
	for {
		kind, frame, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				c.closeWith(websocket.CloseMessageTooBig, "message larger than 64 KiB")
				// The frame's rest is unread and gorilla reads no further;
				// finish drains it so the close frame is not lost.
			case isCloseFrame(err):
				c.logAt(c.srv.log.Debug()).Err(err).Msg("peer closed")
				c.closeWith(websocket.CloseNormalClosure, "")
			default:
				select {
				case <-c.done: // we closed it
				default:
					c.logAt(c.srv.log.Debug()).Err(err).Msg("read ended")
				}
				c.closeWith(websocket.CloseAbnormalClosure, "")
			}
			return
		}
		if c.closing() {
			// Draining: requests are no longer answered, and the drain is
			// bounded from the first frame seen, however fast the peer sends.
			if !draining {
				draining = true
				c.limitDrain()
			}
			continue
		}
		_ = c.extendRead()
		if kind == websocket.TextMessage && !utf8.Valid(frame) {
			c.closeWith(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
			continue // drain
		}
		c.srv.metrics.framesIn.Inc()
		// The request runs on a goroutine of its own, waited for, so
		// requests stay in order while the stack that handling grows
		// (bcrypt, JSON, the store) is freed with it: an idle reader keeps
		// only the small stack of a blocked read.
		var req sync.WaitGroup
		req.Go(func() { c.srv.router.handle(c, frame) })
		req.Wait()
	}
}

// finish closes the socket once both loops are over. Input still unread
// (a peer that kept sending while the close frame waited for room) is
// discarded for up to closeDrain first: closing a socket with unread input
// resets the connection, and the peer would lose the close frame.
func (c *conn) finish() {
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(closeDrain))
	_, _ = io.Copy(io.Discard, nc)
	_ = nc.Close()
}

// isCloseFrame reports whether err is the peer's close frame, whatever its
// code: it is answered with a normal close.
func isCloseFrame(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce)
}
