package test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"iproc/server"
)

// startCluster runs n built binaries on one Redis and one instance domain,
// each with its own --data (which holds its instance id).
func startCluster(t *testing.T, n int, extra ...string) (*redisServer, []*proc) {
	t.Helper()
	r := startRedis(t, redisOptions{})
	var ps []*proc
	for range n {
		ps = append(ps, startInstance(t, r, extra...))
	}
	return r, ps
}

// startInstance starts one more instance of startCluster's domain on r,
// with the test directory file.
func startInstance(t *testing.T, r *redisServer, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--directory", writeTestDirectory(t), "--data", t.TempDir(), "--redis", r.URL,
		"--instance-domain", "cluster-test", "--session-grace", "2m"}, extra...)
	return startBinary(t, "", nil, args...)
}

// An agent logged in on A is asked to confirm on B; the override on B
// ends the session on A with session.ended {reason: override}.
func TestClusterConfirmOverrideAcrossInstances(t *testing.T) {
	_, ps := startCluster(t, 2)
	a, b := dial(t, ps[0].WS), dial(t, ps[1].WS)
	sidA, _ := a.login("1001")
	// B catches up with the shared log before it answers: confirm at once.
	if resp := b.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, ""); resp["result"] != "confirm" {
		t.Fatalf("login on B of the agent logged in on A: %v", resp)
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
	// And back: A now asks to confirm for the session on B.
	if resp := a.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, ""); resp["result"] != "confirm" {
		t.Fatalf("login on A of the agent logged in on B: %v", resp)
	}
}

// A supervisor watching team status on A sees the state changes of an
// agent logged in on B.
func TestClusterTeamStatusAcrossInstances(t *testing.T) {
	_, ps := startCluster(t, 2)
	sup := dial(t, ps[0].WS)
	sup.login("2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")
	ann := dial(t, ps[1].WS)
	sid, _ := ann.login("1001")
	if m := statusChange(t, sup, "1001"); m["status"] != "not_ready" {
		t.Fatalf("after login on B: %v", m)
	}
	success(t, ann.request("setState", map[string]any{"state": "ready"}, sid))
	if m := statusChange(t, sup, "1001"); m["status"] != "ready" {
		t.Fatalf("after setState on B: %v", m)
	}
	// A late watcher on A gets B's agent state in its snapshot.
	sup2 := dial(t, ps[0].WS)
	sup2.login("3001")
	success(t, sup2.request("report.teamstatus.begin", map[string]any{"agentId": "3001"}, ""))
	team := sup2.waitEvent("report.teamstatus.teamadded")
	if m := membersOf(t, team)["1001"]; m["status"] != "ready" {
		t.Fatalf("snapshot on A of the agent on B: %v", m)
	}
	// getState on A's view of the store: the state B committed.
	success(t, ann.request("closeSession", nil, sid))
	if m := statusChange(t, sup, "1001"); m["status"] != "logged_out" {
		t.Fatalf("after closeSession on B: %v", m)
	}
}

// A notification posted to A reaches a subscriber on B with the seq A
// acknowledged; one posted to B reaches a subscriber on A; the journey is
// the same on both.
func TestClusterNotificationDeliveredOnOtherInstance(t *testing.T) {
	_, ps := startCluster(t, 2)
	subA, subB := dial(t, ps[0].WS), dial(t, ps[1].WS)
	sa, _ := subA.login("2001")
	sb, _ := subB.login("3001")
	success(t, subA.request("subscribe", map[string]any{"topics": allTopics}, sa))
	success(t, subB.request("subscribe", map[string]any{"topics": allTopics}, sb))
	for i, from := range []*proc{ps[0], ps[1], ps[0]} {
		guid := fmt.Sprintf("CL-%d", i)
		status, body := post(t, from.URL+pathCP, jsonOf(contactProcessed(guid, "ATT-"+guid, "1001")), nil)
		if status != 200 {
			t.Fatalf("post to %s: %d %v", from.URL, status, body)
		}
		seq := seqOf(t, body)
		for _, c := range []*client{subA, subB} {
			ev := c.waitEvent("outbound.contactProcessed")
			if seqOf(t, ev) != seq || ev["data"].(map[string]any)["GSW_MESSAGE_GUID"] != guid {
				t.Fatalf("event %v, want %s at seq %d", ev, guid, seq)
			}
		}
	}
	// A retry on the other instance is a duplicate with the first seq.
	_, first := post(t, ps[0].URL+pathCP, jsonOf(contactProcessed("CL-DUP", "ATT-CL-DUP", "1001")), nil)
	_, again := post(t, ps[1].URL+pathCP, jsonOf(contactProcessed("CL-DUP", "ATT-CL-DUP", "1001")), nil)
	if again["duplicate"] != true || seqOf(t, again) != seqOf(t, first) {
		t.Fatalf("retry on the other instance: %v (first %v)", again, first)
	}
	for _, c := range []*client{subA, subB} {
		j := success(t, c.request("report.calljourney", map[string]any{"CallId": "ATT-CL-1"}, ""))
		if steps, _ := j["CallJourney"].([]any); len(steps) == 0 {
			t.Fatalf("no journey for ATT-CL-1: %v", j)
		}
	}
}

// One instance is killed: its clients resume on the other with
// recovered: true and get what was committed meanwhile, once each.
func TestClusterKilledInstanceClientsResumeOnOther(t *testing.T) {
	_, ps := startCluster(t, 2)
	sup := dial(t, ps[0].WS)
	sid, token := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"outbound.contactProcessed"}}, sid))
	var last int64
	for i := range 5 {
		_, body := post(t, ps[1].URL+pathCP, jsonOf(contactProcessed(fmt.Sprintf("K-%d", i), fmt.Sprintf("ATT-K-%d", i), "1001")), nil)
		want := seqOf(t, body)
		if last = seqOf(t, sup.waitEvent("outbound.contactProcessed")); last != want {
			t.Fatalf("seq %d, want %d", last, want)
		}
	}
	if err := ps[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ps[0].done
	var missed []int64
	for i := range 5 {
		_, body := post(t, ps[1].URL+pathCP, jsonOf(contactProcessed(fmt.Sprintf("M-%d", i), fmt.Sprintf("ATT-M-%d", i), "1001")), nil)
		missed = append(missed, seqOf(t, body))
	}
	c, resp := resumeOn(t, ps[1].WS, sid, token, last)
	if d := success(t, resp); d["recovered"] != true {
		t.Fatalf("resume on B: %v", resp)
	}
	for _, want := range missed {
		if got := seqOf(t, c.waitEvent("outbound.contactProcessed")); got != want {
			t.Fatalf("replayed seq %d, want %d", got, want)
		}
	}
	// Live again, and nothing twice.
	_, body := post(t, ps[1].URL+pathCP, jsonOf(contactProcessed("LIVE", "ATT-LIVE", "1001")), nil)
	if got := seqOf(t, c.waitEvent("outbound.contactProcessed")); got != seqOf(t, body) {
		t.Fatalf("live seq %d, want %d", got, seqOf(t, body))
	}
	c.noEvent("outbound.contactProcessed", 0)
	// The resumed session is B's: a new login asks to confirm.
	other := dial(t, ps[1].WS)
	if r := other.request("prepareSession", map[string]any{"agent": map[string]any{"id": "2001", "password": testPassword}}, ""); r["result"] != "confirm" {
		t.Fatalf("login of the resumed agent: %v", r)
	}
}

// The sessions of an instance that stopped are expired by the others once
// the grace period passed: the agent then logs in elsewhere without a
// confirm, and team-status watchers see it logged out.
func TestClusterSessionsOfStoppedInstanceExpire(t *testing.T) {
	r := startRedis(t, redisOptions{})
	cfg := func(c *server.Config) { c.RedisURL, c.SessionGrace = r.URL, time.Second }
	a, b := startServer(t, cfg), startServer(t, cfg)
	ann := dial(t, a.WS)
	ann.login("1001")
	sup := dial(t, b.WS)
	sup.login("2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	if err := a.Close(); err != nil { // its sessions stay in the shared registry
		t.Fatal(err)
	}
	if m := statusChange(t, sup, "1001"); m["status"] != "logged_out" {
		t.Fatalf("agent of the stopped instance: %v", m)
	}
	c := dial(t, b.WS)
	c.login2("1001", false)
}

// Logins of one agent sent at the same moment to two instances: exactly
// one succeeds, the other is asked to confirm.
func TestClusterSimultaneousLoginsOneWins(t *testing.T) {
	_, ps := startCluster(t, 2)
	for _, agent := range []string{"1001", "1002", "1003", "1004", "2001", "3001"} {
		a, b := dial(t, ps[0].WS), dial(t, ps[1].WS)
		data := map[string]any{"agent": map[string]any{"id": agent, "password": testPassword}}
		ida, idb := a.send("prepareSession", data, ""), b.send("prepareSession", data, "")
		ra, rb := a.response(ida), b.response(idb)
		results := []any{ra["result"], rb["result"]}
		if !(results[0] == "success" && results[1] == "confirm") && !(results[0] == "confirm" && results[1] == "success") {
			t.Fatalf("agent %s: results %v, want one success and one confirm", agent, results)
		}
	}
}

// An agent whose session moves to another instance keeps an agent's rights
// there (SPEC §3.6): after resuming on B it receives its own
// ContactProcessed, but neither another agent's nor a campaign group state,
// whichever instance they were posted to. (The mirrored session used to be
// filed among the supervisors' see-everything subscriptions.)
func TestClusterResumedAgentKeepsAgentRights(t *testing.T) {
	_, ps := startCluster(t, 2)
	ann := dial(t, ps[0].WS)
	sid, token := ann.login("1001")
	success(t, ann.request("subscribe", map[string]any{"topics": allTopics}, sid))
	ann.ws.Close()
	c, resp := resumeOn(t, ps[1].WS, sid, token, 0)
	success(t, resp)
	for _, from := range ps {
		if status, body := post(t, from.URL+pathCP, jsonOf(contactProcessed("RIGHTS-"+from.URL, "ATT-R-"+from.URL, "1002")), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
		if status, body := post(t, from.URL+pathCGS, jsonOf(campaignGroupState("6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", 2)), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
	}
	// Its own event, posted last to each instance, marks the end.
	for i, from := range ps {
		guid := fmt.Sprintf("OWN-%d", i)
		if status, body := post(t, from.URL+pathCP, jsonOf(contactProcessed(guid, "ATT-"+guid, "1001")), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
		ev := c.waitEvent("outbound.contactProcessed")
		if got := ev["data"].(map[string]any)["GSW_MESSAGE_GUID"]; got != guid {
			t.Fatalf("agent 1001 resumed on B received %v, want only its own (%s)", ev["data"], guid)
		}
	}
	c.noEvent("outbound.campaignGroupState", 0)
}

// Two instances see one status per source: a notification posted to B
// makes the source ok on A too, with the same lastSeen, and each change
// (ok, then quiet after --source-quiet) is stored once for the domain
// although both instances notice it.
func TestClusterSourceHealthStoredOnce(t *testing.T) {
	_, ps := startCluster(t, 2, "--source-quiet", "2s")
	sup := dial(t, ps[0].WS)
	sid, _ := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"system.sourceHealth"}}, sid))
	lead := dial(t, ps[1].WS)
	lead.login("3001")
	if status, body := post(t, ps[1].URL+pathCP, jsonOf(contactProcessed("CLU-SRC-1", "ATT-CLU-SRC-1", "1001")), nil); status != 200 {
		t.Fatalf("post to B: %d %v", status, body)
	}
	healthEvent(sup, "ocs.contactProcessed", "ok")
	onA, onB := sourcesOf(t, sup)["ocs.contactProcessed"], sourcesOf(t, lead)["ocs.contactProcessed"]
	if onA["status"] != "ok" || onB["status"] != "ok" || onA["lastSeen"] != onB["lastSeen"] || num(onA["perMinute"]) != 1 || num(onB["perMinute"]) != 1 {
		t.Fatalf("the source on A %v and on B %v: want ok with the same lastSeen and count", onA, onB)
	}
	healthEvent(sup, "ocs.contactProcessed", "quiet")
	// A campaign group state is the barrier: its own ok event comes after
	// any second ok or quiet of contact-processed.
	if status, body := post(t, ps[0].URL+pathCGS, jsonOf(campaignGroupState("6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", 2)), nil); status != 200 {
		t.Fatalf("post to A: %d %v", status, body)
	}
	healthEvent(sup, "ocs.campaignGroupState", "ok")
	for _, m := range sup.pending {
		if d, _ := m["data"].(map[string]any); m["name"] == "system.sourceHealth" && d["source"] == "ocs.contactProcessed" {
			t.Errorf("a change stored twice: %v", m)
		}
	}
}
