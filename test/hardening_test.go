package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"iproc/server"
)

// These tests pin the hardening of SPEC §3 and §4.2: memory bounded in
// bytes whatever clients send, Host checked against an allow-list (DNS
// rebinding), secrets never echoed, schemes case-insensitive, and one log
// format.

// procStatusKB returns a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatusKB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// metricValue reads one unlabelled metric from /metrics.
func metricValue(t testing.TB, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// Issue 18 (1): six clients that send 1,100 failing 60 KB requests each and
// never read made the server echo every request whole into a queue bounded
// only in frames (+567 MB). Queues are bounded in bytes and a large
// original is replaced by {command, id, truncated}: the peak RSS grows by
// less than 96 MB.
func TestUnreadFailuresKeepMemoryBounded(t *testing.T) {
	const clients, requests = 6, 1100
	p := startBinary(t, "", nil, "--directory", writeTestDirectory(t), "--data", t.TempDir())
	pid := p.cmd.Process.Pid
	frame := maskedFrame([]byte(`{"command":"nosuch","id":"x","data":{"pad":"` + strings.Repeat("p", 60_000) + `"}}`))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial(p.WS, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		conns[i] = ws
	}
	before := procStatusKB(t, pid, "VmRSS")
	var wg sync.WaitGroup
	var sent atomic.Int64
	for _, ws := range conns {
		wg.Go(func() {
			// The frames are written whole to the socket (gorilla's
			// writer would mask each 60 KB again). A server that closed
			// the connection stops reading: the deadline ends the writes.
			nc := ws.NetConn()
			_ = nc.SetWriteDeadline(time.Now().Add(60 * time.Second))
			for range requests {
				if _, err := nc.Write(frame); err != nil {
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	checkFor(t, 60*time.Second, "every request written read, or the connections closed", func() bool {
		return metricValue(t, p.URL, "iproc_frames_received_total") >= float64(sent.Load()) ||
			metricValue(t, p.URL, "iproc_connections") == 0
	})
	peak := procStatusKB(t, pid, "VmHWM")
	grew := float64(peak-before) / 1024
	t.Logf("RSS %d KiB before, peak %d KiB: +%.0f MB", before, peak, grew)
	if grew >= 96 {
		t.Errorf("peak RSS grew by %.0f MB under %d × %d unread failing 60 KB requests, want < 96 MB", grew, clients, requests)
	}
}

// maskedFrame returns payload as one client text frame with the zero mask
// key (masking is then the identity), ready to write to the socket as is.
func maskedFrame(payload []byte) []byte {
	b := []byte{0x81, 0x80 | 127}
	for shift := 56; shift >= 0; shift -= 8 {
		b = append(b, byte(uint64(len(payload))>>shift))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// withHost sends method path with the Host header host and returns the
// status.
func withHost(t testing.TB, method, url, host, body string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dialStatus tries the /ws upgrade with header and returns the HTTP status
// (101 when upgraded).
func dialStatus(t testing.TB, url string, header http.Header) int {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		ws.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// Issue 18 (3): a page on attacker.example whose name resolves to 127.0.0.1
// reached /admin and /ingest (loopback only, no token) and /ws with its
// own Host and Origin. A Host that is not a loopback name, the listen
// address or an allowed host answers 421 on every path.
func TestForeignHostRefused(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.AllowedHosts = []string{"iproc.example"} })
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	foreign := "attacker.example:" + port
	dir := string(testDirectoryJSON(t))
	cgs := `{"GSW_USER_EVENT":"CampaignGroupState"}`

	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/admin/directory", dir},
		{"POST", "/ingest/ocs/campaign-group-state", cgs},
		{"GET", "/healthz", ""},
		{"GET", "/", ""},
	} {
		if got := withHost(t, tc.method, ts.URL+tc.path, foreign, tc.body, map[string]string{"Origin": "http://" + foreign}); got != http.StatusMisdirectedRequest {
			t.Errorf("%s %s with Host %s: %d, want 421", tc.method, tc.path, foreign, got)
		}
	}
	if got := dialStatus(t, ts.WS, http.Header{"Host": {foreign}, "Origin": {"http://" + foreign}}); got != http.StatusMisdirectedRequest {
		t.Errorf("/ws upgrade with Host and Origin %s: %d, want 421", foreign, got)
	}

	// Loopback names, with or without the port, are this server.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "LOCALHOST", "localhost.:" + port} {
		if got := withHost(t, "GET", ts.URL+"/healthz", host, "", nil); got != http.StatusOK {
			t.Errorf("/healthz with Host %s: %d, want 200", host, got)
		}
	}
	if got := dialStatus(t, ts.WS, http.Header{"Host": {"localhost:" + port}, "Origin": {"http://localhost:" + port}}); got != http.StatusSwitchingProtocols {
		t.Errorf("/ws from its own page on localhost: %d, want 101", got)
	}
	// An allowed Host is served, but Origin must still be this host (or an
	// allowed origin): a foreign Origin with a good Host is refused.
	if got := dialStatus(t, ts.WS, http.Header{"Host": {"iproc.example:" + port}, "Origin": {"http://iproc.example:" + port}}); got != http.StatusSwitchingProtocols {
		t.Errorf("/ws with allowed Host iproc.example: %d, want 101", got)
	}
	if got := dialStatus(t, ts.WS, http.Header{"Host": {"localhost:" + port}, "Origin": {"http://" + foreign}}); got != http.StatusForbidden {
		t.Errorf("/ws with Host localhost and Origin %s: %d, want 403", foreign, got)
	}
	// "Loopback only" means the peer and the Host: an allowed but not
	// loopback Host does not open /admin or /ingest without a token.
	if got := withHost(t, "PUT", ts.URL+"/admin/directory", "iproc.example:"+port, dir, nil); got != http.StatusForbidden {
		t.Errorf("PUT /admin/directory with Host iproc.example and no admin token: %d, want 403", got)
	}
	if got := withHost(t, "POST", ts.URL+"/ingest/ocs/campaign-group-state", "iproc.example:"+port, cgs, nil); got != http.StatusForbidden {
		t.Errorf("POST /ingest with Host iproc.example and no ingest token: %d, want 403", got)
	}
	if got := withHost(t, "PUT", ts.URL+"/admin/directory", "localhost:"+port, dir, nil); got != http.StatusOK {
		t.Errorf("PUT /admin/directory from loopback with Host localhost: %d, want 200", got)
	}
}

// rawFrame writes one frame of kind and returns the raw text of the next
// response frame (one with a result).
func rawFrame(t testing.TB, c *client, kind int, frame []byte) []byte {
	t.Helper()
	if err := c.ws.WriteMessage(kind, frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case b := <-c.raw:
			if strings.Contains(string(b), `"result":`) {
				return b
			}
		case <-deadline:
			t.Fatalf("no response to %q", frame)
			return nil
		}
	}
}

// Issue 18 (6) and (1): no echo carries a password or a token, whether the
// frame is JSON, malformed JSON or binary with invalid UTF-8; every frame
// sent is valid UTF-8; an original over 4 KiB is replaced by {command, id,
// truncated}.
func TestEchoesCarryNoSecrets(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	for _, tc := range []struct {
		name  string
		kind  int
		frame string
	}{
		{"unterminated object", websocket.TextMessage, `{"command":"prepareSession","data":{"agent":{"id":"1001","password":"SECRET-1"}}`},
		{"trailing garbage", websocket.TextMessage, `{"command":"prepareSession","data":{"agent":{"id":"1001","password":"SECRET-2"}}} trailing`},
		{"unterminated password", websocket.TextMessage, `{"command":"prepareSession","data":{"agent":{"id":"1001","password":"SECRET-3`},
		{"escaped key", websocket.TextMessage, `{"command":"prepareSession","data":{"agent":{"pass\u0077ord":"SECRET-4"}}`},
		{"token, malformed", websocket.TextMessage, `{"command":"prepareSession","data":{"agent":{"id":"1001","token":"SECRET-5"}},`},
		{"token, valid", websocket.TextMessage, `{"command":"prepareSession","id":"t","data":{"agent":{"id":"1001","token":"SECRET-6"}}}`},
		{"token, unknown command", websocket.TextMessage, `{"command":"nosuch","id":"t","data":{"Token":"SECRET-7"}}`},
		{"password, bad field type", websocket.TextMessage, `{"command":5,"data":{"agent":{"password":"SECRET-8"}}}`},
		{"token not a string", websocket.TextMessage, `{"command":"nosuch","data":{"token":{"value":"SECRET-9"}}}`},
		{"binary, invalid UTF-8", websocket.BinaryMessage, "{\"command\":\"nosuch\xff\",\"id\":\"\xfe\",\"data\":{\"password\":\"SECRET-10\xff\"}}"},
		{"binary, not JSON", websocket.BinaryMessage, "\xff\xfe{\"password\":\"SECRET-11\""},
	} {
		got := rawFrame(t, c, tc.kind, []byte(tc.frame))
		if strings.Contains(string(got), "SECRET") {
			t.Errorf("%s: the answer echoes the secret: %s", tc.name, got)
		}
		if !utf8.Valid(got) {
			t.Errorf("%s: the answer is not valid UTF-8: %q", tc.name, got)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil || m["result"] != "failure" {
			t.Errorf("%s: want a JSON failure, got %s", tc.name, got)
		}
	}

	big := rawFrame(t, c, websocket.TextMessage, []byte(`{"command":"nosuch","id":"big","data":{"pad":"`+strings.Repeat("x", 5000)+`"}}`))
	var resp struct {
		Original json.RawMessage `json:"original"`
	}
	if err := json.Unmarshal(big, &resp); err != nil {
		t.Fatal(err)
	}
	if string(resp.Original) != `{"command":"nosuch","id":"big","truncated":true}` {
		t.Errorf("original of a 5 KB request = %s, want {command, id, truncated}", resp.Original)
	}
	if len(big) > 4096+512 {
		t.Errorf("answer to a 5 KB request is %d bytes", len(big))
	}
}

// Issue 18 (7): authentication schemes are case-insensitive (RFC 7235):
// "bearer" and "BEARER" are Bearer.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.IngestToken, c.AdminToken = "in-tok", "ad-tok" })
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		status, body := post(t, ts.URL+"/ingest/ocs/campaign-group-state", `{}`, map[string]string{"Authorization": scheme + " in-tok"})
		if status == http.StatusUnauthorized {
			t.Errorf("ingest with %q: 401 %v", scheme+" in-tok", body)
		}
		if got := withHost(t, "PUT", ts.URL+"/admin/directory", "", string(testDirectoryJSON(t)), map[string]string{"Authorization": scheme + " ad-tok"}); got != http.StatusOK {
			t.Errorf("admin with %q: %d, want 200", scheme+" ad-tok", got)
		}
	}
	if status, _ := post(t, ts.URL+"/ingest/ocs/campaign-group-state", `{}`, map[string]string{"Authorization": "Basic in-tok"}); status != http.StatusUnauthorized {
		t.Errorf("ingest with Basic: %d, want 401", status)
	}
}

// Issue 18 (7): go-redis logged its own plain-text lines ("redis: ...
// failed to dial") into the JSON log. With Redis gone, every line of the log
// is still one JSON object.
func TestRedisClientLogsAreJSON(t *testing.T) {
	r := startRedis(t, redisOptions{})
	p := startBinary(t, "", nil, "--directory", writeTestDirectory(t), "--data", t.TempDir(), "--redis", r.URL)
	r.Stop()
	checkFor(t, 30*time.Second, "go-redis reports the failed dial", func() bool {
		return strings.Contains(p.output(), "failed to dial")
	})
	for line := range strings.SplitSeq(p.output(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

// Issue 18 (1): connections are bounded: past MaxConnections the upgrade
// answers 503, and a closed connection makes room again.
func TestMaxConnections(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.MaxConnections = 2 })
	a, b := dial(t, ts.WS), dial(t, ts.WS)
	if got := dialStatus(t, ts.WS, nil); got != http.StatusServiceUnavailable {
		t.Fatalf("third connection with --max-connections 2: %d, want 503", got)
	}
	_ = b
	a.ws.Close()
	checkFor(t, 10*time.Second, "a closed connection makes room", func() bool {
		return dialStatus(t, ts.WS, nil) == http.StatusSwitchingProtocols
	})
}
