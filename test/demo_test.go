package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"iproc/cmd/iproc/demo"
	"iproc/reporting/directory"
	"iproc/server"
)

// demoAgents returns the agents (type Agent) of the bundled demo directory.
func demoAgents() []demo.Agent {
	var out []demo.Agent
	for _, a := range directory.Demo().Agents() {
		if a.Type == directory.TypeAgent {
			out = append(out, demo.Agent{ID: a.ID, Extension: a.Extension})
		}
	}
	return out
}

// demoLogin logs c in as id and returns the session id.
func demoLogin(t *testing.T, c *client, id string) string {
	t.Helper()
	resp := c.request("prepareSession", map[string]any{"agent": map[string]any{"id": id, "password": testPassword}}, "")
	if resp["result"] != "success" {
		t.Fatalf("login %s: %v", id, resp)
	}
	return resp["resource"].(map[string]any)["id"].(string)
}

// startDemo runs the simulator against ts with fast states until the
// returned stop is called; stop returns once demo.Run has returned. The
// in-process tests use the test directory: the demo directory's users
// (same ids and extensions) with bcrypt cost 4, as cost-10 logins under
// -race on a loaded machine outlast the server's request bound.
func startDemo(t *testing.T, ts *testServer, dataDir string, log io.Writer) (stop func()) {
	t.Helper()
	return runDemo(t, demo.Config{URL: ts.URL, Interval: 100 * time.Millisecond, StateMin: 50 * time.Millisecond,
		StateMax: 200 * time.Millisecond, DataDir: dataDir, Log: zerolog.New(log).Level(zerolog.DebugLevel)})
}

// runDemo runs the simulator with cfg (agents and password filled in) until
// the returned stop is called; stop returns once demo.Run has returned.
func runDemo(t *testing.T, cfg demo.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cfg.Agents, cfg.Password = demoAgents(), testPassword
		done <- demo.Run(ctx, cfg)
	}()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo.Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("demo.Run did not return within 15 s of the stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// teamSnapshot asks the server afresh for the team status (as sup, watching
// as 2001) and returns each member's "status/reason".
func teamSnapshot(t *testing.T, sup *client) map[string]string {
	t.Helper()
	success(t, sup.request("report.teamstatus.end", map[string]any{"agentId": "2001"}, ""))
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	out := map[string]string{}
	for range 2 {
		ev := sup.waitEvent("report.teamstatus.teamadded")
		for _, m := range ev["data"].(map[string]any)["team"].(map[string]any)["members"].([]any) {
			m := m.(map[string]any)
			out[m["memberId"].(string)] = fmt.Sprint(m["status"], "/", m["reason"])
		}
	}
	return out
}

// requireDemoLoggedOut fails, naming them, when demo agents (other than
// skip) are still logged in according to a fresh team status snapshot.
func requireDemoLoggedOut(t *testing.T, sup *client, skip string) {
	t.Helper()
	var still []string
	loggedOut := func() bool {
		still = still[:0]
		snap := teamSnapshot(t, sup)
		for _, a := range demoAgents() {
			if st := snap[a.ID]; a.ID != skip && !strings.HasPrefix(st, "logged_out/") {
				still = append(still, a.ID+" ("+st+")")
			}
		}
		return len(still) == 0
	}
	deadline := time.Now().Add(5 * time.Second)
	for !loggedOut() {
		if time.Now().After(deadline) {
			t.Fatalf("after the demo stopped, demo agents still logged in: %s", strings.Join(still, ", "))
		}
	}
}

// TestDemoDrivesTheServer runs the simulator against a real server with the
// bundled demo directory and watches, as the demo supervisor, the events
// and team-status changes it makes arrive over WebSocket. An agent logged
// in by someone else is never overridden, and stopping the simulator logs
// every agent it logged in out (naming any that stayed logged in) and
// leaves no goroutine behind.
func TestDemoDrivesTheServer(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SessionGrace = time.Minute })
	sup := dial(t, ts.WS)
	supSID := demoLogin(t, sup, "2001")
	success(t, sup.request("subscribe", map[string]any{"topics": allTopics}, supSID))
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	// A person tries the page as 1001 before the demo starts.
	person := dial(t, ts.WS)
	demoLogin(t, person, "1001")
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")

	before := goroutines()
	stop := startDemo(t, ts, t.TempDir(), zerolog.NewTestWriter(t))

	// Every kind of notification arrives, and demo agents change state.
	for _, name := range []string{"outbound.campaignGroupState", "outbound.contactProcessed", "callback.status"} {
		ev := sup.waitEvent(name)
		if seqOf(t, ev) <= 0 {
			t.Fatalf("%s without seq: %v", name, ev)
		}
	}
	moved := map[string]bool{}
	for i := 0; i < 400 && len(moved) < 3; i++ {
		ev := sup.waitEvent("report.teamstatus.memberstatuschanged")
		team := ev["data"].(map[string]any)["team"].(map[string]any)
		for _, m := range team["members"].([]any) {
			m := m.(map[string]any)
			if id := m["memberId"].(string); id != "1001" && id != "2001" && m["status"] != "logged_out" {
				moved[id+"/"+m["status"].(string)] = true
			}
		}
	}
	if len(moved) < 3 {
		t.Fatalf("demo agents made too few state changes: %v", moved)
	}
	if v := sup.request("report.campaigngroups", nil, ""); len(success(t, v)["CampaignGroups"].([]any)) != 2 {
		t.Fatalf("campaign groups: %v", v)
	}

	stop()
	requireDemoLoggedOut(t, sup, "1001")
	person.noEvent("session.ended", 50*time.Millisecond)
	checkFor(t, 10*time.Second, "demo goroutines gone", func() bool { return goroutines() <= before })
	t.Logf("state changes seen: %v", moved)
}

// TestDemoStopDuringLogin stops the simulator right after the first of its
// agents logged in, while the others' logins are in flight: every session
// it made is closed, none is left to the session grace (the stop used to
// abandon an in-flight prepareSession, whose session stayed not_ready).
func TestDemoStopDuringLogin(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SessionGrace = time.Minute })
	sup := dial(t, ts.WS)
	demoLogin(t, sup, "2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")
	stop := startDemo(t, ts, t.TempDir(), zerolog.NewTestWriter(t))
	// On a loaded machine the first logins can take a while (bcrypt, and
	// the store's commit bound), so wait longer than waitTimeout.
	deadline := time.After(60 * time.Second)
	for loggedIn := false; !loggedIn; {
		select {
		case m := <-sup.frames:
			loggedIn = m["name"] == "report.teamstatus.memberstatuschanged"
		case <-deadline:
			t.Fatal("no demo agent logged in within 60 s")
		}
	}
	stop()
	requireDemoLoggedOut(t, sup, "")
}

// TestDemoTakesBackItsSessions restarts the server under a running
// simulator, as a crash of `iproc serve --demo` would leave it: the
// sessions its agents had are restored by the server, and the simulator,
// restarted with the same data folder, takes them back with their resume
// tokens rather than finding its agents busy and stepping aside.
func TestDemoTakesBackItsSessions(t *testing.T) {
	data, demoData := t.TempDir(), t.TempDir()
	cfg := func(c *server.Config) {
		c.SessionGrace = time.Minute
		c.DataDir = data
	}
	ts := startServer(t, cfg)
	sup := dial(t, ts.WS)
	demoLogin(t, sup, "2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	stop := startDemo(t, ts, demoData, zerolog.NewTestWriter(t))
	checkFor(t, 20*time.Second, "every demo agent logged in", func() bool {
		snap := teamSnapshot(t, sup)
		for _, a := range demoAgents() {
			if strings.HasPrefix(snap[a.ID], "logged_out/") {
				return false
			}
		}
		return true
	})
	// The server goes away under the simulator (its logouts then fail, so
	// it keeps its sessions), and comes back on the same data.
	_ = ts.Server.Close()
	ts.HTTP.Close()
	stop()

	ts = startServer(t, cfg)
	logw := &lockedWriter{w: new(bytes.Buffer)}
	stop = startDemo(t, ts, demoData, logw)
	checkFor(t, 20*time.Second, "every demo agent took back its session", func() bool {
		return strings.Count(logText(logw), "took back its earlier session") == len(demoAgents())
	})
	stop()
	if out := logText(logw); strings.Contains(out, "steps aside") {
		t.Fatalf("a demo agent stepped aside after the restart:\n%s", out)
	}
}

// logText returns what l has written so far.
func logText(l *lockedWriter) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// TestDemoRejectsBadConfig checks the simulator's one failure mode.
func TestDemoRejectsBadConfig(t *testing.T) {
	for _, cfg := range []demo.Config{{URL: "ftp://x", Agents: demoAgents()}, {URL: "http://127.0.0.1:1"}} {
		if err := demo.Run(context.Background(), cfg); err == nil {
			t.Errorf("demo.Run(%+v) = nil, want an error", cfg)
		}
	}
}

// TestDemoBinary runs `iproc serve --demo` and sees, as the demo
// supervisor, demo agents log in; SIGTERM still exits 0 promptly. Bad demo
// settings stop start-up with one line naming the setting.
func TestDemoBinary(t *testing.T) {
	p := startBinary(t, "", nil, "--demo", "--data", t.TempDir())
	c := dial(t, p.WS)
	resp := c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "2001", "password": directory.DemoPassword}}, "")
	if resp["result"] != "success" {
		t.Fatalf("login 2001: %v", resp)
	}
	success(t, c.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	checkFor(t, 30*time.Second, "a demo agent logged in", func() bool {
		ev := c.next("a team status event", func(m map[string]any) bool {
			return m["name"] == "report.teamstatus.teamadded" || m["name"] == "report.teamstatus.memberstatuschanged"
		})
		for _, m := range ev["data"].(map[string]any)["team"].(map[string]any)["members"].([]any) {
			if m := m.(map[string]any); m["memberId"] != "2001" && m["status"] != "logged_out" {
				return true
			}
		}
		return false
	})
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

	for _, b := range []struct {
		args, env []string
		want      string
	}{
		{nil, []string{"IPROC_DEMO=maybe"}, "IPROC_DEMO"},
		{[]string{"--demo", "--directory", writeTestDirectory(t)}, nil, "--demo"},
	} {
		cmd := exec.Command(binary(t), append([]string{"serve", "--data", t.TempDir()}, b.args...)...)
		cmd.Env = append(append(os.Environ(), "IPROC_LOG_FORMAT=json"), b.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), b.want) {
			t.Errorf("%v %v: err %v, output %q: want a failure naming %s", b.args, b.env, err, out, b.want)
		}
	}
}
