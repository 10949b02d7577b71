package backoff

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestNextDoublesUpToMaxAndResets(t *testing.T) {
	b := Backoff{First: 100 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Fatalf("after Reset: %v, want 100ms", d)
	}
	var zero Backoff
	if a, b := zero.Next(), zero.Next(); a != 50*time.Millisecond || b != 100*time.Millisecond {
		t.Fatalf("zero value: %v, %v; want 50ms, 100ms", a, b)
	}
}

func TestSleepEndsEarlyWhenDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		start := time.Now()
		if !Sleep(done, time.Second) || time.Since(start) != time.Second {
			t.Fatalf("Sleep with done open: want true after 1s, took %v", time.Since(start))
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			close(done)
		}()
		start = time.Now()
		if Sleep(done, time.Hour) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("Sleep with done closed after 100ms: want false at 100ms, took %v", time.Since(start))
		}
	})
}
