// Package test holds iproc's black-box tests: real servers on loopback
// (in-process with httptest, or the built binary), real WebSocket clients,
// real HTTP posts.
package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"iproc/reporting/directory"
	"iproc/server"
)

// testPassword is the password of every agent of the test directory.
const testPassword = "pw-for-tests"

// testDirectoryJSON returns a directory with agents 1001–1004 (Agent, ext
// 5001–5004), supervisor 2001, team lead 3001; teams t1 (1001, 1002, lead
// 3001; supervisor 2001) and t2 (1003, 1004; supervisor 2001). Hashes use
// bcrypt cost 4 so logins are cheap.
func testDirectoryJSON(t testing.TB) []byte {
	t.Helper()
	hash, err := directory.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	type agent struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Type         string `json:"type"`
		Extension    string `json:"extension,omitempty"`
		PasswordHash string `json:"passwordHash"`
	}
	type team struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Members     []string `json:"members"`
		Supervisors []string `json:"supervisors"`
	}
	doc := struct {
		Agents []agent `json:"agents"`
		Teams  []team  `json:"teams"`
	}{
		Agents: []agent{
			{"1001", "Ann Lee", "Agent", "5001", hash},
			{"1002", "Bob Ray", "Agent", "5002", hash},
			{"1003", "Cy Dunn", "Agent", "5003", hash},
			{"1004", "Di Hart", "Agent", "5004", hash},
			{"2001", "Sue Pervis", "Supervisor", "6001", hash},
			{"3001", "Tom Lead", "TeamLead", "7001", hash},
		},
		Teams: []team{
			{"t1", "Sales", []string{"1001", "1002", "3001"}, []string{"2001"}},
			{"t2", "Support", []string{"1003", "1004"}, []string{"2001"}},
		},
	}
	b, _ := json.Marshal(doc)
	return b
}

func testDirectory(t testing.TB) *directory.Directory {
	t.Helper()
	d, err := directory.Parse(testDirectoryJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testServer is an in-process server on a loopback httptest listener.
type testServer struct {
	*server.Server
	HTTP *httptest.Server
	URL  string // http://127.0.0.1:port
	WS   string // ws://127.0.0.1:port/ws
	cfg  server.Config
}

// startServer starts an in-process server; mutate adjusts its config. The
// server is shut down when the test ends.
func startServer(t testing.TB, mutate func(*server.Config)) *testServer {
	t.Helper()
	return startServerLog(t, mutate, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
}

// startServerLog is startServer with the server logging to log.
func startServerLog(t testing.TB, mutate func(*server.Config), log zerolog.Logger) *testServer {
	t.Helper()
	cfg := server.Config{Directory: testDirectory(t), DataDir: t.TempDir(), SessionGrace: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	ts := &testServer{Server: srv, HTTP: hs, URL: hs.URL, WS: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", cfg: cfg}
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
	})
	return ts
}

// client is a test WebSocket client: a reader goroutine collects frames;
// requests are matched to responses by id.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan map[string]any
	raw    chan []byte
	closed chan struct{}
	mu     sync.Mutex
	closeE error
	nextID int
	// pending holds frames read while waiting for something else.
	pending []map[string]any
}

func dial(t testing.TB, url string) *client {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, url)
}

// dialFrom dials from the loopback address local (127.0.0.2, say), so
// that the server sees another client address.
func dialFrom(t testing.TB, url, local string) *client {
	t.Helper()
	d := *websocket.DefaultDialer
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	d.NetDialContext = nd.DialContext
	return dialWith(t, &d, url)
}

func dialWith(t testing.TB, d *websocket.Dialer, url string) *client {
	t.Helper()
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, ws: ws, frames: make(chan map[string]any, 10000), raw: make(chan []byte, 10000), closed: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { ws.Close() })
	info := c.waitEvent("service.info")
	if info["data"].(map[string]any)["instance-domain"] == nil {
		t.Fatalf("service.info without instance-domain: %v", info)
	}
	return c
}

func (c *client) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.closeE = err
			c.mu.Unlock()
			return
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			m = map[string]any{"_invalid": string(b)}
		}
		select {
		case c.frames <- m:
		default:
		}
		select {
		case c.raw <- b:
		default:
		}
	}
}

const waitTimeout = 10 * time.Second

// next returns the next frame matching pred, keeping the others for later.
func (c *client) next(what string, pred func(map[string]any) bool) map[string]any {
	c.t.Helper()
	for i, m := range c.pending {
		if pred(m) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return m
		}
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case m := <-c.frames:
			if pred(m) {
				return m
			}
			c.pending = append(c.pending, m)
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s; other frames: %v", what, c.pending)
			return nil
		}
	}
}

// send writes a request with a fresh id and returns the id.
func (c *client) send(command string, data any, resource string) string {
	c.t.Helper()
	c.nextID++
	id := fmt.Sprintf("r%d", c.nextID)
	req := map[string]any{"command": command, "id": id}
	if data != nil {
		req["data"] = data
	}
	if resource != "" {
		req["resource"] = resource
	}
	if err := c.ws.WriteJSON(req); err != nil {
		c.t.Fatalf("write %s: %v", command, err)
	}
	return id
}

// request sends a command and waits for its response.
func (c *client) request(command string, data any, resource string) map[string]any {
	c.t.Helper()
	id := c.send(command, data, resource)
	return c.response(id)
}

func (c *client) response(id string) map[string]any {
	c.t.Helper()
	return c.next("response "+id, func(m map[string]any) bool { return m["id"] == id && m["result"] != nil })
}

// rawRequest writes a raw frame and waits for the next response (a frame
// with a result).
func (c *client) rawRequest(frame string) map[string]any {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.next("response to raw frame", func(m map[string]any) bool { return m["result"] != nil })
}

func (c *client) waitEvent(name string) map[string]any {
	c.t.Helper()
	return c.next("event "+name, func(m map[string]any) bool { return m["name"] == name })
}

// noEvent checks that no frame named name arrives within d.
func (c *client) noEvent(name string, d time.Duration) {
	c.t.Helper()
	for _, m := range c.pending {
		if m["name"] == name {
			c.t.Fatalf("unexpected %s: %v", name, m)
		}
	}
	deadline := time.After(d)
	for {
		select {
		case m := <-c.frames:
			if m["name"] == name {
				c.t.Fatalf("unexpected %s: %v", name, m)
			}
			c.pending = append(c.pending, m)
		case <-deadline:
			return
		}
	}
}

// waitClosed waits for the server to close the connection and returns the
// close error.
func (c *client) waitClosed() error {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(waitTimeout):
		c.t.Fatal("connection not closed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeE
}

// login prepares a session for agent id and returns the session id and
// resume token.
func (c *client) login(id string) (string, string) {
	c.t.Helper()
	resp := c.request("prepareSession", map[string]any{"model": "uccx", "agent": map[string]any{"id": id, "password": testPassword}}, "")
	if resp["result"] != "success" {
		c.t.Fatalf("login %s: %v", id, resp)
	}
	res := resp["resource"].(map[string]any)
	return res["id"].(string), res["resumeToken"].(string)
}

// failure asserts resp is a failure with code and returns it.
func failure(t testing.TB, resp map[string]any, code string) map[string]any {
	t.Helper()
	if resp["result"] != "failure" {
		t.Fatalf("want failure %s, got %v", code, resp)
	}
	f := resp["failure"].(map[string]any)
	if f["code"] != code {
		t.Fatalf("want failure %s, got %v", code, f)
	}
	return f
}

func success(t testing.TB, resp map[string]any) map[string]any {
	t.Helper()
	if resp["result"] != "success" {
		t.Fatalf("want success, got %v", resp)
	}
	d, _ := resp["data"].(map[string]any)
	return d
}

// post sends a JSON notification and returns the status and decoded body.
func post(t testing.TB, url string, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	return postWith(t, http.DefaultClient, url, body, header)
}

// postWith is post through hc.
func postWith(t testing.TB, hc *http.Client, url string, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	_ = dec.Decode(&m)
	return resp.StatusCode, m
}

// checkFor polls cond every 10 ms until it holds or d passes.
func checkFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// buildBinary builds cmd/iproc once per test run into a temp folder.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "iproc-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "iproc")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "../cmd/iproc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// goroutines returns the current goroutine count after letting exiting ones
// finish.
func goroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
