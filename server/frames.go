package server

import (
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// Outbound frames are written by the connection's writer itself rather than
// through gorilla's message writer: every queued frame gets its WebSocket
// header (a server's frames are not masked) in one pooled buffer, and the
// buffer goes out with one write, so a burst of events costs one system call
// per connection instead of one per event. Gorilla still writes the control
// frames (ping, pong, close), each with a single write; writes on one socket
// never interleave, so frames stay whole.

// writeBufSize is the size of the pooled write buffers; a buffer grown past
// keepBufSize by a large frame is not pooled again.
const (
	writeBufSize = 16 << 10
	keepBufSize  = 64 << 10
)

// frameHeader appends the header of a final, unmasked text frame of n bytes.
func frameHeader(b []byte, n int) []byte {
	b = append(b, 0x81) // FIN, opcode 1 (text)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// writeFrames writes frames, each as one text message, with as few writes as
// the buffer allows. Once the connection is asked to close it stops after
// the current write: the close frame goes next, not the rest of the queue.
func (c *conn) writeFrames(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	bp := c.srv.writeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= keepBufSize {
			*bp = buf[:0]
			c.srv.writeBufs.Put(bp)
		}
	}()
	// written counts frames once they went out (metrics, latency).
	from := 0
	written := func(to int) {
		c.srv.metrics.framesOut.Add(float64(to - from))
		for _, f := range frames[from:to] {
			c.srv.wrote(c, f)
		}
		from = to
	}
	for i, f := range frames {
		if len(buf) > 0 && len(buf)+len(f)+10 > cap(buf) {
			if err := c.writeAll(buf); err != nil {
				return err
			}
			written(i)
			if c.closing() {
				return nil
			}
			buf = buf[:0]
		}
		buf = frameHeader(buf, len(f))
		buf = append(buf, f...)
	}
	if err := c.writeAll(buf); err != nil {
		return err
	}
	written(len(frames))
	return nil
}

// writeAll writes p with one write under the write deadline. A deadline that
// passes while the connection is being closed as a slow consumer does not
// cut a frame: the rest of p is written as the peer reads again, for at most
// PongWait, so that it finds whole frames and then its 1013 close.
func (c *conn) writeAll(p []byte) error {
	nc := c.ws.NetConn()
	var giveUp time.Time
	for {
		if err := nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
			return err
		}
		n, err := nc.Write(p)
		if err == nil {
			return nil
		}
		p = p[n:]
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !c.closing() || c.closeCode != websocket.CloseTryAgainLater {
			return err
		}
		if giveUp.IsZero() {
			giveUp = time.Now().Add(c.srv.cfg.PongWait)
		} else if time.Now().After(giveUp) {
			return err
		}
	}
}
