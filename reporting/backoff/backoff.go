// Package backoff is the reconnect back-off shared by iproc's retry loops
// (the CDR consumer, the Redis event-log tail, the demo simulator): waits
// that double from First up to Max, start over after a success, and end
// early when the caller stops.
package backoff

import "time"

// Backoff yields the waits between attempts. The zero value waits 50 ms
// doubling to 5 s. It is not safe for concurrent use: each loop owns one.
type Backoff struct {
	// First is the first wait. Zero means 50ms.
	First time.Duration
	// Max bounds every wait. Zero means 5s.
	Max  time.Duration
	next time.Duration
}

// Next returns the wait before the next attempt and doubles the one after,
// up to Max.
func (b *Backoff) Next() time.Duration {
	first, limit := b.First, b.Max
	if first <= 0 {
		first = 50 * time.Millisecond
	}
	if limit <= 0 {
		limit = 5 * time.Second
	}
	if b.next <= 0 {
		b.next = first
	}
	d := min(b.next, limit)
	b.next = min(2*d, limit)
	return d
}

// Reset makes the next wait First again (after an attempt that worked).
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits d, or less when done is closed first; it reports whether the
// loop should go on (done is still open).
func Sleep(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
