package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"iproc/protocol"
)

// Bounds of the simulator's requests.
const (
	// requestWait bounds the wait for one response while the run is live.
	requestWait = 15 * time.Second
	// loginWait bounds, once the run stops, the wait for an answer in
	// flight and for the logout that follows.
	loginWait = 5 * time.Second
)

// errStopped means the run is stopping.
var errStopped = errors.New("the simulator is stopping")

// wsClient makes requests on one connection from one goroutine: it writes a
// request and reads frames up to its response, skipping events.
//
// A stop (interrupt) does not cut a read short: gorilla's connection is
// unusable after a read times out, and the simulator still needs it to
// log its agent out. A request in flight at the stop, a login in
// particular, finishes within loginWait instead, so the simulator knows
// whether it made a session and can close it (abandoning a login's read
// left a session nobody closed, shown logged in for the whole grace).
type wsClient struct {
	ws   *websocket.Conn
	next int
	seq  uint64 // highest event seq read

	mu      sync.Mutex
	stopped bool // interrupt was called
}

// response is the part of a response or event the simulator reads.
type response struct {
	Name     string          `json:"name"`
	Seq      uint64          `json:"seq"`
	ID       json.RawMessage `json:"id"`
	Result   string          `json:"result"`
	Resource struct {
		ID          string `json:"id"`
		ResumeToken string `json:"resumeToken"`
	} `json:"resource"`
	Failure *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failure"`
}

func (r *response) failure() string {
	if r.Failure == nil {
		return r.Result
	}
	return r.Failure.Code + ": " + r.Failure.Message
}

// interrupt marks the run stopped and bounds the wait for a response in
// flight to loginWait.
func (c *wsClient) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	_ = c.ws.SetReadDeadline(time.Now().Add(loginWait))
}

// request sends command and returns its response; a session.ended event
// on the way is errEnded (except for closeSession, which ends it). Once
// the run is stopping, only logins, resumes and logouts (must) are sent,
// and their answers are awaited for at most loginWait.
func (c *wsClient) request(command string, data any, resource string, must bool) (*response, error) {
	c.next++
	id := fmt.Sprintf("demo-%d", c.next)
	req := map[string]any{"command": command, "id": id, "data": data}
	if resource != "" {
		req["resource"] = resource
	}
	c.mu.Lock()
	wait := requestWait
	switch {
	case c.stopped && !must:
		c.mu.Unlock()
		return nil, errStopped
	case c.stopped:
		wait = loginWait
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(requestWait))
	if err := c.ws.WriteJSON(req); err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	want, _ := json.Marshal(id)
	for {
		var r response
		if err := c.ws.ReadJSON(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", command, err)
		}
		c.seq = max(c.seq, r.Seq)
		if r.Name == protocol.EventSessionEnded && command != protocol.CmdCloseSession {
			return nil, errEnded
		}
		if r.Result != "" && bytes.Equal(r.ID, want) {
			return &r, nil
		}
	}
}

// goodbye logs the session out (so the agent shows logged_out rather than
// a session left to expire), waits for the answer (bounded), and closes the
// connection cleanly. It reports whether the server confirmed the logout.
func (c *wsClient) goodbye(sid string) bool {
	r, err := c.request(protocol.CmdCloseSession, map[string]any{}, sid, true)
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "demo stopped"))
	return err == nil && r.Result == protocol.ResultSuccess
}
