package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// stalledBody is a request body that announces more than it sends: its
// first Read reports how much the handler allocated before reading, then
// the body ends early.
type stalledBody struct {
	before    uint64
	allocated chan uint64
	done      bool
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.ErrUnexpectedEOF
	}
	b.done = true
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.allocated <- ms.TotalAlloc - b.before
	p[0] = '{'
	return 1, nil
}

func (b *stalledBody) Close() error { return nil }

// Issue 18 (5): ingest grew a buffer to Content-Length before reading, so
// 300 requests announcing 1 MiB and sending nothing held 300 MiB. The body
// is read as it arrives: before its first byte the handler has allocated
// far less than the announced megabyte.
func TestIngestBodyNotAllocatedFromContentLength(t *testing.T) {
	srv, _ := newInternalServer(t)
	h := srv.Handler()
	body := &stalledBody{allocated: make(chan uint64, 1)}
	req := httptest.NewRequest(http.MethodPost, "/ingest/ocs/campaign-group-state", body)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = 1 << 20
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1"
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	body.before = ms.TotalAlloc
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	select {
	case n := <-body.allocated:
		t.Logf("allocated %d bytes before the body's first byte", n)
		if n >= 256<<10 {
			t.Errorf("the handler allocated %d bytes before the body's first byte arrived (Content-Length 1 MiB), want < 256 KiB", n)
		}
	default:
		t.Fatalf("the body was never read: %d %s", rec.Code, rec.Body)
	}
}
