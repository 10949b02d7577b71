package test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reportsSnapshot reads, on a fresh connection to url as team lead 3001
// (overriding a session kept from before a restart), the journeys of
// attempt and svc and the campaign groups.
func reportsSnapshot(t *testing.T, url, attempt, svc string) (cp, cb []string, groups string) {
	t.Helper()
	c := dial(t, url)
	c.login2("3001", true)
	cp = journeyLines(t, c.request("report.calljourney", map[string]any{"CallId": attempt}, ""))
	cb = journeyLines(t, c.request("report.calljourney", map[string]any{"CallId": svc}, ""))
	groups = jsonOf(success(t, c.request("report.campaigngroups", nil, "")))
	return cp, cb, groups
}

// Journeys, campaign group states, agent states and team-status watches are
// in the store: the built binary SIGKILLed right after the last 200 serves
// them unchanged after a restart on the same --data, keeps building the
// journeys, and serves them again after a SIGTERM and a second restart.
func TestJourneySurvivesRestartOfTheBinary(t *testing.T) {
	dir, data := writeTestDirectory(t), t.TempDir()
	args := []string{"--directory", dir, "--data", data, "--session-grace", "2m"}
	const attempt = "9F8E7D6C-5B4A-4392-8170-6F5E4D3C2B1A"
	p := startBinary(t, "", nil, args...)
	sup, supSID, supToken := watchingSupervisor(t, p.WS, p.URL)
	ann := dial(t, p.WS)
	annSID, _ := ann.login("1001")
	success(t, ann.request("setState", map[string]any{"state": "not_ready", "reason": "break-5"}, annSID))
	expectTeamEvents(t, sup, "memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/login")
	since := seqOf(t, nextTeamEvent(t, sup)) - 1 // the break, seen again after the restart
	for i, st := range []int{1, 2} {
		m := campaignGroupState("6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", st)
		m["GSW_DATE_TIME"] = []string{"1700000100.000", "1700000200.000"}[i]
		if status, body := post(t, p.URL+pathCGS, jsonOf(m), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
	}
	cbs := seedCallbacks(seedService)
	exit := cbs[7]
	if status, body := post(t, p.URL+pathCP, jsonOf(contactProcessed("MSG-"+attempt, attempt, "1001")), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	if status, body := post(t, p.URL+pathCallback, jsonOf(cbs[:7]), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	wantCB := seedCallbackSteps(seedService)
	// Before the exit event, the route to agent is the service's last event:
	// it ends the customer-queued step and is no step of its own.
	beforeExit := append(append([]string(nil), wantCB[:5]...), seedService+"|Queue|VQ_GMS_REP_SIP_Switch|customer queued (callback_state QUEUED), ended by route to agent|00:00:01|1250")
	p2 := startBinary(t, "", nil, args...)
	// Agent states and the watch are in the store too: the supervisor's
	// session resumes watching (the break is replayed from the log), its
	// snapshot has Ann's state, and Ann's next login reaches it live.
	r, resp := resumeOn(t, p2.WS, supSID, supToken, since)
	if success(t, resp)["recovered"] != true {
		t.Fatalf("resume after SIGKILL: %v", resp)
	}
	expectTeamEvents(t, r, "memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/break-5")
	beginTeams(t, r, "2001")
	if got := teamLine(t, nextTeamEvent(t, r)); !strings.Contains(got, "1001/Agent/Ann Lee/not_ready/break-5") {
		t.Fatalf("team snapshot after SIGKILL: %s", got)
	}
	nextTeamEvent(t, r)
	dial(t, p2.WS).login2("1001", true)
	expectTeamEvents(t, r,
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/logged_out/override",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/login")
	cp, cb, groups := reportsSnapshot(t, p2.WS, attempt, seedService)
	wantLines(t, "contact journey after SIGKILL", cp, maskedSteps(contactSteps(attempt, "1001")))
	wantLines(t, "callback journey after SIGKILL", cb, maskedSteps(beforeExit))
	if !strings.Contains(groups, `"GSW_CAMPAIGN_GROUP_STATE":2`) || strings.Count(groups, "GSW_CAMPAIGN_GROUP_GUID") != 1 {
		t.Fatalf("campaign groups after SIGKILL: %s", groups)
	}
	// Lookups by id still honour SPEC §3.6 after the restart.
	bob := dial(t, p2.WS)
	bob.login("1002")
	failure(t, bob.request("report.calljourney", map[string]any{"CallId": attempt}, ""), "auth.forbidden")

	// The journey goes on growing, then survives a clean stop.
	if status, body := post(t, p2.URL+pathCallback, jsonOf(exit), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p2.done
	if code := p2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("SIGTERM exit code %d: %s", code, p2.output())
	}
	p3 := startBinary(t, "", nil, args...)
	cp, cb, groups2 := reportsSnapshot(t, p3.WS, strings.ToLower(attempt), seedService)
	wantLines(t, "contact journey after SIGTERM", cp, maskedSteps(contactSteps(attempt, "1001")))
	wantLines(t, "callback journey after SIGTERM", cb, maskedSteps(wantCB))
	if groups2 != groups {
		t.Fatalf("campaign groups changed across restarts: %s / %s", groups, groups2)
	}
}

// SIGHUP re-reads --directory: watchers get the difference; a bad file
// changes nothing, is logged, and the server keeps the directory it had.
func TestDirectorySIGHUPReloadOfTheBinary(t *testing.T) {
	path := writeTestDirectory(t)
	p := startBinary(t, "", nil, "--directory", path, "--data", t.TempDir())
	sup, supSID, _ := watchingSupervisor(t, p.WS, p.URL)

	if err := os.WriteFile(path, reloadedDirectoryJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectTeamEvents(t, sup,
		"teamchanged 2001 t1 Sales East",
		"memberremoved 2001 t1 Sales East 1002",
		"memberadded 2001 t1 Sales East 1004/Agent/Di Hart/logged_out/",
		"teamadded 2001 t3 Retention 1003/Agent/Cy Dunn/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
		"teamremoved 2001 t2 Support",
	)
	// The new directory is in force for logins too: 1004 is in Sales East.
	di := dial(t, p.WS)
	di.login("1004")
	expectTeamEvents(t, sup, "memberstatuschanged 2001 t1 Sales East 1004/Agent/Di Hart/not_ready/login")

	// A bad file (a team with an unknown member): logged, nothing changes.
	bad := strings.Replace(string(reloadedDirectoryJSON(t)), `"1004"]`, `"9999"]`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "the refused reload is logged", func() bool {
		return strings.Contains(p.output(), "SIGHUP: directory not reloaded") && strings.Contains(p.output(), "9999")
	})
	if evs := barrier(t, p.URL, sup, supSID, "2001"); len(evs) != 0 {
		t.Fatalf("a refused SIGHUP reload produced %v", evs)
	}
	beginTeams(t, sup, "2001")
	expectTeamEvents(t, sup,
		"teamadded 2001 t1 Sales East 1001/Agent/Ann Lee/logged_out/ 1004/Agent/Di Hart/not_ready/login 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/",
		"teamadded 2001 t3 Retention 1003/Agent/Cy Dunn/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
	)
}
