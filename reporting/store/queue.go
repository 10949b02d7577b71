package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
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
	// inflight counts the Append calls under way (group commit lingers
	// for them).
	inflight atomic.Int64
}

// append is every log's Append: recs queued for the committer, as one
// unit, and its answer; no records answer at once.
func (q *appendQueue) append(ctx context.Context, recs []Record) ([]Result, error) {
	if len(recs) == 0 {
		if q.isClosed.Load() {
			return nil, ErrClosed
		}
		return []Result{}, nil
	}
	q.inflight.Add(1)
	defer q.inflight.Add(-1)
	return q.submit(ctx, recs)
}

// liveRequests answers the requests of batch whose callers already gave up
// (they are not written) and returns the others.
func liveRequests(batch []*request) []*request {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.reply <- reply{err: err}
			continue
		}
		live = append(live, req)
	}
	return live
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

// batcher gathers the requests of one commit from a queue, at most max
// records, for a log's committer goroutine (which alone uses it).
type batcher struct {
	reqs  <-chan *request
	max   int
	batch []*request
	n     int      // records in batch
	next  *request // taken from the queue but left for the next batch
	open  bool     // reqs is not closed
}

func newBatcher(reqs <-chan *request, max int) *batcher {
	return &batcher{reqs: reqs, max: max, open: true}
}

// begin starts a batch with the request the last batch left over, or else
// waits for the next one. It returns false once reqs is closed and drained.
// A single request larger than max is a batch of its own.
func (g *batcher) begin() bool {
	clear(g.batch) // drop references to answered requests
	g.batch = g.batch[:0]
	req := g.next
	g.next = nil
	if req == nil {
		if !g.open {
			return false
		}
		var ok bool
		if req, ok = <-g.reqs; !ok {
			g.open = false
			return false
		}
	}
	g.batch, g.n = append(g.batch, req), len(req.recs)
	return true
}

// take adds req (ok false: the queue was closed) to the batch unless it
// would overflow it, then it starts the next batch; it reports whether to
// keep gathering.
func (g *batcher) take(req *request, ok bool) bool {
	if !ok {
		g.open = false
		return false
	}
	if g.n+len(req.recs) > g.max {
		g.next = req
		return false
	}
	g.batch = append(g.batch, req)
	g.n += len(req.recs)
	return true
}

// drain takes every request queued at the moment, while the batch has room.
func (g *batcher) drain() {
	for g.n < g.max {
		select {
		case req, ok := <-g.reqs:
			if !g.take(req, ok) {
				return
			}
		default:
			return
		}
	}
}

// full reports whether the batch can take no more: it holds max records, a
// request waits for the next batch, or the queue is closed.
func (g *batcher) full() bool { return g.n >= g.max || g.next != nil || !g.open }

// maxLinger bounds how long the committer waits for more requests after a
// commit (see commitLoop).
const maxLinger = time.Millisecond

// gather is a log's committer loop: it takes the requests queued at the
// moment (up to max records) into one batch, hands it to commit, and returns
// when reqs is closed and drained. peak is the number of appenders in flight
// when commit answered its last batch (commit sets it).
//
// Appenders answered by a commit come back a moment later (an HTTP round
// trip), while those that queued during the commit are taken at once; left
// alone, the appenders split into two groups that commit in turn, each at
// half the batch. So when fewer requests are queued than were in flight at
// the last commit, the committer lingers for the rest, at most half the last
// commit's duration (and maxLinger) after it ended: the groups merge and
// every fsync serves all of them. A lone appender never waits: one request
// is all it had in flight.
func (q *appendQueue) gather(max int, noGroup bool, peak *int64, commit func([]*request)) {
	g := newBatcher(q.reqs, max)
	var (
		lastEnd time.Time
		linger  time.Duration
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for g.begin() {
		if !noGroup {
			g.drain()
		}
		if !noGroup && !g.full() && int64(len(g.batch)) < *peak {
			if d := time.Until(lastEnd.Add(linger)); d > 0 {
				timer.Reset(d)
			gather:
				for int64(len(g.batch)) < *peak && g.n < g.max {
					select {
					case req, ok := <-q.reqs:
						if !g.take(req, ok) {
							break gather
						}
					case <-timer.C:
						break gather
					}
				}
				timer.Stop()
			}
		}
		start := time.Now()
		commit(g.batch)
		lastEnd = time.Now()
		linger = min(lastEnd.Sub(start)/2, maxLinger)
	}
}
