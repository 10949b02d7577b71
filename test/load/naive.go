package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The naive hub is the baseline of the fanout scenarios: gorilla's chat
// example made to speak just enough of iproc's protocol for the load
// client. One hub goroutine owns the set of clients and broadcasts each
// posted notification, encoded once, to every client's channel of 256
// frames; each client has a read pump (answering every request with a
// success) and a write pump that writes one frame per WebSocket message. It
// stores nothing, checks nothing and keeps no history: what iproc does on
// top of it (durable commit, entitlement, resume) is what the ratio costs.

// naiveEnv, when set, makes this binary serve the naive hub on its address
// (the naive-* scenarios' child).
const naiveEnv = "IPROC_LOAD_NAIVE_ADDR"

type naiveHub struct {
	register, unregister chan *naiveClient
	broadcast            chan []byte
	clients              map[*naiveClient]bool
}

type naiveClient struct {
	hub  *naiveHub
	ws   *websocket.Conn
	send chan []byte
}

func (h *naiveHub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case msg := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- msg:
				default: // slow consumer: dropped, as in the chat example
					delete(h.clients, c)
					close(c.send)
				}
			}
		}
	}
}

func (c *naiveClient) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.ws.Close()
	}()
	c.ws.SetReadLimit(64 << 10)
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		// Every request succeeds: {"command":…,"id":"…","result":"success","resource":{"id":"naive"}}.
		// The request's own id is the last one (the agent's is in data).
		id := uintAfter(msg[max(0, bytes.LastIndex(msg, []byte(`"id":"`))):], []byte(`"id":"`))
		c.send <- []byte(`{"command":"ok","id":"` + strconv.FormatUint(id, 10) + `","result":"success","resource":{"id":"naive"}}`)
	}
}

func (c *naiveClient) writePump() {
	ping := time.NewTicker(30 * time.Second)
	defer func() {
		ping.Stop()
		c.ws.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if !ok {
				_ = c.ws.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// serveNaive serves the naive hub on addr until SIGTERM or ten minutes.
func serveNaive(addr string, stderr io.Writer) int {
	if !isLoopbackAddr(addr) {
		fmt.Fprintln(stderr, "load: the naive hub wants a loopback address")
		return 2
	}
	hub := &naiveHub{register: make(chan *naiveClient), unregister: make(chan *naiveClient),
		broadcast: make(chan []byte, 256), clients: map[*naiveClient]bool{}}
	go hub.run()
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	var seq atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &naiveClient{hub: hub, ws: ws, send: make(chan []byte, 256)}
		hub.register <- c
		go c.writePump()
		go c.readPump()
	})
	mux.HandleFunc("POST /ingest/ocs/contact-processed", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := seq.Add(1)
		var b bytes.Buffer
		b.Grow(len(body) + 64)
		b.WriteString(`{"name":"` + topicCP + `","seq":`)
		b.WriteString(strconv.FormatUint(n, 10))
		b.WriteString(`,"data":`)
		b.Write(body)
		b.WriteByte('}')
		hub.broadcast <- b.Bytes()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accepted":true,"seq":` + strconv.FormatUint(n, 10) + `}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		select {
		case <-sig:
		case <-time.After(10 * time.Minute):
		}
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(stderr, "load: naive hub:", err)
		return 1
	}
	return 0
}

// startNaive starts the naive hub as a child process (this binary with
// naiveEnv set) and waits until it answers.
func startNaive(ctx context.Context) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	t := &target{logs: &lockedBuffer{}}
	if t.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	t.cmd = exec.Command(exe)
	t.cmd.Env = append(os.Environ(), naiveEnv+"="+t.addr)
	t.cmd.Stdout, t.cmd.Stderr = t.logs, t.logs
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start naive hub: %w", err)
	}
	t.pid = t.cmd.Process.Pid
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + t.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			return t, nil
		}
		if i > 400 || ctx.Err() != nil {
			t.stop()
			return nil, fmt.Errorf("naive hub not up: %w: %s", err, t.logs.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
