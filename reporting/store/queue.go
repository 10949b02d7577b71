package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// appendQueue hands Append's records to a log's single committer goroutine
// and waits for its answer; both logs embed it. mu guards closed and sends on
// reqs: submit holds it shared while sending, closeQueue holds it
// exclusively while closing reqs, so a send on a closed channel cannot
// happen.
type appendQueue struct {
	mu       sync.RWMutex
	closed   bool
	reqs     chan *request
	isClosed atomic.Bool // closed, readable without mu
}

func newAppendQueue() appendQueue {
	return appendQueue{reqs: make(chan *request, requestQueue)}
}

// submit queues recs for the committer and returns its answer. If ctx ends
// first it returns ctx's error; the records may or may not be committed then.
func (q *appendQueue) submit(ctx context.Context, recs []Record) ([]Result, error) {
	req := &request{ctx: ctx, recs: recs, reply: make(chan reply, 1)}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case q.reqs <- req:
	case <-ctx.Done():
		q.mu.RUnlock()
		return nil, ctx.Err()
	}
	q.mu.RUnlock()
	select {
	case rep := <-req.reply:
		return rep.res, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// closeQueue refuses further appends and closes reqs, so that the committer
// drains what is queued and ends.
func (q *appendQueue) closeQueue() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.isClosed.Store(true)
	close(q.reqs) // no sender holds mu, and none will send again
}
