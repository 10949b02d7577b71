package session

import (
	"net"
	"sync"
	"time"
)

// Login limits. Failures are counted per (agent, client address) and per
// client address. A key may fail freely up to its allowance; past it, each
// further attempt waits a back-off that doubles with each failure (1 s,
// 2 s, 4 s, … at most backoffMax) instead of a hard lock, and a key whose
// last failure is older than failureWindow (and whose back-off is over) is
// forgotten. Nothing counts per agent alone: a correct password from an
// address that has not failed is never refused because other addresses
// failed, so nobody can lock an agent out from elsewhere.
//
// An attempt is reserved before the password is checked and counted as a
// failure until it succeeds, so concurrent attempts cannot exceed the
// allowance: of 40 wrong passwords sent at once for one agent from one
// address, at most pairAllowance are checked (bcrypt is the costly part).
const (
	pairAllowance    = 5
	addressAllowance = 20
	failureWindow    = time.Minute
	backoffBase      = time.Second
	backoffMax       = time.Minute
	maxTracked       = 100_000
)

// loginLimiter applies the login limits.
type loginLimiter struct {
	now func() time.Time

	mu    sync.Mutex
	pairs map[pairKey]*failures
	addrs map[string]*failures
}

type pairKey struct{ agent, addr string }

// failures is what one key has done lately.
type failures struct {
	n        int       // failures counted
	inflight int       // attempts reserved and not yet decided
	last     time.Time // last failure
	until    time.Time // no attempt before this (back-off)
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, pairs: map[pairKey]*failures{}, addrs: map[string]*failures{}}
}

// attempt is a reserved login attempt; exactly one of fail and succeed
// must be called.
type attempt struct {
	l    *loginLimiter
	pair pairKey
}

// reserve reserves an attempt of agent from remote; ok is false when the
// limits refuse it now.
func (l *loginLimiter) reserve(agent, remote string) (attempt, bool) {
	k := pairKey{agent, hostOf(remote)}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	p, a := get(l.pairs, k, now), get(l.addrs, k.addr, now)
	if !p.allows(now, pairAllowance) || !a.allows(now, addressAllowance) {
		return attempt{}, false
	}
	p.inflight++
	a.inflight++
	return attempt{l: l, pair: k}, true
}

// fail counts the attempt as a failure.
func (t attempt) fail() {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	now := t.l.now()
	t.l.pairs[t.pair].failed(now, pairAllowance)
	t.l.addrs[t.pair.addr].failed(now, addressAllowance)
}

// release gives the attempt back without counting it (the credentials
// could not be checked).
func (t attempt) release() {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	if p := t.l.pairs[t.pair]; p != nil {
		p.inflight--
	}
	if a := t.l.addrs[t.pair.addr]; a != nil {
		a.inflight--
	}
}

// succeed releases the attempt and forgets the agent's failures from that
// address.
func (t attempt) succeed() {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	delete(t.l.pairs, t.pair)
	if a := t.l.addrs[t.pair.addr]; a != nil {
		a.inflight--
	}
}

// get returns key's record, made or refreshed.
func get[K comparable](m map[K]*failures, key K, now time.Time) *failures {
	f := m[key]
	if f != nil && f.inflight == 0 && now.Sub(f.last) >= failureWindow && !now.Before(f.until) {
		f.n = 0
	}
	if f == nil {
		if len(m) >= maxTracked {
			prune(m, now)
		}
		f = &failures{}
		m[key] = f
	}
	return f
}

// allows reports whether one more attempt may start now.
func (f *failures) allows(now time.Time, allowance int) bool {
	if now.Before(f.until) {
		return false
	}
	if f.n >= allowance { // backing off: one attempt at a time
		return f.inflight == 0
	}
	return f.n+f.inflight < allowance
}

// failed turns a reserved attempt into a failure.
func (f *failures) failed(now time.Time, allowance int) {
	f.inflight--
	f.n++
	f.last = now
	if over := f.n - allowance; over >= 0 {
		f.until = now.Add(min(backoffBase<<min(over, 16), backoffMax))
	}
}

// prune forgets the keys that have nothing to remember.
func prune[K comparable](m map[K]*failures, now time.Time) {
	for k, f := range m {
		if f.inflight == 0 && now.Sub(f.last) >= failureWindow && !now.Before(f.until) {
			delete(m, k)
		}
	}
	if len(m) >= maxTracked { // all fresh: forget the idle ones rather than grow
		for k, f := range m {
			if f.inflight == 0 {
				delete(m, k)
			}
		}
	}
}

func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
