package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d at start\n%s\n", n, base, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// checkFor polls fn until it returns nil or timeout passes.
func checkFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// recorder collects OnCommit batches.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	batches int
}

func (r *recorder) onCommit(evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	r.batches++
}

func (r *recorder) snapshot() ([]Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...), r.batches
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// open opens a log in dir (a fresh temp dir when empty) and closes it at
// the end of the test.
func open(t *testing.T, cfg BoltConfig) *Bolt {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "sub", "events.db")
	}
	if cfg.Log.GetLevel() == zerolog.DebugLevel { // the zero Logger
		cfg.Log = testLogger(t)
	}
	b, err := OpenBolt(cfg)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func rec(name, data, key string) Record {
	return Record{Name: name, Data: json.RawMessage(data), DedupKey: key}
}

func mustAppend(t *testing.T, b *Bolt, recs ...Record) []Result {
	t.Helper()
	res, err := b.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(recs) {
		t.Fatalf("Append: %d results for %d records", len(res), len(recs))
	}
	return res
}

func readAll(t *testing.T, b *Bolt) []Event {
	t.Helper()
	evs, err := b.Read(context.Background(), 0, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return evs
}
