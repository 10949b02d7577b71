package server

import (
	"sync"
	"time"

	"iproc/reporting/store"
	"iproc/resources/session"
)

// hub hands committed events to the session registry, in seq order, from one
// goroutine, so that committing never waits on delivery and delivery never
// waits on a socket.
type hub struct {
	batches  chan []store.Event
	sessions *session.Registry
	metrics  *metrics
	stop     chan struct{}
	done     sync.WaitGroup
}

// hubQueue bounds the committed batches waiting for delivery; when full, the
// committer waits (back-pressure on ingest rather than unbounded memory).
const hubQueue = 4096

func newHub(m *metrics) *hub {
	return &hub{batches: make(chan []store.Event, hubQueue), metrics: m, stop: make(chan struct{})}
}

// onCommit is the log's OnCommit callback.
func (h *hub) onCommit(evs []store.Event) {
	select {
	case h.batches <- evs:
	case <-h.stop:
	}
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
