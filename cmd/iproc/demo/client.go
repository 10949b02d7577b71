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
	// loginWait bounds a login or resume that is finished after a stop, and
	// the logout that follows it.
	loginWait = 5 * time.Second
)

// errStopped means the run is stopping.
var errStopped = errors.New("the simulator is stopping")

// wsClient makes requests on one connection from one goroutine: it writes a
// request and reads frames up to its response, skipping events.
//
// A stop (interrupt) ends a blocked state change at once, but not a login
// or resume: those finish (bounded by loginWait), so the simulator knows
// whether they made a session and can close it. Abandoning a login's read
// would leave a session nobody closes, shown logged in for the whole grace.
type wsClient struct {
	ws   *websocket.Conn
	next int
	seq  uint64 // highest event seq read

	mu      sync.Mutex
	stopped bool // interrupt was called
	bounded bool // the request in flight is a login, resume or logout
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

// interrupt marks the run stopped and ends a blocked read at once, or,
// for a login, resume or logout in flight, within loginWait.
func (c *wsClient) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	wait := time.Duration(0)
	if c.bounded {
		wait = loginWait
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
}

// isStopped reports whether interrupt was called.
func (c *wsClient) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// request sends command and returns its response; a session.ended event
// on the way is errEnded (except for closeSession, which ends it). When bounded is false it gives up as soon as the
// run stops; when true it waits for the answer up to loginWait after a
// stop (and requestWait otherwise).
func (c *wsClient) request(command string, data any, resource string, bounded bool) (*response, error) {
	c.next++
	id := fmt.Sprintf("demo-%d", c.next)
	req := map[string]any{"command": command, "id": id, "data": data}
	if resource != "" {
		req["resource"] = resource
	}
	c.mu.Lock()
	wait := requestWait
	switch {
	case c.stopped && !bounded:
		c.mu.Unlock()
		return nil, errStopped
	case c.stopped:
		wait = loginWait
	}
	c.bounded = bounded
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
			if c.isStopped() && !bounded {
				return nil, errStopped
			}
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
