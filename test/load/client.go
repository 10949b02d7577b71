package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// sentField is the user-defined notification field that carries the time a
// notification was posted (Unix nanoseconds, as a string), so a receiver
// measures POST → frame latency without a lookup.
const sentField = "X_LOAD_SENT_NS"

// wsClient is one desktop: a WebSocket connection with a reader goroutine
// that answers requests by id and counts events without allocating.
type wsClient struct {
	ws      *websocket.Conn
	wmu     sync.Mutex // one writer at a time
	nextID  atomic.Int64
	session string

	pmu     sync.Mutex
	pending map[string]chan []byte

	// watch is the event name prefix counted, e.g. `{"name":"outbound.contactProcessed"`.
	watch []byte
	// sentKey precedes the sent time (Unix ns digits) in a watched frame.
	sentKey []byte
	// total, when set, counts watched events of all clients.
	total *atomic.Int64
	// recvd counts watched events; the fields below it are guarded by smu.
	recvd     atomic.Int64
	smu       sync.Mutex
	lastSeq   uint64
	reordered int64
	latencies []int32 // microseconds, POST (or request) → frame
	// onEvent, when set, is called for every event frame (from the reader).
	onEvent func(frame []byte, now time.Time)

	done      chan struct{}
	closeCode atomic.Int64
}

// dialer reads with 16 KiB buffers: the server writes a burst of frames at
// once, and the client should not need a system call per frame.
var dialer = websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 1024}

// watchOpts say which events a client counts.
type watchOpts struct {
	// name is the event counted; empty counts none.
	name string
	// sentKey precedes the sent time in its frames; empty means sentField.
	sentKey string
	// total, when set, is added to for every counted event.
	total *atomic.Int64
}

// dialClient connects to ws and starts the reader.
func dialClient(ctx context.Context, url string, w watchOpts) (*wsClient, error) {
	ws, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &wsClient{ws: ws, pending: map[string]chan []byte{}, done: make(chan struct{}), total: w.total, sentKey: sentKey}
	if w.name != "" {
		c.watch = []byte(`{"name":"` + w.name + `"`)
	}
	if w.sentKey != "" {
		c.sentKey = []byte(w.sentKey)
	}
	go c.readLoop()
	return c, nil
}

var (
	cmdPrefix = []byte(`{"command":`)
	idKey     = []byte(`"id":"`)
	seqKey    = []byte(`"seq":`)
	sentKey   = []byte(`"` + sentField + `":"`)
)

func (c *wsClient) readLoop() {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeCode.Store(int64(ce.Code))
			} else {
				c.closeCode.Store(-1)
			}
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.closeCode.Store(-1)
			return
		}
		frame := buf.Bytes()
		now := time.Now()
		if bytes.HasPrefix(frame, cmdPrefix) {
			c.answer(frame)
			continue
		}
		if c.watch != nil && bytes.HasPrefix(frame, c.watch) {
			c.count(frame, now)
		}
		if c.onEvent != nil {
			c.onEvent(frame, now)
		}
	}
}

// answer hands a response to the request waiting for its id.
func (c *wsClient) answer(frame []byte) {
	i := bytes.Index(frame, idKey)
	if i < 0 {
		return
	}
	rest := frame[i+len(idKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return
	}
	c.pmu.Lock()
	ch := c.pending[string(rest[:j])]
	delete(c.pending, string(rest[:j]))
	c.pmu.Unlock()
	if ch != nil {
		ch <- bytes.Clone(frame)
	}
}

// count records a watched event: its seq order and, when it carries the
// sent time, its latency.
func (c *wsClient) count(frame []byte, now time.Time) {
	seq := uintAfter(frame, seqKey)
	sent := uintAfter(frame, c.sentKey)
	c.smu.Lock()
	if seq <= c.lastSeq {
		c.reordered++
	}
	c.lastSeq = seq
	if sent > 0 {
		c.latencies = append(c.latencies, int32(min(now.UnixNano()-int64(sent), 1<<40)/1000))
	}
	c.smu.Unlock()
	c.recvd.Add(1)
	if c.total != nil {
		c.total.Add(1)
	}
}

// uintAfter parses the decimal number right after key in b (0 if absent).
func uintAfter(b, key []byte) uint64 {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0
	}
	var v uint64
	for _, d := range b[i+len(key):] {
		if d < '0' || d > '9' {
			break
		}
		v = v*10 + uint64(d-'0')
	}
	return v
}

// request sends a command and waits for its response.
func (c *wsClient) request(ctx context.Context, command string, data any, resource string) (map[string]any, error) {
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	ch := make(chan []byte, 1)
	c.pmu.Lock()
	c.pending[id] = ch
	c.pmu.Unlock()
	msg := map[string]any{"command": command, "id": id, "data": data}
	if resource != "" {
		msg["resource"] = resource
	}
	b, _ := json.Marshal(msg)
	if err := c.write(b); err != nil {
		return nil, err
	}
	select {
	case frame := <-ch:
		var resp map[string]any
		if err := json.Unmarshal(frame, &resp); err != nil {
			return nil, err
		}
		if resp["result"] != "success" {
			return resp, fmt.Errorf("%s: %s", command, frame)
		}
		return resp, nil
	case <-c.done:
		return nil, fmt.Errorf("%s: connection closed (%d)", command, c.closeCode.Load())
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", command, ctx.Err())
	}
}

// send writes a command without waiting for its response.
func (c *wsClient) send(command string, data any, resource string) error {
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	b, _ := json.Marshal(map[string]any{"command": command, "id": id, "data": data, "resource": resource})
	return c.write(b)
}

func (c *wsClient) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// login runs prepareSession (with override) and remembers the session id.
func (c *wsClient) login(ctx context.Context, id string) error {
	resp, err := c.request(ctx, "prepareSession", map[string]any{"model": "uccx", "override": true,
		"agent": map[string]string{"id": id, "password": loadPassword}}, "")
	if err != nil {
		return err
	}
	res, _ := resp["resource"].(map[string]any)
	c.session, _ = res["id"].(string)
	if c.session == "" {
		return fmt.Errorf("prepareSession %s: no session id", id)
	}
	return nil
}

// subscribe subscribes the session to topics.
func (c *wsClient) subscribe(ctx context.Context, topics ...string) error {
	_, err := c.request(ctx, "subscribe", map[string]any{"topics": topics}, c.session)
	return err
}

// close sends a normal close and closes the socket.
func (c *wsClient) close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	_ = c.ws.Close()
}

// takeLatencies returns and clears the recorded latencies.
func (c *wsClient) takeLatencies() []int32 {
	c.smu.Lock()
	defer c.smu.Unlock()
	l := c.latencies
	c.latencies = nil
	return l
}

// connectAll dials n clients with workers in parallel, each set up by
// setup (login, subscribe, …). It stops at the first error.
func connectAll(ctx context.Context, url string, n, workers int, w watchOpts, setup func(ctx context.Context, i int, c *wsClient) error) ([]*wsClient, error) {
	clients := make([]*wsClient, n)
	var next atomic.Int64
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := dialClient(ctx, url, w)
				if err == nil {
					clients[i] = c
					err = setup(ctx, i, c)
				}
				if err != nil {
					errc <- fmt.Errorf("client %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		closeAll(clients)
		return nil, err
	}
	return clients, nil
}

// closeAll closes every client in parallel.
func closeAll(clients []*wsClient) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.close()
		})
	}
	wg.Wait()
}
