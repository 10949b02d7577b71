package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"iproc/resources/session"
)

// benchConn returns a connection whose writer writes to an in-memory pipe
// drained by a goroutine, so the router's whole path (decode, dispatch,
// marshal, enqueue, frame) is measured without network I/O.
func benchConn(b *testing.B, srv *Server) *conn {
	b.Helper()
	local, peer := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	c := &conn{cfg: &srv.connCfg, remote: "127.0.0.1:1", ctx: context.Background(), done: make(chan struct{})}
	c.w.init(local, &srv.connCfg.writer, c)
	b.Cleanup(func() {
		c.closeWith(1000, "")
		c.w.wait()
		local.Close()
		peer.Close()
	})
	return c
}

func benchLogin(b *testing.B, srv *Server, c *conn) *session.Session {
	b.Helper()
	var pr session.PrepareRequest
	pr.Agent.ID, pr.Agent.Password = "1001", internalTestPassword
	p, err := srv.sessions.Prepare(context.Background(), pr, c.remote)
	if err != nil || p.Session == nil {
		b.Fatalf("prepare: %v %+v", err, p)
	}
	c.sess.Store(p.Session)
	srv.sessions.Attach(context.Background(), p.Session, c, p.From, []byte(`{}`))
	return p.Session
}

// BenchmarkRouterPing is decode + dispatch + marshal + enqueue of the
// cheapest request.
func BenchmarkRouterPing(b *testing.B) {
	srv, _ := newInternalServer(b)
	c := benchConn(b, srv)
	frame := []byte(`{"command":"ping","id":"42"}`)
	b.ReportAllocs()
	for b.Loop() {
		srv.router.handle(c, frame)
	}
}

// BenchmarkRouterGetState is a typical session-resource request: decode,
// authorise the resource, read the agent state from the store, answer.
func BenchmarkRouterGetState(b *testing.B) {
	srv, _ := newInternalServer(b)
	c := benchConn(b, srv)
	s := benchLogin(b, srv, c)
	frame := []byte(fmt.Sprintf(`{"command":"getState","resource":%q,"id":"42"}`, s.ID))
	b.ReportAllocs()
	for b.Loop() {
		srv.router.handle(c, frame)
	}
}

// BenchmarkRouterSetState includes the durable append (one fsync per group
// commit) that every state change costs.
func BenchmarkRouterSetState(b *testing.B) {
	srv, _ := newInternalServer(b)
	c := benchConn(b, srv)
	s := benchLogin(b, srv, c)
	frames := [][]byte{
		[]byte(fmt.Sprintf(`{"command":"setState","resource":%q,"id":"1","data":{"state":"not_ready","reason":"32"}}`, s.ID)),
		[]byte(fmt.Sprintf(`{"command":"setState","resource":%q,"id":"2","data":{"state":"ready"}}`, s.ID)),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		srv.router.handle(c, frames[i%2])
		i++
	}
}
