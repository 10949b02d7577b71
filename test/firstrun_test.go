package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iproc/server"
)

// TestWrongMethodAnswers405WithAllow checks that a wrong method on an
// endpoint answers 405 with Allow, an unknown path under /ingest/ or
// /admin/ answers 404, and that both bodies are JSON errors with a code.
func TestWrongMethodAnswers405WithAllow(t *testing.T) {
	ts := startServer(t, nil)
	for _, c := range []struct {
		method, path string
		status       int
		allow, code  string
	}{
		{"GET", pathCP, 405, "POST", "request.invalid"},
		{"PUT", pathCallback, 405, "POST", "request.invalid"},
		{"GET", pathCGS, 405, "POST", "request.invalid"},
		{"DELETE", "/admin/directory", 405, "GET, HEAD, PUT", "request.invalid"},
		{"POST", "/healthz", 405, "GET, HEAD", "request.invalid"},
		{"POST", "/metrics", 405, "GET, HEAD", "request.invalid"},
		{"POST", "/ws", 405, "GET, HEAD", "request.invalid"},
		{"GET", "/ingest/ocs/nothing", 404, "", "resource.notFound"},
		{"GET", "/admin/nothing", 404, "", "resource.notFound"},
	} {
		req, err := http.NewRequest(c.method, ts.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct {
				Code, Message string
				Fields        []string
			}
		}
		if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code || e.Error.Message == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: body %q (%s), want a JSON error with code %s", c.method, c.path, body, resp.Header.Get("Content-Type"), c.code)
		}
		if c.status == 405 && (len(e.Error.Fields) != 1 || e.Error.Fields[0] != "method") {
			t.Errorf("%s %s: fields %v, want [method]", c.method, c.path, e.Error.Fields)
		}
	}
}

// TestServiceInfoNamesTheConfiguredCTI checks that service.info reports
// the configured contact-centre platform, Cisco UCCX by default, in
// process and from the binary's flags and environment.
func TestServiceInfoNamesTheConfiguredCTI(t *testing.T) {
	info := func(url string) map[string]any {
		t.Helper()
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		var ev map[string]any
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		return ev["data"].(map[string]any)
	}
	d := info(startServer(t, nil).WS)
	if d["cti-vendor"] != "Cisco" || d["cti-version"] != "UCCX" {
		t.Errorf("default service.info %v, want cti-vendor Cisco, cti-version UCCX", d)
	}
	d = info(startServer(t, func(c *server.Config) { c.CTIVendor, c.CTIVersion = "Cisco", "UCCX 12.5" }).WS)
	if d["cti-vendor"] != "Cisco" || d["cti-version"] != "UCCX 12.5" {
		t.Errorf("configured service.info %v, want UCCX 12.5", d)
	}
	p := startBinary(t, "", []string{"IPROC_CTI_VENDOR=Cisco Systems"}, "--data", t.TempDir(), "--cti-version", "UCCX 15.0")
	d = info(p.WS)
	if d["cti-vendor"] != "Cisco Systems" || d["cti-version"] != "UCCX 15.0" {
		t.Errorf("binary service.info %v, want the env's vendor and the flag's version", d)
	}
}

// TestBinaryBindsBeforeSayingServing checks the start-up lines a new user
// reads: "serving <URL to open>" once the port is bound; a port in use
// stops start-up without ever saying "serving"; a second iproc on the same
// data folder is told that another iproc is using it.
func TestBinaryBindsBeforeSayingServing(t *testing.T) {
	data := t.TempDir()
	p := startBinary(t, "", nil, "--data", data)
	if want := "serving http://" + p.addr + "/"; !strings.Contains(p.output(), want) {
		t.Errorf("start-up log lacks %q:\n%s", want, p.output())
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out := runBinary(t, "serve", "--listen", taken.Addr().String(), "--data", t.TempDir())
	if strings.Contains(out, "serving") || !strings.Contains(out, "cannot listen on "+taken.Addr().String()) {
		t.Errorf("port in use: output %q, want a listen error and no \"serving\"", out)
	}

	out = runBinary(t, "serve", "--listen", freePort(t), "--data", data)
	if !strings.Contains(out, "another iproc is using "+data) || strings.Contains(out, "database is locked") {
		t.Errorf("second iproc on %s: output %q, want \"another iproc is using %s\"", data, out, data)
	}
}

// runBinary runs iproc with args, expecting it to fail within 20 s, and
// returns its output.
func runBinary(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "IPROC_LOG_FORMAT=json")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("iproc %v still running after 20 s: %s", args, out)
	}
	if err == nil {
		t.Errorf("iproc %v exited 0, want a failure: %s", args, out)
	}
	return string(out)
}

// TestReplayedEventsTimedApart checks that events replayed by
// resumeSession are timed in iproc_replay_to_socket_seconds, not in
// iproc_commit_to_socket_seconds, whose samples are live deliveries only
// (after a restart, replays used to fill it with the clients' time away).
func TestReplayedEventsTimedApart(t *testing.T) {
	ts := startServer(t, nil)
	sup := dial(t, ts.WS)
	sid, token := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": allTopics}, sid))
	since := seqOf(t, sup.waitEvent("session.stateChanged"))
	sup.ws.Close()
	before := scrape(t, ts.URL)

	// Three notifications while the supervisor is away, then a resume.
	for i := range 3 {
		if status, b := post(t, ts.URL+pathCP, jsonOf(contactProcessed(fmt.Sprintf("REPLAY-GUID-%d", i), fmt.Sprintf("REPLAY-ATT-%d", i), "1001")), nil); status != 200 {
			t.Fatalf("contact-processed: %d %v", status, b)
		}
	}
	back := dial(t, ts.WS)
	success(t, back.request("resumeSession", map[string]any{"id": sid, "resumeToken": token, "since": since}, ""))
	for range 3 {
		back.waitEvent("outbound.contactProcessed")
	}
	// One live event after the replay.
	if status, b := post(t, ts.URL+pathCP, jsonOf(contactProcessed("REPLAY-GUID-LIVE", "REPLAY-ATT-LIVE", "1001")), nil); status != 200 {
		t.Fatalf("contact-processed: %d %v", status, b)
	}
	back.waitEvent("outbound.contactProcessed")
	checkFor(t, 5*time.Second, "the live delivery timed", func() bool {
		return scrape(t, ts.URL)["iproc_commit_to_socket_seconds_count"]-before["iproc_commit_to_socket_seconds_count"] >= 1
	})
	after := scrape(t, ts.URL)
	checkDeltas(t, before, after, map[string]float64{
		"iproc_replay_to_socket_seconds_count": 3,
		"iproc_commit_to_socket_seconds_count": 1,
	})
}
