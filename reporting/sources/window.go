package sources

import "time"

// windowSeconds is the span of a window: counts are "in the last minute".
const windowSeconds = 60

// window counts what happened in the last minute, in one-second buckets: a
// fixed 60 counters however much arrives.
type window struct {
	second [windowSeconds]int64 // the Unix second each bucket counts
	count  [windowSeconds]int
}

// add counts n at t.
func (w *window) add(t time.Time, n int) {
	sec := t.Unix()
	i := int(sec % windowSeconds)
	if i < 0 {
		i += windowSeconds
	}
	if w.second[i] != sec {
		w.second[i], w.count[i] = sec, 0
	}
	w.count[i] += n
}

// sum returns the count of the 60 seconds up to and including now's.
func (w *window) sum(now time.Time) int {
	sec, total := now.Unix(), 0
	for i := range w.second {
		if age := sec - w.second[i]; age >= 0 && age < windowSeconds {
			total += w.count[i]
		}
	}
	return total
}
