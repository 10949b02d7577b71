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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/resources/session"
)

// conn is one WebSocket connection: the reader (this goroutine's loop,
// handling requests in order) and the writer (writer.go), which owns the
// outbound queue and is the only one that writes to the socket.
type conn struct {
	cfg    *connConfig
	ws     *websocket.Conn
	remote string
	w      writer

	done      chan struct{}
	isClosing atomic.Bool // done is closed (a cheaper test than a select)
	closeOnce sync.Once

	ctx context.Context // ends when the server shuts down

	sess atomic.Pointer[session.Session]
}

var (
	_ session.Conn = (*conn)(nil)
	_ writerOwner  = (*conn)(nil)
)

// connConfig is what a connection needs from its server, shared by all of
// them: limits and timing, the request handler, the logger and two
// counters. A connection never reaches the Server itself.
type connConfig struct {
	writer writerConfig
	// PongWait is how long a silent peer is kept.
	PongWait time.Duration
	// Handle answers one request frame (the router).
	Handle func(c *conn, frame []byte)
	// Log is the server's logger; connections add their fields per event.
	Log *zerolog.Logger
	// Ctx ends when the server shuts down.
	Ctx context.Context
	// FramesIn counts requests read; SlowConsumers connections closed with
	// 1013.
	FramesIn, SlowConsumers prometheus.Counter
}

// newConn makes the connection state of an upgraded socket; its ping timer
// runs from now.
func newConn(cfg *connConfig, ws *websocket.Conn, remote string) *conn {
	c := &conn{cfg: cfg, ws: ws, remote: remote, ctx: cfg.Ctx, done: make(chan struct{})}
	c.w.init(ws.NetConn(), &cfg.writer, c)
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

// Send enqueues one frame without blocking; a full queue (in frames or
// bytes) closes the connection with 1013 (the session stays resumable).
func (c *conn) Send(frame []byte) bool {
	if c.closing() {
		return false
	}
	if c.w.push(frame) {
		return true
	}
	if c.closing() || c.w.isClosing() { // closed meanwhile, or a write failed
		return false
	}
	c.cfg.SlowConsumers.Inc()
	c.closeWith(websocket.CloseTryAgainLater, "slow consumer")
	return false
}

// replay runs fn, a resumeSession replay: the event frames it queues are
// timed apart (iproc_replay_to_socket_seconds), their wait including the
// client's time away.
func (c *conn) replay(fn func()) {
	c.w.replaying.Store(true)
	defer c.w.replaying.Store(false)
	fn()
}

// SendWait enqueues one frame, waiting for room in the queue; used to replay
// history from the connection's own reader goroutine.
func (c *conn) SendWait(ctx context.Context, frame []byte) bool {
	if c.closing() {
		return false
	}
	return c.w.pushWait(ctx, c.done, frame)
}

// closeWith asks the writer to send a close frame with code and end the
// connection; the first call wins.
func (c *conn) closeWith(code int, text string) {
	c.closeOnce.Do(func() {
		c.isClosing.Store(true)
		close(c.done)
		c.w.close(code, text)
	})
}

// writeFailed implements writerOwner: a failed write ends the connection
// without a close frame.
func (c *conn) writeFailed(err error) {
	if !c.closing() {
		c.logAt(c.cfg.Log.Debug()).Err(err).Msg("write failed")
	}
	c.closeWith(websocket.CloseAbnormalClosure, "write failed")
}

// writerFinished implements writerOwner: the close frame went out, so the
// reader's drain of the peer's answer is bounded from now.
func (c *conn) writerFinished() { c.limitDrain() }

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

// closing reports whether the connection has been asked to close.
func (c *conn) closing() bool { return c.isClosing.Load() }

// limitDrain sets the read deadline that ends the reader's drain. The
// underlying net.Conn is safe for concurrent use, so the writer may call it.
func (c *conn) limitDrain() {
	_ = c.w.nc.SetReadDeadline(time.Now().Add(closeDrain))
}

// extendRead moves the read deadline PongWait ahead, unless the connection
// is closing, whose drain keeps its short deadline.
func (c *conn) extendRead() error {
	if err := c.ws.SetReadDeadline(time.Now().Add(c.cfg.PongWait)); err != nil {
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
	c.ws.SetPingHandler(c.w.pongDue)
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
				c.logAt(c.cfg.Log.Debug()).Err(err).Msg("peer closed")
				c.closeWith(websocket.CloseNormalClosure, "")
			default:
				if !c.closing() {
					c.logAt(c.cfg.Log.Debug()).Err(err).Msg("read ended")
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
		c.cfg.FramesIn.Inc()
		// The request runs on a goroutine of its own, waited for, so
		// requests stay in order while the stack that handling grows
		// (bcrypt, JSON, the store) is freed with it: an idle reader keeps
		// only the small stack of a blocked read.
		var req sync.WaitGroup
		req.Go(func() { c.cfg.Handle(c, frame) })
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
