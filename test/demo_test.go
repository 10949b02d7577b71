package test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"iproc/resources/directory"
	"iproc/server"
	"iproc/cmd/iproc/demo"
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

// TestDemoDrivesTheServer runs the simulator against a real server with the
// bundled demo directory and watches, as the demo supervisor, the events
// and team-status changes it makes arrive over WebSocket. An agent logged
// in by someone else is never overridden, and stopping the simulator
// leaves no goroutine behind.
func TestDemoDrivesTheServer(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.Directory = directory.Demo(); c.SessionGrace = time.Minute })
	sup := dial(t, ts.WS)
	login := func(c *client, id string) string {
		t.Helper()
		resp := c.request("prepareSession", map[string]any{"agent": map[string]any{"id": id, "password": demo.DemoPassword}}, "")
		if resp["result"] != "success" {
			t.Fatalf("login %s: %v", id, resp)
		}
		return resp["resource"].(map[string]any)["id"].(string)
	}
	supSID := login(sup, "2001")
	success(t, sup.request("subscribe", map[string]any{"topics": allTopics}, supSID))
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	// A person tries the page as 1001 before the demo starts.
	person := dial(t, ts.WS)
	login(person, "1001")
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")

	before := goroutines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Config{URL: ts.URL, Agents: demoAgents(), Password: demo.DemoPassword,
			Interval: 100 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	}()

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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo.Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo.Run did not return after cancel")
	}
	// Stopping logs the demo's agents out rather than leaving their
	// sessions to expire.
	out := map[string]bool{}
	for i := 0; i < 2000 && !loggedOut(moved, out); i++ {
		ev := sup.waitEvent("report.teamstatus.memberstatuschanged")
		for _, m := range ev["data"].(map[string]any)["team"].(map[string]any)["members"].([]any) {
			m := m.(map[string]any)
			out[m["memberId"].(string)] = m["status"] == "logged_out"
		}
	}
	if !loggedOut(moved, out) {
		t.Fatalf("demo agents %v not all logged out after stop: %v", moved, out)
	}
	person.noEvent("session.ended", 50*time.Millisecond)
	checkFor(t, 10*time.Second, "demo goroutines gone", func() bool { return goroutines() <= before })
	t.Logf("state changes seen: %v", moved)
}

// loggedOut reports whether every agent of moved ("id/status" keys) is
// logged out in out.
func loggedOut(moved, out map[string]bool) bool {
	for k := range moved {
		if id, _, _ := strings.Cut(k, "/"); !out[id] {
			return false
		}
	}
	return true
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
	resp := c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "2001", "password": demo.DemoPassword}}, "")
	if resp["result"] != "success" {
		t.Fatalf("login 2001: %v", resp)
	}
	success(t, c.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	checkFor(t, 20*time.Second, "a demo agent logged in", func() bool {
		ev := c.waitEvent("report.teamstatus.memberstatuschanged")
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
