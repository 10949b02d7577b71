package server

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// benchServer starts an in-process server with the demo directory on a
// loopback httptest listener.
func benchServer(b *testing.B) (*Server, string) {
	b.Helper()
	s, err := New(Config{DataDir: b.TempDir()}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		_ = s.Close()
		hs.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// serverConns returns the server's connections once there are n.
func serverConns(b *testing.B, s *Server, n int) []*conn {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		if len(s.conns) >= n {
			out := make([]*conn, 0, len(s.conns))
			for c := range s.conns {
				out = append(out, c)
			}
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
	}
	b.Fatalf("fewer than %d connections", n)
	return nil
}

// BenchmarkConnSend measures the outbound path of one connection: b.N
// event frames of 700 bytes queued (waiting for room, like a replay) and
// written to a loopback WebSocket client that reads and discards them.
func BenchmarkConnSend(b *testing.B) {
	s, url := benchServer(b)
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	c := serverConns(b, s, 1)[0]
	frame := []byte(`{"name":"outbound.contactProcessed","seq":123456,"data":{"GSW_AGENT_ID":"1001","pad":"` + strings.Repeat("x", 620) + `"}}`)
	var got sync.WaitGroup
	got.Add(1)
	go func() {
		defer got.Done()
		for n := -1; n < b.N; n++ { // service.info, then the frames
			if _, _, err := ws.NextReader(); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	ctx := context.Background()
	for range b.N {
		if !c.SendWait(ctx, frame) {
			b.Fatal("connection closed")
		}
	}
	got.Wait()
}

// BenchmarkIdleConnMemory opens 500 WebSocket connections and reports the
// heap and stack memory per idle connection (B/conn): the server's side plus
// about 1 KiB of the in-process client's (256-byte buffers, no goroutine).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 500
	_, url := benchServer(b)
	var ms runtime.MemStats
	mem := func() uint64 {
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	b.ReportAllocs()
	for range b.N {
		before := mem()
		clients := make([]*websocket.Conn, n)
		small := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
		for i := range clients {
			ws, _, err := small.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := ws.ReadMessage(); err != nil { // service.info
				b.Fatal(err)
			}
			clients[i] = ws
		}
		time.Sleep(writerLinger + 200*time.Millisecond) // the writers of the idle connections end
		after := mem()
		b.ReportMetric(float64(after-before)/n, "B/conn")
		for _, ws := range clients {
			ws.Close()
		}
	}
}
