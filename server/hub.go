package server

import (
	"sync"
	"sync/atomic"
	"time"

	"iproc/reporting/store"
	"iproc/resources/session"
)

// hub hands committed events to the session registry, in seq order, from one
// goroutine, so that committing never waits on a socket. It also bounds how
// far delivery may lag commits (lag: events committed and not yet handed to
// the registry): past softLag the committer waits a little after each
// commit (acks get slower, so senders slow down); past hardLag ingest
// answers 503 with Retry-After instead of appending.
type hub struct {
	batches  chan []store.Event
	sessions *session.Registry
	metrics  *metrics
	stop     chan struct{}
	done     sync.WaitGroup

	softLag, hardLag int64
	lag              atomic.Int64
	mu               sync.Mutex
	drained          chan struct{} // closed when lag falls to softLag; nil when nobody waits
}

const (
	// hubQueue bounds the committed batches waiting for delivery; when
	// full, the committer waits (the last guard: lag bounds it first).
	hubQueue = 4096
	// defaultSoftLag and defaultHardLag are the lag bounds, in events.
	defaultSoftLag = 8192
	defaultHardLag = 32768
	// maxStall bounds the committer's wait after one commit while the lag
	// is above softLag.
	maxStall = 50 * time.Millisecond
)

func newHub(m *metrics) *hub {
	return &hub{batches: make(chan []store.Event, hubQueue), metrics: m, stop: make(chan struct{}),
		softLag: defaultSoftLag, hardLag: defaultHardLag}
}

// onCommit is the log's OnCommit callback (after the appenders are
// answered): it queues the events and, when delivery lags more than
// softLag, waits up to maxStall for it to catch up, which holds the next
// commit back.
func (h *hub) onCommit(evs []store.Event) {
	h.lag.Add(int64(len(evs)))
	select {
	case h.batches <- evs:
	case <-h.stop:
		return
	}
	h.waitDrain(maxStall)
}

// overloaded reports whether delivery lags commits by more than hardLag
// events: ingest then refuses with 503 and Retry-After.
func (h *hub) overloaded() bool { return h.lag.Load() > h.hardLag }

// waitDrain waits until the lag is at most softLag, d passes or the hub
// stops.
func (h *hub) waitDrain(d time.Duration) {
	h.mu.Lock()
	if h.lag.Load() <= h.softLag {
		h.mu.Unlock()
		return
	}
	if h.drained == nil {
		h.drained = make(chan struct{})
	}
	ch := h.drained
	h.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-h.stop:
	}
}

// delivered records n events handed to the registry and wakes a waiting
// committer once the lag is back to softLag.
func (h *hub) delivered(n int) {
	if h.lag.Add(-int64(n)) > h.softLag {
		return
	}
	h.mu.Lock()
	if h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
	h.mu.Unlock()
}

func (h *hub) start(sessions *session.Registry) {
	h.sessions = sessions
	h.done.Add(1)
	go h.run()
}

func (h *hub) run() {
	defer h.done.Done()
	for {
		select {
		case evs := <-h.batches:
			h.deliver(evs)
		case <-h.stop:
			for { // deliver what was committed before stopping
				select {
				case evs := <-h.batches:
					h.deliver(evs)
				default:
					return
				}
			}
		}
	}
}

func (h *hub) deliver(evs []store.Event) {
	h.sessions.DispatchBatch(evs)
	h.delivered(len(evs))
	for _, ev := range evs {
		if !ev.Time.IsZero() {
			h.metrics.deliveryLatency.Observe(time.Since(ev.Time).Seconds())
		}
	}
	h.metrics.eventsCommitted.Add(float64(len(evs)))
}

// close stops the hub after it delivered what is queued.
func (h *hub) close() {
	close(h.stop)
	h.done.Wait()
}
