package session

import (
	"net"
	"sync"
	"time"
)

// Failed-login limits: more failures than these within failureWindow are
// refused with rate.limited before any password is checked.
const (
	failureWindow   = time.Minute
	maxAgentFails   = 5
	maxAddressFails = 20
	maxTracked      = 100_000
)

// failureLimiter counts failed logins per agent id and per client address
// in a fixed window.
type failureLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	agents  map[string]*window
	address map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	return &failureLimiter{now: now, agents: map[string]*window{}, address: map[string]*window{}}
}

func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

func (l *failureLimiter) count(m map[string]*window, key string) int {
	w := m[key]
	if w == nil || l.now().Sub(w.start) >= failureWindow {
		return 0
	}
	return w.n
}

// allow reports whether a login attempt may be checked.
func (l *failureLimiter) allow(agent, remote string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count(l.agents, agent) < maxAgentFails && l.count(l.address, hostOf(remote)) < maxAddressFails
}

// fail records a failed attempt.
func (l *failureLimiter) fail(agent, remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, kv := range []struct {
		m   map[string]*window
		key string
	}{{l.agents, agent}, {l.address, hostOf(remote)}} {
		w := kv.m[kv.key]
		if w == nil || now.Sub(w.start) >= failureWindow {
			if len(kv.m) >= maxTracked {
				l.prune(kv.m, now)
			}
			w = &window{start: now}
			kv.m[kv.key] = w
		}
		w.n++
	}
}

// succeed clears an agent's failures after a good login.
func (l *failureLimiter) succeed(agent string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.agents, agent)
}

func (l *failureLimiter) prune(m map[string]*window, now time.Time) {
	for k, w := range m {
		if now.Sub(w.start) >= failureWindow {
			delete(m, k)
		}
	}
	if len(m) >= maxTracked { // all fresh: forget the lot rather than grow
		clear(m)
	}
}
