package server

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// The writer runs only on demand: pings still go out on their timer, and a
// server shutdown still sends the 1001 close frame.
func TestPingsAndCloseWithoutParkedWriter(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), PingPeriod: 20 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var pings atomic.Int64
	ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
	closed := make(chan error, 1)
	first := make(chan string, 1)
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				closed <- err
				return
			}
			select {
			case first <- string(b):
			default:
			}
		}
	}()
	select {
	case f := <-first:
		if !strings.Contains(f, `"service.info"`) {
			t.Fatalf("first frame %s, want service.info", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no service.info")
	}
	for deadline := time.Now().Add(10 * time.Second); pings.Load() < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings, want 3", pings.Load())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("closed with %v, want 1001", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not closed")
	}
}

// A peer's pings are answered with pongs carrying their payload, written by
// the writer (an empty payload too), and its close frame is answered with a
// normal close.
func TestPeerPingAndCloseAnswered(t *testing.T) {
	_, hs := newInternalServer(t)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pongs := make(chan string, 4)
	ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	for _, payload := range []string{"are-you-there", ""} {
		if err := ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pongs:
			if got != payload {
				t.Errorf("pong payload %q, want %q", got, payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no pong for ping %q", payload)
		}
	}
	msg := websocket.FormatCloseMessage(4000, "bye")
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Errorf("server answered the close with %v, want 1000", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not answer the close")
	}
}
