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

// conn is one WebSocket connection: a reader (the handler goroutine), a
// writer (the only goroutine that writes to the socket) and a bounded queue
// between them and the hub.
type conn struct {
	srv    *Server
	ws     *websocket.Conn
	remote string
	log    zerolog.Logger

	send      chan []byte
	done      chan struct{}
	closeOnce sync.Once
	closeCode int
	closeText string

	ctx context.Context // ends when the server shuts down

	sess atomic.Pointer[session.Session]
}

var _ session.Conn = (*conn)(nil)

// Send enqueues one frame without blocking; a full queue closes the
// connection with 1013 (the session stays resumable).
func (c *conn) Send(frame []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.send <- frame:
		return true
	case <-c.done:
		return false
	default:
		c.srv.metrics.slowConsumers.Inc()
		c.closeWith(websocket.CloseTryAgainLater, "slow consumer")
		return false
	}
}

// SendWait enqueues one frame, waiting for room in the queue; used to replay
// history from the connection's own reader goroutine.
func (c *conn) SendWait(ctx context.Context, frame []byte) bool {
	select {
	case c.send <- frame:
		return true
	case <-c.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// closeWith asks the writer to send a close frame with code and end the
// connection; the first call wins.
func (c *conn) closeWith(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
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

// writeLoop writes queued frames and pings until done; then it sends the
// close frame and bounds the reader's drain, which ends the reader. The
// handler closes the socket once both loops are over.
func (c *conn) writeLoop() {
	ping := time.NewTicker(c.srv.cfg.PingPeriod)
	defer ping.Stop()
	defer c.limitDrain()
	for {
		select {
		case frame := <-c.send:
			if c.closing() {
				c.writeClose()
				return
			}
			if err := c.write(frame); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "write failed")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "ping failed")
				return
			}
		case <-c.done:
			c.writeClose()
			return
		}
	}
}

// closing reports whether the connection has been asked to close.
func (c *conn) closing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// writeClose sends the close frame chosen by closeWith, unless the
// connection already failed.
func (c *conn) writeClose() {
	if c.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
}

// write sends one frame, and any frames already queued behind it, each as
// its own message.
func (c *conn) write(frame []byte) error {
	for {
		if err := c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
			return err
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			return err
		}
		c.srv.metrics.framesOut.Inc()
		c.srv.wrote(frame)
		if c.closing() { // the close frame goes next, not the rest of the queue
			return nil
		}
		select {
		case frame = <-c.send:
		default:
			return nil
		}
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
	draining := false
	for {
		kind, frame, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				c.closeWith(websocket.CloseMessageTooBig, "message larger than 64 KiB")
				// The frame's rest is unread and gorilla reads no further;
				// finish drains it so the close frame is not lost.
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				c.log.Debug().Err(err).Msg("peer closed")
				c.closeWith(websocket.CloseNormalClosure, "")
			default:
				select {
				case <-c.done: // we closed it
				default:
					c.log.Debug().Err(err).Msg("read ended")
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
		c.srv.router.handle(c, frame)
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
