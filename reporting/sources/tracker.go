package sources

import (
	"sync"
	"time"

	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/store"
)

// maxPending bounds the status changes of one source waiting to be stored
// (while the log cannot write): past it the oldest are dropped, and the
// current status is still stored when the log writes again.
const maxPending = 16

// Config configures a Tracker. Zero values mean defaults.
type Config struct {
	// Quiet is the silence after which a source that sent before is quiet.
	// Zero means DefaultQuiet.
	Quiet time.Duration
	// Dialer adds the dialer.cdr source (with Redis).
	Dialer bool
	// Logger receives a line per change of status.
	Logger zerolog.Logger
}

// Probe is one reading of the dialer's Redis lists.
type Probe struct {
	// ListLength is the CDRs waiting in the dialer's list.
	ListLength int64
	// DeadLetters is the length of the dead-letter list.
	DeadLetters int64
	// Err is why Redis could not be read; nil when it could.
	Err error
}

// Tracker keeps the health of the sources. It is safe for concurrent use.
type Tracker struct {
	quiet time.Duration
	log   zerolog.Logger
	wake  chan struct{} // a change waits to be stored, or a due time moved

	mu   sync.Mutex
	srcs []*source
}

// source is the state of one source; Tracker.mu guards it.
type source struct {
	name                      string
	lastSeen                  time.Time
	accepted, rejected, dupes window
	observed                  string    // the status as this instance last computed it
	observedSince             time.Time // when observed began; zero for unknown since start
	stored                    stored    // the latest status event in the log
	pending                   []change  // changes waiting to be stored, oldest first
	dialer                    bool
	probed                    bool // a probe succeeded at least once
	down                      bool
	listLength, deadLetters   int64
	nonEmptySince             time.Time // zero while the list is empty
}

// stored is a source's latest status event in the log.
type stored struct {
	status string
	seq    uint64
	since  time.Time
}

// change is a change of status waiting to be stored.
type change struct {
	status string
	since  time.Time
}

// NewTracker returns a tracker with every source unknown.
func NewTracker(cfg Config) *Tracker {
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	t := &Tracker{quiet: cfg.Quiet, log: cfg.Logger, wake: make(chan struct{}, 1)}
	names := []string{CampaignGroupState, ContactProcessed, Callback}
	if cfg.Dialer {
		names = append(names, DialerCDR)
	}
	for _, n := range names {
		t.srcs = append(t.srcs, &source{name: n, observed: Unknown, stored: stored{status: Unknown}, dialer: n == DialerCDR})
	}
	return t
}

// Quiet returns the silence after which a source is quiet.
func (t *Tracker) Quiet() time.Duration { return t.quiet }

// find returns the source named name, nil when not tracked; t.mu must be
// held.
func (t *Tracker) find(name string) *source {
	for _, s := range t.srcs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// Committed takes committed events (the log's OnCommit, in seq order): the
// sources' notifications and the status events stored by any instance.
func (t *Tracker) Committed(evs []store.Event) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var touched *source
	for _, ev := range evs {
		if ev.Name == protocol.TopicSourceHealth {
			name, status, since := healthFields(ev)
			if s := t.find(name); s != nil && ev.Seq > s.stored.seq {
				s.stored = stored{status: status, seq: ev.Seq, since: since}
			}
			continue
		}
		name, ok := Of(ev.Name)
		if !ok {
			continue
		}
		s := t.find(name)
		if s == nil {
			continue
		}
		at := ev.Time
		if at.IsZero() {
			at = now
		}
		if at.After(s.lastSeen) {
			s.lastSeen = at
		}
		s.accepted.add(now, 1)
		if touched != s {
			if touched != nil {
				t.evaluateLocked(touched, now)
			}
			touched = s
		}
	}
	if touched != nil {
		t.evaluateLocked(touched, now)
	}
}

// Rejected counts n notifications of the source name refused as invalid.
func (t *Tracker) Rejected(name string, n int) {
	t.count(name, n, func(s *source) *window { return &s.rejected })
}

// Duplicates counts n notifications of the source name answered as
// duplicates.
func (t *Tracker) Duplicates(name string, n int) {
	t.count(name, n, func(s *source) *window { return &s.dupes })
}

func (t *Tracker) count(name string, n int, w func(*source) *window) {
	if n <= 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	if s := t.find(name); s != nil {
		w(s).add(now, n)
	}
	t.mu.Unlock()
}

// Probed takes a reading of the dialer's lists.
func (t *Tracker) Probed(p Probe) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.find(DialerCDR)
	if s == nil {
		return
	}
	s.down = p.Err != nil
	if !s.down {
		s.probed = true
		s.listLength, s.deadLetters = p.ListLength, p.DeadLetters
		switch {
		case p.ListLength == 0:
			s.nonEmptySince = time.Time{}
		case s.nonEmptySince.IsZero():
			s.nonEmptySince = now
		}
	}
	t.evaluateLocked(s, now)
}

// Report returns every source's status now, in a fixed order.
func (t *Tracker) Report() []Status {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Status, len(t.srcs))
	for i, s := range t.srcs {
		t.evaluateLocked(s, now)
		out[i] = s.statusLocked(now)
	}
	return out
}

// compute returns the source's status at now.
func (s *source) compute(now time.Time, quiet time.Duration) string {
	switch {
	case s.dialer && s.down:
		return Down
	case s.lastSeen.IsZero():
		return Unknown
	case now.Sub(s.lastSeen) >= quiet:
		return Quiet
	}
	return OK
}

// evaluateLocked computes s's status at now and, when it changed, queues
// the change to be stored. t.mu must be held.
func (t *Tracker) evaluateLocked(s *source, now time.Time) {
	st := s.compute(now, t.quiet)
	if st == s.observed {
		return
	}
	since := now
	switch {
	case st == Quiet:
		since = s.lastSeen.Add(t.quiet) // the same instant on every instance
	case st == OK && s.observed != Down:
		since = s.lastSeen
	}
	ev := t.log.Info()
	if st == Quiet || st == Down {
		ev = t.log.Warn()
	}
	ev.Str("source", s.name).Str("status", st).Str("was", s.observed).Time("since", since).Msg("source health changed")
	s.observed, s.observedSince = st, since
	if len(s.pending) == maxPending {
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, change{status: st, since: since})
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// statusLocked is s as reported at now, with the observed status.
func (s *source) statusLocked(now time.Time) Status {
	st := Status{
		Source:              s.name,
		Status:              s.observed,
		PerMinute:           s.accepted.sum(now),
		RejectedPerMinute:   s.rejected.sum(now),
		DuplicatesPerMinute: s.dupes.sum(now),
	}
	if !s.observedSince.IsZero() {
		st.Since = formatTime(s.observedSince)
	}
	if !s.lastSeen.IsZero() {
		seen := formatTime(s.lastSeen)
		st.LastSeen, st.lastSeen = &seen, s.lastSeen
	}
	if s.dialer && s.probed {
		length, dead, nonEmpty := s.listLength, s.deadLetters, int64(0)
		if !s.nonEmptySince.IsZero() {
			nonEmpty = int64(now.Sub(s.nonEmptySince) / time.Second)
		}
		st.ListLength, st.DeadLetters, st.ListNonEmptySeconds = &length, &dead, &nonEmpty
	}
	st.Reason = reason(s.observed)
	return st
}

// reason says why a source has status, empty when there is nothing to say.
func reason(status string) string {
	if status == Down {
		return "the dialer's Redis cannot be reached"
	}
	return ""
}

// nextDue returns when the next ok source turns quiet; zero when none will.
// t.mu must be held.
func (t *Tracker) nextDueLocked() time.Time {
	var next time.Time
	for _, s := range t.srcs {
		if s.observed != OK {
			continue
		}
		due := s.lastSeen.Add(t.quiet)
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}
