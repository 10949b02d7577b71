package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"iproc/test/load/rawhttp"
)

// proc is the built iproc binary running on a loopback port.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	URL  string
	WS   string
	logs *bytes.Buffer
	done chan struct{}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBinary runs the built iproc with args plus --listen on a free port,
// waits for /readyz, and kills it when the test ends. With --tls-cert in
// args, URL and WS are https:// and wss://.
func startBinary(t testing.TB, addr string, env []string, args ...string) *proc {
	t.Helper()
	if addr == "" {
		addr = freePort(t)
	}
	p := &proc{t: t, addr: addr, URL: "http://" + addr, WS: "ws://" + addr + "/ws", logs: &bytes.Buffer{}, done: make(chan struct{})}
	ready := http.DefaultClient
	if slices.Contains(args, "--tls-cert") {
		p.URL, p.WS = "https://"+addr, "wss://"+addr+"/ws"
		// Only to wait for readiness: the test checks the certificate.
		ready = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	p.cmd = exec.Command(binary(t), append([]string{"serve", "--listen", addr}, args...)...)
	p.cmd.Env = append(append(os.Environ(), "IPROC_LOG_FORMAT=json"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, &lockedWriter{w: p.logs}
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := ready.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("iproc exited at start-up: %s", p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("iproc not ready: %s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) output() string {
	if w, ok := p.cmd.Stderr.(*lockedWriter); ok {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	return p.logs.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// writeTestDirectory writes the test directory to a file and returns its path.
func writeTestDirectory(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(path, testDirectoryJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The binary is SIGKILLed while concurrent ingests are in flight; after a
// restart every acknowledged notification is in the log (a retry answers
// duplicate with the first seq) and a resumed session gets each event once.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	dir, data := writeTestDirectory(t), t.TempDir()
	args := []string{"--directory", dir, "--data", data, "--session-grace", "2m"}
	p := startBinary(t, "", nil, args...)
	sup := dial(t, p.WS)
	sid, token := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"outbound.contactProcessed"}}, sid))

	type ack struct {
		guid string
		seq  int64
	}
	var mu sync.Mutex
	var acks []ack
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// The posters share one cheap keep-alive client and fill in one encoded
	// body, so that the test process does not hold the rate down.
	client := rawhttp.New(strings.TrimPrefix(p.URL, "http://"), pathCP)
	defer client.CloseIdle()
	template := jsonOf(contactProcessed("{GUID}", "ATT-{GUID}", "1001"))
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			var resp []byte
			for i := 0; ctx.Err() == nil; i++ {
				guid := fmt.Sprintf("CRASH-%02d-%05d", w, i)
				status, body, err := client.Post(ctx, []byte(strings.ReplaceAll(template, "{GUID}", guid)), resp[:0])
				if err != nil {
					return // the server died
				}
				resp = body
				var a struct {
					Accepted bool  `json:"accepted"`
					Seq      int64 `json:"seq"`
				}
				if status != 200 || json.Unmarshal(body, &a) != nil || !a.Accepted {
					continue
				}
				mu.Lock()
				acks = append(acks, ack{guid, a.Seq})
				mu.Unlock()
			}
		})
	}
	// Let some events be delivered, then kill the server mid-stream.
	var lastSeen int64
	seen := map[int64]int{}
	for lastSeen < 200 {
		lastSeen = seqOf(t, sup.waitEvent("outbound.contactProcessed"))
		seen[lastSeen]++
	}
	// Ingest runs flat out for a while (the rate is logged: the SIGKILL
	// happens under load, not after it).
	rateFrom := time.Now()
	mu.Lock()
	rateBase := len(acks)
	mu.Unlock()
	checkFor(t, 30*time.Second, "3,000 acknowledgements", func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) >= 3000 })
	mu.Lock()
	t.Logf("ingest before SIGKILL: %.0f acks/s over the last %d", float64(len(acks)-rateBase)/time.Since(rateFrom).Seconds(), len(acks)-rateBase)
	mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	cancel()
	wg.Wait()
	// Everything else the supervisor saw before the crash, in order.
	for _, m := range append(sup.pending, drain(sup)...) {
		if m["name"] == "outbound.contactProcessed" {
			n := seqOf(t, m)
			seen[n]++
			lastSeen = max(lastSeen, n)
		}
	}
	sup.pending = nil
	mu.Lock()
	acked := append([]ack(nil), acks...)
	mu.Unlock()
	t.Logf("%d acknowledged before SIGKILL; supervisor had seen up to seq %d", len(acked), lastSeen)

	p2 := startBinary(t, "", nil, args...)
	// Every acknowledged notification is there: a retry is a duplicate
	// with the first seq (checked by 16 retriers).
	var vg sync.WaitGroup
	next := make(chan ack)
	for range 16 {
		vg.Go(func() {
			for a := range next {
				status, body := post(t, p2.URL+pathCP, jsonOf(contactProcessed(a.guid, "ATT-"+a.guid, "1001")), nil)
				if status != 200 || body["duplicate"] != true || body["seq"] != json.Number(fmt.Sprint(a.seq)) {
					t.Errorf("acknowledged %s (seq %d) after restart: %d %v", a.guid, a.seq, status, body)
				}
			}
		})
	}
	for _, a := range acked {
		next <- a
	}
	close(next)
	vg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	r, resp := resumeOn(t, p2.WS, sid, token, lastSeen)
	if success(t, resp)["recovered"] != true {
		t.Fatalf("resume after restart: %v", resp)
	}
	_, marker := post(t, p2.URL+pathCP, jsonOf(contactProcessed("MARKER", "ATT-MARKER", "1001")), nil)
	markerSeq := seqOf(t, marker)
	for {
		ev := r.waitEvent("outbound.contactProcessed")
		n := seqOf(t, ev)
		if n <= lastSeen {
			t.Fatalf("event %d delivered again after resume from %d", n, lastSeen)
		}
		seen[n]++
		if n == markerSeq {
			break
		}
	}
	for _, a := range acked {
		if seen[a.seq] != 1 {
			t.Fatalf("acknowledged event %d delivered %d times", a.seq, seen[a.seq])
		}
	}
}

// drain returns the frames already received.
func drain(c *client) []map[string]any {
	var out []map[string]any
	for {
		select {
		case m := <-c.frames:
			out = append(out, m)
		case <-time.After(200 * time.Millisecond):
			return out
		}
	}
}

func TestBinaryGracefulShutdownAndBadSettings(t *testing.T) {
	p := startBinary(t, "", nil, "--directory", writeTestDirectory(t), "--data", t.TempDir())
	c := dial(t, p.WS)
	c.login("1001")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit within 10 s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d: %s", code, p.output())
	}
	if err := c.waitClosed(); err == nil || !strings.Contains(err.Error(), "1001") {
		t.Errorf("socket closed with %v, want 1001", err)
	}
	t.Logf("SIGTERM → exit in %v", time.Since(start))

	bad := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--listen", "nonsense"}, nil, "--listen"},
		{[]string{"--session-grace", "soon"}, nil, "--session-grace"},
		{nil, []string{"IPROC_HISTORY=-1h"}, "IPROC_HISTORY"},
		{[]string{"--directory", "/no/such/file.json"}, nil, "--directory"},
		{[]string{"--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"}, nil, "--tls-cert"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--source-quiet", "0s"}, nil, "--source-quiet"},
		{nil, []string{"IPROC_SOURCE_QUIET=often"}, "IPROC_SOURCE_QUIET"},
	}
	for _, b := range bad {
		cmd := exec.Command(binary(t), append([]string{"serve", "--data", t.TempDir()}, b.args...)...)
		cmd.Env = append(append(os.Environ(), "IPROC_LOG_FORMAT=json", "IPROC_INGEST_TOKEN=super-secret-token"), b.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v %v: started", b.args, b.env)
			continue
		}
		if !strings.Contains(string(out), b.want) {
			t.Errorf("%v %v: output does not name %s: %s", b.args, b.env, b.want, out)
		}
		if strings.Contains(string(out), "super-secret-token") {
			t.Errorf("secret in output: %s", out)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; lines > 2 {
			t.Errorf("%v: %d lines of output, want one clear line: %s", b.args, lines, out)
		}
	}
}

func TestHashPasswordCommand(t *testing.T) {
	cmd := exec.Command(binary(t), "hash-password")
	cmd.Stdin = strings.NewReader("my secret\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(string(out))
	if !strings.HasPrefix(hash, "$2a$10$") && !strings.HasPrefix(hash, "$2b$10$") {
		t.Fatalf("hash = %q", hash)
	}
}
