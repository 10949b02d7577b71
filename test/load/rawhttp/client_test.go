package rawhttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The raw client reads every shape of answer net/http's server gives (a
// Content-Length body, a chunked one, Connection: close, an error status)
// and reuses the connection when it may.
const cpPath = "/ingest/ocs/contact-processed"

func TestRawClient(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "chunked":
			w.WriteHeader(200)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("c", 3000)))
				w.(http.Flusher).Flush()
			}
		case "close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte(`{"accepted":true,"seq":2}`))
		case "busy":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"error":"busy"}`))
		default:
			if r.URL.Path != cpPath || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(400)
				return
			}
			_, _ = w.Write(append(append([]byte(`{"accepted":true,"echo":`), body...), '}'))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(strings.TrimPrefix(srv.URL, "http://"), cpPath)
	defer c.CloseIdle()
	ctx := context.Background()
	check := func(body string, wantStatus int, want string) {
		t.Helper()
		status, got, err := c.Post(ctx, []byte(body), nil)
		if err != nil || status != wantStatus || string(got) != want {
			t.Fatalf("post %q: %d %q %v, want %d %q", body, status, got, err, wantStatus, want)
		}
	}
	check(`1`, 200, `{"accepted":true,"echo":1}`)
	check(`2`, 200, `{"accepted":true,"echo":2}`)
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for two posts, want 1 (keep-alive)", n)
	}
	check("chunked", 200, strings.Repeat("c", 4096)) // the first 4 KiB of 9,000 bytes
	check("busy", 503, `{"error":"busy"}`)
	check("close", 200, `{"accepted":true,"seq":2}`)
	check(`3`, 200, `{"accepted":true,"echo":3}`)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a new one after Connection: close)", n)
	}
}
