package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"iproc/reporting/store"
)

// TestIngestRefusedWhileDeliveryIsFarBehind: past the hard lag bound, ingest
// answers 503 with Retry-After and stores nothing; back under it, it accepts.
func TestIngestRefusedWhileDeliveryIsFarBehind(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/ingest/gms/callback", bytes.NewReader([]byte(
			`{"event_id":"_cbe_on_service_create","timestamp":"1700000000","_service_id":"s1"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "127.0.0.1:1234"
		req.Host = "127.0.0.1" // httptest's default Host is refused (421)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		return w
	}
	_, head := s.store.Bounds()
	s.hub.lag.Add(s.hub.hardLag + 1) // as if that many events waited for delivery
	w := post()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !bytes.Contains(w.Body.Bytes(), []byte("server.unavailable")) {
		t.Fatalf("overloaded: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if _, h := s.store.Bounds(); h != head {
		t.Fatalf("head moved from %d to %d while refusing", head, h)
	}
	s.hub.delivered(int(s.hub.hardLag + 1))
	if w := post(); w.Code != http.StatusOK {
		t.Fatalf("after catching up: %d %s", w.Code, w.Body)
	}
}

// TestCommitterWaitsForDelivery: above the soft bound, onCommit holds the
// committer until delivery catches up, at most maxStall.
func TestCommitterWaitsForDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(nil)
		h.softLag, h.hardLag = 10, 100
		evs := make([]store.Event, 20)
		start := time.Now()
		h.onCommit(evs) // nobody delivers: the wait ends at maxStall
		if d := time.Since(start); d != maxStall {
			t.Fatalf("waited %v, want %v", d, maxStall)
		}
		<-h.batches
		done := make(chan time.Duration)
		go func() {
			start := time.Now()
			h.onCommit(evs[:1])
			done <- time.Since(start)
		}()
		time.Sleep(10 * time.Millisecond) // fake time: delivery catches up 10 ms later
		<-h.batches
		h.delivered(21)
		if d := <-done; d != 10*time.Millisecond {
			t.Fatalf("waited %v after delivery caught up at 10ms", d)
		}
		// Under the soft bound there is no wait at all.
		start = time.Now()
		h.onCommit(evs[:5])
		if d := time.Since(start); d != 0 {
			t.Fatalf("waited %v under the soft bound", d)
		}
	})
}
