package test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iproc/server"
)

func TestServiceInfoCapabilitiesPing(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	caps := success(t, c.request("getCapabilities", nil, ""))
	for _, k := range []string{"models", "resourceTypes", "reports", "topics", "maxMessageBytes", "resume"} {
		if caps[k] == nil {
			t.Errorf("capabilities lack %s: %v", k, caps)
		}
	}
	if caps["resume"] != true || caps["maxMessageBytes"].(interface{ String() string }).String() != "65536" {
		t.Errorf("capabilities = %v", caps)
	}
	pong := success(t, c.request("ping", nil, ""))
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", pong["time"].(string)); err != nil {
		t.Errorf("ping time %v: %v", pong["time"], err)
	}
}

func TestBadRequestsLeaveConnectionUsable(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	cases := []struct {
		frame, code, command string
	}{
		{`not json at all`, "request.malformed", ""},
		{`[1,2,3]`, "request.malformed", ""},
		{`{"data":{}}`, "request.invalid", ""},
		{`{"command":"ping","data":"x"}`, "request.invalid", "ping"},
		{`{"command":"fly"}`, "request.unknownCommand", "fly"},
		{`{"command":"getState"}`, "session.required", "getState"},
		{`{"command":"report.calljourney","data":{"CallId":"x"}}`, "session.required", "report.calljourney"},
		{`{"command":"resumeSession","data":{"id":"nope","resumeToken":"bad","since":0}}`, "session.notResumable", "resumeSession"},
		{`{"command":"prepareSession","data":{"model":"avaya","agent":{"id":"1001","password":"x"}}}`, "session.unknownModel", "prepareSession"},
		{`{"command":"prepareSession","data":{"agent":{"id":"1001"}}}`, "request.invalid", "prepareSession"},
		{`{"command":"prepareSession","data":{"agent":"1001"}}`, "request.invalid", "prepareSession"},
	}
	for _, tc := range cases {
		resp := c.rawRequest(tc.frame)
		failure(t, resp, tc.code)
		if resp["command"] != tc.command {
			t.Errorf("%s: command = %v, want %q", tc.frame, resp["command"], tc.command)
		}
		if resp["original"] == nil {
			t.Errorf("%s: no original", tc.frame)
		}
		success(t, c.request("ping", nil, "")) // still usable
	}
	resp := c.rawRequest(`not json at all`)
	if resp["original"] != "not json at all" {
		t.Errorf("original of a non-JSON frame = %v", resp["original"])
	}
}

func TestLoginFailuresAndRateLimit(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	wrong := failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": "nope"}}, ""), "session.invalidCredentials")
	unknown := failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "9999", "password": "nope"}}, ""), "session.invalidCredentials")
	if wrong["message"] != unknown["message"] {
		t.Errorf("answers differ for unknown agent and wrong password: %v / %v", wrong, unknown)
	}
	for i := 0; i < 4; i++ {
		failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": "nope"}}, ""), "session.invalidCredentials")
	}
	// Five failures for 1001: even the right password is refused for now.
	failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, ""), "rate.limited")
	// Another agent from the same address is still allowed.
	c.login("1002")
	failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1003", "password": testPassword}}, ""), "session.exists")
}

func TestPerAddressRateLimit(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	for i := 0; i < 20; i++ {
		id := []string{"1001", "1002", "1003", "1004", "2001", "3001", "x1", "x2"}[i%8]
		resp := c.request("prepareSession", map[string]any{"agent": map[string]any{"id": id + strings.Repeat("z", i/8), "password": "bad"}}, "")
		failure(t, resp, "session.invalidCredentials")
	}
	failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1004", "password": testPassword}}, ""), "rate.limited")
}

func TestConfirmOverrideAndMasking(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts.WS)
	resp := a.request("prepareSession", map[string]any{"model": "uccx", "override": false, "agent": map[string]any{"id": "1001", "password": testPassword}}, "")
	res := resp["resource"].(map[string]any)
	if res["type"] != "com.openmethods.iserver.processor.session" || res["id"] == "" || res["resumeToken"] == "" {
		t.Fatalf("resource = %v", res)
	}
	if pw := res["data"].(map[string]any)["agent"].(map[string]any)["password"]; pw != "***" {
		t.Fatalf("password in success data = %v", pw)
	}
	sidA := res["id"].(string)

	b := dial(t, ts.WS)
	confirm := b.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, "")
	if confirm["result"] != "confirm" || confirm["message"] == "" {
		t.Fatalf("want confirm, got %v", confirm)
	}
	orig := confirm["original"].(map[string]any)
	if pw := orig["data"].(map[string]any)["agent"].(map[string]any)["password"]; pw != "***" {
		t.Fatalf("password in confirm original = %v", pw)
	}
	fail := b.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": "wrong-secret"}}, "")
	failure(t, fail, "session.invalidCredentials")
	if strings.Contains(mustJSON(fail), "wrong-secret") {
		t.Fatalf("password echoed in failure: %v", fail)
	}

	sidB, _ := b.login2("1001", true)
	if sidB == sidA {
		t.Fatal("override kept the old session id")
	}
	ended := a.waitEvent("session.ended")
	if ended["data"].(map[string]any)["reason"] != "override" {
		t.Fatalf("session.ended = %v", ended)
	}
	failure(t, a.request("getState", nil, sidA), "session.required")
	success(t, b.request("getState", nil, sidB))
	// The old connection may log in again (it has no session now).
	failure(t, b.request("getState", nil, sidA), "resource.notFound")
}

// login2 prepares with an explicit override flag.
func (c *client) login2(id string, override bool) (string, string) {
	c.t.Helper()
	resp := c.request("prepareSession", map[string]any{"override": override, "agent": map[string]any{"id": id, "password": testPassword}}, "")
	if resp["result"] != "success" {
		c.t.Fatalf("login %s: %v", id, resp)
	}
	res := resp["resource"].(map[string]any)
	return res["id"].(string), res["resumeToken"].(string)
}

func TestSessionResourceState(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	sid, _ := c.login("1001")
	login := c.waitEvent("session.stateChanged")
	if login["data"].(map[string]any)["state"] != "not_ready" {
		t.Fatalf("state after login = %v", login)
	}
	st := success(t, c.request("getState", nil, sid))
	if st["state"] != "not_ready" || st["since"] == "" {
		t.Fatalf("getState = %v", st)
	}
	success(t, c.request("setState", map[string]any{"state": "ready"}, sid))
	ch := c.waitEvent("session.stateChanged")
	if d := ch["data"].(map[string]any); d["state"] != "ready" || ch["seq"] == nil {
		t.Fatalf("stateChanged = %v", ch)
	}
	success(t, c.request("setState", map[string]any{"state": "not_ready", "reason": 32}, sid))
	ch = c.waitEvent("session.stateChanged")
	if d := ch["data"].(map[string]any); d["state"] != "not_ready" || d["reason"] != "32" {
		t.Fatalf("stateChanged = %v", ch)
	}
	st = success(t, c.request("getState", nil, sid))
	if st["state"] != "not_ready" || st["reason"] != "32" {
		t.Fatalf("getState = %v", st)
	}
	f := failure(t, c.request("setState", map[string]any{"state": "lunch"}, sid), "request.invalid")
	if !strings.Contains(f["message"].(string), "data.state") {
		t.Errorf("message does not name the field: %v", f)
	}
	failure(t, c.request("setState", map[string]any{"state": "ready"}, "someone-else"), "resource.notFound")
	failure(t, c.request("getState", nil, ""), "resource.notFound")
	failure(t, c.request("report.teamstatus.begin", map[string]any{"agentId": "1002"}, ""), "auth.forbidden")
	failure(t, c.request("report.calljourney", map[string]any{"CallId": "no-such-call"}, ""), "report.notFound")
	success(t, c.request("closeSession", nil, sid))
	if e := c.waitEvent("session.ended"); e["data"].(map[string]any)["reason"] != "closed" {
		t.Fatalf("session.ended = %v", e)
	}
	failure(t, c.request("getState", nil, sid), "session.required")
	// A closed session is gone: logging in again needs no override.
	c.login("1001")
}

func TestOversizeFrameCloses1009(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	big := `{"command":"ping","id":"` + strings.Repeat("x", 70<<10) + `"}`
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(big))
	err := c.waitClosed()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close = %v, want 1009", err)
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte("{\"command\":\"ping\",\"id\":\"\xff\xfe\"}"))
	err := c.waitClosed()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("close = %v, want 1007", err)
	}
}

func TestOriginAllowList(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.AllowedOrigins = []string{"https://desk.example.com"} })
	hdr := map[string][]string{"Origin": {"https://evil.example.net"}}
	if _, resp, err := websocket.DefaultDialer.Dial(ts.WS, hdr); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin accepted: %v", err)
	}
	hdr["Origin"] = []string{"https://desk.example.com"}
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS, hdr)
	if err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
	ws.Close()
	hdr["Origin"] = []string{ts.URL}
	ws, _, err = websocket.DefaultDialer.Dial(ts.WS, hdr)
	if err != nil {
		t.Fatalf("same-host origin refused: %v", err)
	}
	ws.Close()
}

// A client that stops reading is closed with 1013 once its queue overflows,
// while another client keeps being served.
func TestSlowConsumerClosed1013(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SendQueueSize = 8; c.WriteWait = 20 * time.Second })
	slow, _, err := websocket.DefaultDialer.Dial(ts.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := dial(t, ts.WS)
	// Each answer echoes a 60 KiB id: a few hundred fill every buffer.
	id := strings.Repeat("s", 60<<10)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 2000; i++ {
			// A write blocks only once the server stopped reading (it closed
			// the connection); the deadline ends the writing then, well
			// within the server's write deadline, so the client reads the
			// close frame.
			_ = slow.SetWriteDeadline(time.Now().Add(3 * time.Second))
			if slow.WriteMessage(websocket.TextMessage, []byte(`{"command":"ping","id":"`+id+`"}`)) != nil {
				return
			}
		}
	})
	start := time.Now()
	for i := 0; i < 50; i++ {
		success(t, fast.request("ping", nil, ""))
	}
	fastTook := time.Since(start)
	wg.Wait()
	// Now read what the slow client got: eventually the close frame.
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err = slow.ReadMessage()
		if err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("slow client closed with %v, want 1013", err)
	}
	t.Logf("50 pings on the fast client took %v while the slow one filled up", fastTook)
}

func TestShutdownClosesSocketsAndLeavesNoGoroutines(t *testing.T) {
	before := goroutines()
	func() {
		ts := startServer(t, nil)
		var clients []*client
		for _, id := range []string{"1001", "2001"} {
			c := dial(t, ts.WS)
			c.login(id)
			clients = append(clients, c)
		}
		if err := ts.Close(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		ts.HTTP.Close()
		for _, c := range clients {
			err := c.waitClosed()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Errorf("close on shutdown = %v, want 1001", err)
			}
			c.ws.Close()
		}
	}()
	checkFor(t, 5*time.Second, "goroutines back to the start", func() bool { return goroutines() <= before+2 })
}

// Forty wrong passwords for one agent sent at once from one address: at
// most five are checked (session.invalidCredentials), the rest refused
// before bcrypt runs (rate.limited). The real agent logging in from another
// address is not locked out by them.
func TestConcurrentWrongPasswordsRateLimited(t *testing.T) {
	ts := startServer(t, nil)
	conns := make([]*client, 40)
	ids := make([]string, 40)
	for i := range conns {
		conns[i] = dial(t, ts.WS)
	}
	for i, c := range conns {
		ids[i] = c.send("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": "wrong"}}, "")
	}
	codes := map[string]int{}
	for i, c := range conns {
		resp := c.response(ids[i])
		f, _ := resp["failure"].(map[string]any)
		codes[fmt.Sprint(f["code"])]++
	}
	if codes["session.invalidCredentials"] > 5 || codes["rate.limited"] < 35 {
		t.Fatalf("answers to 40 concurrent wrong passwords: %v; want at most 5 checked", codes)
	}
	other := dialFrom(t, ts.WS, "127.0.0.2")
	other.login("1001")
}
