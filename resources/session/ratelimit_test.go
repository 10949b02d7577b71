package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"iproc/protocol"
)

// Forty wrong passwords at once for one agent from one address: at most
// the allowance is checked, the rest are refused before bcrypt runs.
func TestConcurrentWrongPasswordsCannotExceedTheLimit(t *testing.T) {
	r := newTestRegistry(t, Config{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 40 {
		wg.Go(func() {
			var req PrepareRequest
			req.Agent.ID, req.Agent.Password = "1001", "wrong"
			_, err := r.Prepare(context.Background(), req, "192.0.2.9:1234")
			mu.Lock()
			codes[code(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[protocol.CodeInvalidCredentials] > pairAllowance || codes[protocol.CodeRateLimited] < 40-pairAllowance {
		t.Fatalf("answers %v: more than %d passwords checked", codes, pairAllowance)
	}
}

func TestLimitsPerAddressWithBackoff(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	try := func(agent, addr string, ok bool) bool {
		t.Helper()
		a, allowed := l.reserve(agent, addr+":1")
		if allowed {
			if ok {
				a.succeed()
			} else {
				a.fail()
			}
		}
		return allowed
	}
	for i := range pairAllowance {
		if !try("1001", "192.0.2.1", false) {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	if try("1001", "192.0.2.1", true) {
		t.Fatal("attempt allowed right after the allowance was used")
	}
	// The real agent at another address is not locked out.
	if !try("1001", "192.0.2.2", true) {
		t.Fatal("a correct password from an address that never failed was refused")
	}
	// Back-off, not a lock: one attempt after 1 s, then 2 s, 4 s.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		now = now.Add(wait - time.Millisecond)
		if try("1001", "192.0.2.1", false) {
			t.Fatalf("attempt allowed %v into a %v back-off", wait-time.Millisecond, wait)
		}
		now = now.Add(time.Millisecond)
		if !try("1001", "192.0.2.1", false) {
			t.Fatalf("attempt refused after a %v back-off", wait)
		}
	}
	// Quiet for the window after the back-off: forgotten.
	now = now.Add(8*time.Second + failureWindow)
	for i := range pairAllowance {
		if !try("1001", "192.0.2.1", false) {
			t.Fatalf("failure %d after the window refused", i+1)
		}
	}
	// One address failing for many agents is limited too.
	for i := range addressAllowance {
		try(string(rune('a'+i)), "192.0.2.3", false)
	}
	if try("1002", "192.0.2.3", true) {
		t.Fatal("an address with too many failures was not limited")
	}
	if !try("1002", "192.0.2.4", true) {
		t.Fatal("another address was limited")
	}
}
