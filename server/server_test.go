package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/directory"
	"iproc/resources/session"
)

// These tests reach inside the server for the two failures a client cannot
// provoke from outside: a store that no longer writes (server.unavailable,
// HTTP 503) and a handler that panics (server.internal). The black-box tests
// in test/ cover everything else.

const internalTestPassword = "pw-internal"

func newInternalServer(t testing.TB) (*Server, *httptest.Server) {
	t.Helper()
	hash, err := directory.HashPassword(internalTestPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := directory.Parse([]byte(fmt.Sprintf(`{"agents":[
		{"id":"1001","name":"Ann","type":"Agent","extension":"5001","passwordHash":%[1]q},
		{"id":"2001","name":"Sue","type":"Supervisor","passwordHash":%[1]q}],
		"teams":[{"id":"t1","name":"Sales","members":["1001"],"supervisors":["2001"]}]}`, hash)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Directory: dir, DataDir: t.TempDir()}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
	})
	return srv, hs
}

// wsClient is a minimal synchronous client: each call writes one request
// and reads frames until the response with the same id.
type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
	n  int
}

func dialInternal(t testing.TB, hs *httptest.Server) *wsClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsClient{t: t, ws: ws}
}

func (c *wsClient) call(command, resource string, data any) map[string]any {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("q%d", c.n)
	if err := c.ws.WriteJSON(map[string]any{"command": command, "id": id, "resource": resource, "data": data}); err != nil {
		c.t.Fatal(err)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 1000 { // bounded: events may come before the response
		var m map[string]any
		if err := c.ws.ReadJSON(&m); err != nil {
			c.t.Fatalf("waiting for %s: %v", command, err)
		}
		if m["id"] == id && m["result"] != nil {
			return m
		}
	}
	c.t.Fatalf("no response to %s in 1000 frames", command)
	return nil
}

func (c *wsClient) login(agent string) string {
	c.t.Helper()
	resp := c.call(protocol.CmdPrepareSession, "", map[string]any{"agent": map[string]any{"id": agent, "password": internalTestPassword}})
	res, _ := resp["resource"].(map[string]any)
	id, _ := res["id"].(string)
	if resp["result"] != protocol.ResultSuccess || id == "" {
		c.t.Fatalf("login %s: %v", agent, resp)
	}
	return id
}

func failureCode(t testing.TB, resp map[string]any) string {
	t.Helper()
	f, _ := resp["failure"].(map[string]any)
	if resp["result"] != protocol.ResultFailure || f == nil {
		t.Fatalf("want a failure, got %v", resp)
	}
	if ctx, _ := f["context"].(string); strings.Contains(ctx, "goroutine") || strings.Contains(ctx, ".go:") {
		t.Errorf("failure context leaks internals: %q", ctx)
	}
	code, _ := f["code"].(string)
	return code
}

// A store that cannot write answers server.unavailable on the WebSocket,
// 503 on ingest and on /readyz, while reads that need no store still work.
func TestStoreUnavailable(t *testing.T) {
	srv, hs := newInternalServer(t)
	c := dialInternal(t, hs)
	sid := c.login("1001")
	if err := srv.store.Close(); err != nil { // what a failed disk looks like from above
		t.Fatal(err)
	}

	if code := failureCode(t, c.call(protocol.CmdSetState, sid, map[string]any{"state": "ready"})); code != protocol.CodeUnavailable {
		t.Errorf("setState on a closed store: code %q, want %q", code, protocol.CodeUnavailable)
	}
	if code := failureCode(t, c.call(protocol.CmdGetState, sid, nil)); code != protocol.CodeUnavailable {
		t.Errorf("getState on a closed store: code %q, want %q", code, protocol.CodeUnavailable)
	}
	if resp := c.call(protocol.CmdPing, "", nil); resp["result"] != protocol.ResultSuccess {
		t.Errorf("ping after store failures: %v", resp)
	}

	body := `{"GSW_USER_EVENT":"CampaignGroupState","GSW_DATE_TIME":"1700000000.250","GSW_TENANT_NAME":"T","GSW_TENANT_CCID":101,
		"GSW_CAMPAIGN_GROUP_NAME":"G","GSW_CAMPAIGN_GROUP_GUID":"6C3B","GSW_GROUP_NAME":"Grp","GSW_QUEUE_NAME":"Q",
		"GSW_CAMPAIGN_GROUP_STATE":2,"GSW_CAMPAIGN_GROUP_ACTION":1,"GSW_CAMPAIGN_GROUP_ACTOR":1}`
	resp, err := http.Post(hs.URL+"/ingest/ocs/campaign-group-state", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = json.Unmarshal(raw, &answer)
	if resp.StatusCode != http.StatusServiceUnavailable || answer.Error.Code != protocol.CodeUnavailable {
		t.Errorf("ingest on a closed store: %d %s, want 503 %s", resp.StatusCode, raw, protocol.CodeUnavailable)
	}

	ready, err := http.Get(hs.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a closed store: %d, want 503", ready.StatusCode)
	}
}

// panickingReports stands in for a report handler with a bug.
type panickingReports struct{}

func (panickingReports) Handle(context.Context, *session.Session, *protocol.Request) (any, error) {
	panic("a bug in a report")
}

// A handler that panics answers server.internal without its stack, the
// process survives and the connection stays usable.
func TestHandlerPanicIsInternalFailure(t *testing.T) {
	srv, hs := newInternalServer(t)
	srv.router.reports = panickingReports{}
	c := dialInternal(t, hs)
	c.login("2001")
	resp := c.call(protocol.CmdCampaignGroups, "", nil)
	if code := failureCode(t, resp); code != protocol.CodeInternal {
		t.Errorf("panicking handler: code %q, want %q", code, protocol.CodeInternal)
	}
	if f := resp["failure"].(map[string]any); strings.Contains(fmt.Sprint(f["message"]), "a bug in a report") {
		t.Errorf("failure message leaks the panic value: %v", f)
	}
	if resp := c.call(protocol.CmdPing, "", nil); resp["result"] != protocol.ResultSuccess {
		t.Errorf("ping after a panic: %v", resp)
	}
}
