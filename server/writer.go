package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// writer is the outbound side of one WebSocket connection: a queue bounded
// in frames and in bytes, and the one goroutine that writes to the socket.
//
// Invariants (writer_test.go checks each):
//
//  1. One writer goroutine at most runs per connection, and nothing else
//     writes to the socket: the reader hands the peer's pings (to answer)
//     and the close to it. The goroutine is started by the first thing to
//     write (a frame, a due ping, a pong, the close) and ends after
//     lingering writerLinger with nothing to do, so an idle connection
//     holds no goroutine and no buffer.
//  2. Frames queued while the writer writes go out together: the writer
//     takes the whole queue at once and writes it with one Write per
//     buffer (frames.go), so a burst costs one system call, not one per
//     frame.
//  3. Unwritten frames (queued or being written) are at most MaxFrames and
//     MaxBytes bytes; push refuses a frame past either bound (the caller
//     closes the connection with 1013). A frame larger than MaxBytes is
//     taken only into an empty queue, so that any event can be delivered.
//  4. Every Write has the write deadline, and a write that fails or times
//     out ends the connection: nothing more is written to the socket, not
//     even the close frame. (A tls.Conn whose write timed out is broken and
//     fails every later Write at once: retrying would spin.)
//  5. Once closed, the writer stops after the buffer it is writing, writes
//     the close frame (unless a write failed), tells its owner and ends;
//     push then refuses everything.
type writer struct {
	nc    net.Conn
	cfg   *writerConfig
	owner writerOwner

	mu         sync.Mutex
	queue      [][]byte      // frames for the writer
	spare      [][]byte      // the array of the last batch, reused by queue
	frames     int           // frames queued or being written (invariant 3)
	bytes      int           // their bytes
	running    bool          // a writer goroutine runs (or lingers, parked)
	parked     bool          // the writer lingers for more frames (wake it)
	wake       chan struct{} // capacity 1: wakes the parked writer; nil while none lingers
	linger     *time.Timer   // the lingering writer's timer, its own
	pingWanted bool          // the ping timer fired
	pong       []byte        // the payload of a peer's ping to answer; nil when none
	closing    bool          // close was called (or a write failed): the close frame is next
	closed     atomic.Bool   // closing, read without the lock (the hot paths' test)
	closeMsg   []byte        // the close frame's payload; nil: none (the socket failed)
	finished   bool          // the writer ended the connection: nothing more is written
	ping       *time.Timer
	room       chan struct{} // capacity 1: the writer wrote what it took
	replaying  atomic.Bool   // a resumeSession replay is queueing history
	replayedTo atomic.Uint64 // the highest seq a replay queued
	goroutines sync.WaitGroup
}

// writerConfig is shared by the writers of one server.
type writerConfig struct {
	// MaxFrames and MaxBytes bound the unwritten frames of a connection.
	MaxFrames, MaxBytes int
	// WriteWait bounds each Write; PingPeriod is the interval of pings.
	WriteWait, PingPeriod time.Duration
	// Bufs holds write buffers (*[]byte), shared so that an idle
	// connection holds none.
	Bufs *sync.Pool
	// Wrote accounts for frames once written (metrics), with the highest
	// seq a replay queued (frames up to it are replayed history); may be
	// nil.
	Wrote func(frames [][]byte, replayedTo uint64)
}

// writerOwner is told what the writer decided: the connection it writes for.
type writerOwner interface {
	// writeFailed is called (from the writer goroutine) when a write failed:
	// the connection must close; nothing more is written.
	writeFailed(err error)
	// writerFinished is called once, when the close frame went out (or
	// could not) and the writer ended.
	writerFinished()
}

// closeWriteWait bounds the write of the close frame.
const closeWriteWait = time.Second

// keepQueue is the largest queue array an idle connection keeps after a
// burst; a larger one is left to the garbage collector.
const keepQueue = 64

// writerLinger is how long the writer waits for more frames once the queue
// is empty: a connection that receives steadily keeps one writer goroutine,
// an idle one gives it (and its stack) back.
const writerLinger = time.Second

// init prepares w to write to nc; its ping timer runs from now. (A method
// rather than a constructor: the writer lives inside its conn.)
func (w *writer) init(nc net.Conn, cfg *writerConfig, owner writerOwner) {
	w.nc, w.cfg, w.owner = nc, cfg, owner
	w.room = make(chan struct{}, 1)
	w.ping = time.AfterFunc(cfg.PingPeriod, w.pingDue)
}

// push queues frame unless the connection is closing or the frame would
// pass MaxFrames or MaxBytes (invariant 3). It never blocks on the socket.
func (w *writer) push(frame []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.finished || w.frames >= w.cfg.MaxFrames ||
		(w.bytes > 0 && w.bytes+len(frame) > w.cfg.MaxBytes) {
		return false
	}
	w.queue = append(w.queue, frame)
	w.frames++
	w.bytes += len(frame)
	w.startLocked()
	return true
}

// pushWait queues frame, waiting for room while done is open and ctx lasts.
func (w *writer) pushWait(ctx context.Context, done <-chan struct{}, frame []byte) bool {
	for {
		if w.push(frame) {
			if seq := frameSeq(frame); w.replaying.Load() && seq > w.replayedTo.Load() {
				w.replayedTo.Store(seq) // only the replaying reader calls pushWait
			}
			return true
		}
		if w.isClosing() {
			return false
		}
		select {
		case <-w.room:
		case <-done:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// isClosing reports whether close was called or a write failed.
func (w *writer) isClosing() bool { return w.closed.Load() }

// close asks the writer to write the close frame with code and text and
// end; the first call wins. Code 1006 (abnormal closure) means the socket
// failed: no close frame is written.
func (w *writer) close(code int, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return
	}
	w.closing = true
	w.closed.Store(true)
	if code != websocket.CloseAbnormalClosure {
		w.closeMsg = websocket.FormatCloseMessage(code, text)
	}
	w.startLocked()
}

// wait waits for the writer goroutines to end.
func (w *writer) wait() { w.goroutines.Wait() }

// pingDue is the ping timer's function.
func (w *writer) pingDue() {
	w.mu.Lock()
	w.pingWanted = true
	w.startLocked()
	w.mu.Unlock()
}

// pongDue queues the answer to a peer's ping (gorilla's ping handler). A
// newer ping replaces an unanswered one (RFC 6455 5.5.3 allows answering
// only the most recent).
func (w *writer) pongDue(data string) error {
	w.mu.Lock()
	w.pong = append(make([]byte, 0, len(data)), data...) // non-nil even when empty
	w.startLocked()
	w.mu.Unlock()
	return nil
}

// startLocked starts the writer unless one runs or the connection is
// finished, or wakes the lingering one; w.mu must be held.
func (w *writer) startLocked() {
	switch {
	case w.finished:
	case w.parked:
		w.parked = false
		wakeUp(w.wake)
	case !w.running:
		w.running = true
		w.goroutines.Add(1)
		go w.run()
	}
}

// wakeUp wakes the goroutine waiting on ch, if any, without blocking.
func wakeUp(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// lingerWait parks the writer for writerLinger or until startLocked wakes
// it. It reports whether to go on; false means the writer ended (running is
// false, and the next frame starts a new one).
func (w *writer) lingerWait() bool {
	if w.linger == nil {
		w.linger = time.NewTimer(writerLinger)
	} else {
		w.linger.Reset(writerLinger)
	}
	select {
	case <-w.wake:
		w.linger.Stop()
		return true
	case <-w.linger.C:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.parked { // nobody came: end, keeping nothing
		w.parked, w.running = false, false
		w.wake, w.linger = nil, nil
		return false
	}
	select { // the wake that raced the timer
	case <-w.wake:
	default:
	}
	return true
}

// run is the writer goroutine: it writes the pong, ping and queued frames
// due until there is nothing to do, lingers a moment for more, then ends;
// once closing it writes the close frame and finishes the connection.
func (w *writer) run() {
	defer w.goroutines.Done()
	for {
		w.mu.Lock()
		if w.closing {
			w.finished, w.running = true, false
			w.queue, w.spare = nil, nil
			msg := w.closeMsg
			w.mu.Unlock()
			w.ping.Stop()
			if msg != nil {
				_ = w.writeControl(websocket.CloseMessage, msg, closeWriteWait)
			}
			w.owner.writerFinished()
			return
		}
		ping := w.pingWanted
		w.pingWanted = false
		pong := w.pong
		w.pong = nil
		batch := w.queue
		w.queue, w.spare = w.spare[:0], nil
		if len(batch) == 0 && !ping && pong == nil {
			w.spare = batch
			if w.wake == nil {
				w.wake = make(chan struct{}, 1)
			}
			w.parked = true
			w.mu.Unlock()
			if !w.lingerWait() {
				return
			}
			continue
		}
		w.mu.Unlock()
		var err error
		if pong != nil {
			err = w.writeControl(websocket.PongMessage, pong, w.cfg.WriteWait)
		}
		if ping && err == nil {
			if err = w.writeControl(websocket.PingMessage, nil, w.cfg.WriteWait); err == nil {
				w.ping.Reset(w.cfg.PingPeriod)
			}
		}
		if err == nil {
			err = w.writeFrames(batch)
		}
		n := 0
		for _, f := range batch {
			n += len(f)
		}
		clear(batch)
		w.mu.Lock()
		w.frames -= len(batch)
		w.bytes -= n
		if cap(batch) <= keepQueue && w.spare == nil {
			w.spare = batch[:0]
		}
		if err != nil { // invariant 4: nothing more, not even the close frame
			w.closing, w.closeMsg = true, nil
			w.closed.Store(true)
		}
		w.mu.Unlock()
		wakeUp(w.room)
		if err != nil {
			w.owner.writeFailed(err)
		}
	}
}
