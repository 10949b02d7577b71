package server

import (
	"encoding/binary"
	"time"
)

// Frames are written by the connection's writer itself rather than through
// gorilla's message writer: every queued frame gets its WebSocket header (a
// server's frames are not masked) in one pooled buffer, and the buffer goes
// out with one Write, so a burst of events costs one system call per
// connection instead of one per event. Control frames (ping, pong, close)
// are built the same way. Gorilla only reads.

// writeBufSize is the size of the pooled write buffers; a buffer grown past
// keepBufSize by a large frame is not pooled again.
const (
	writeBufSize = 16 << 10
	keepBufSize  = 64 << 10
)

// frameHeader appends the header of a final, unmasked frame of opcode op
// and n bytes.
func frameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op) // FIN
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

// opText is the opcode of a text frame.
const opText = 1

// writeFrames writes frames, each as one text message, with as few writes as
// the buffer allows. Once the connection is asked to close it stops after
// the current write: the close frame goes next, not the rest of the queue.
func (w *writer) writeFrames(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	bp := w.cfg.Bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= keepBufSize {
			*bp = buf[:0]
			w.cfg.Bufs.Put(bp)
		}
	}()
	from := 0
	for i, f := range frames {
		if len(buf) > 0 && len(buf)+len(f)+10 > cap(buf) {
			if err := w.write(buf, w.cfg.WriteWait); err != nil {
				return err
			}
			w.written(frames[from:i])
			from = i
			if w.isClosing() {
				return nil
			}
			buf = buf[:0]
		}
		buf = frameHeader(buf, opText, len(f))
		buf = append(buf, f...)
	}
	if err := w.write(buf, w.cfg.WriteWait); err != nil {
		return err
	}
	w.written(frames[from:])
	return nil
}

// written accounts for frames that went out.
func (w *writer) written(frames [][]byte) {
	if w.cfg.Wrote != nil && len(frames) > 0 {
		w.cfg.Wrote(frames, w.replayedTo.Load())
	}
}

// writeControl writes one control frame (payload at most 125 bytes).
func (w *writer) writeControl(op int, payload []byte, wait time.Duration) error {
	var b [2 + 125]byte
	f := append(frameHeader(b[:0], byte(op), len(payload)), payload...)
	return w.write(f, wait)
}

// write writes p with one Write under a deadline of wait from now. An error
// is final (invariant 4): the caller writes nothing more.
func (w *writer) write(p []byte, wait time.Duration) error {
	if err := w.nc.SetWriteDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	_, err := w.nc.Write(p)
	return err
}
