package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"iproc/server"
)

// isTeamEvent reports whether m is a report.teamstatus.* event.
func isTeamEvent(m map[string]any) bool {
	n, _ := m["name"].(string)
	return strings.HasPrefix(n, "report.teamstatus.")
}

// nextTeamEvent returns c's next team-status event in arrival order.
func nextTeamEvent(t *testing.T, c *client) map[string]any {
	t.Helper()
	return c.next("a team-status event", isTeamEvent)
}

// sinceFormat is a member's since: RFC 3339 in UTC with milliseconds.
var sinceFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// keys returns the sorted keys of m, comma-joined.
func keys(m any) string {
	mm, _ := m.(map[string]any)
	out := make([]string, 0, len(mm))
	for k := range mm {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// teamLine renders a team-status event for comparison:
// "name watcher teamId teamName [member …]", each member
// "id/type/name/status/reason" (or only its id for memberremoved). It also
// checks the seed 002 shape: exactly the fields the seed shows, members only
// where the seed has them.
func teamLine(t *testing.T, ev map[string]any) string {
	t.Helper()
	name := strings.TrimPrefix(ev["name"].(string), "report.teamstatus.")
	d, _ := ev["data"].(map[string]any)
	if keys(d) != "agentId,team" {
		t.Fatalf("%s data fields %s: %v", name, keys(d), ev)
	}
	team := d["team"].(map[string]any)
	wantTeam := "members,teamId,teamName"
	if name == "teamchanged" || name == "teamremoved" {
		wantTeam = "teamId,teamName"
	}
	if keys(team) != wantTeam {
		t.Fatalf("%s team fields %s, want %s: %v", name, keys(team), wantTeam, ev)
	}
	// A change carries the seq of its event (a state change, a directory
	// reload); only the snapshot after report.teamstatus.begin has none.
	if _, hasSeq := ev["seq"]; !hasSeq && name != "teamadded" {
		t.Fatalf("%s without a seq: %v", name, ev)
	}
	parts := []string{name, d["agentId"].(string), team["teamId"].(string), team["teamName"].(string)}
	members, _ := team["members"].([]any)
	var ms []string
	for _, m := range members {
		mm := m.(map[string]any)
		if name == "memberremoved" {
			if keys(mm) != "memberId" {
				t.Fatalf("memberremoved member fields %s: %v", keys(mm), ev)
			}
			ms = append(ms, mm["memberId"].(string))
			continue
		}
		// since (when the state began) is there for every agent seen
		// since the store began, and only then.
		wantKeys := "memberId,memberName,memberType,reason,status"
		if since, has := mm["since"]; has {
			wantKeys = "memberId,memberName,memberType,reason,since,status"
			if ts, _ := since.(string); !sinceFormat.MatchString(ts) {
				t.Fatalf("%s member since %v is not RFC 3339 in UTC with milliseconds: %v", name, since, ev)
			}
		} else if mm["status"] != "logged_out" {
			t.Fatalf("%s member %v in state %v has no since: %v", name, mm["memberId"], mm["status"], ev)
		}
		if keys(mm) != wantKeys {
			t.Fatalf("%s member fields %s: %v", name, keys(mm), ev)
		}
		ms = append(ms, strings.Join([]string{mm["memberId"].(string), mm["memberType"].(string), mm["memberName"].(string), mm["status"].(string), mm["reason"].(string)}, "/"))
	}
	sort.Strings(ms)
	if len(ms) > 0 {
		parts = append(parts, ms...)
	}
	return strings.Join(parts, " ")
}

// expectTeamEvents checks that c's next team-status events are want, in
// order, and that their seqs never go back.
func expectTeamEvents(t *testing.T, c *client, want ...string) {
	t.Helper()
	var last int64
	for i, w := range want {
		ev := nextTeamEvent(t, c)
		if got := teamLine(t, ev); got != w {
			t.Fatalf("team event %d:\n got %s\nwant %s", i, got, w)
		}
		if _, ok := ev["seq"]; ok { // the events of one reload share its seq
			n := seqOf(t, ev)
			if n < last {
				t.Fatalf("seq %d after %d", n, last)
			}
			last = n
		}
	}
}

// barrier proves that c has been sent everything committed before now,
// without changing any agent state: it posts a ContactProcessed for agentID
// (c's own agent), which c subscribes to, and waits for its event. Events
// reach a session in seq order, so every earlier event has been dispatched
// (the team-status snapshot is up to date) and its frames are in. It
// returns the team-status events that arrived before the barrier.
func barrier(t *testing.T, url string, c *client, sid, agentID string) []map[string]any {
	t.Helper()
	success(t, c.request("subscribe", map[string]any{"topics": []string{"outbound.contactProcessed"}, "filter": map[string]any{"GSW_AGENT_ID": agentID}}, sid))
	guid := fmt.Sprintf("BARRIER-%s-%d", agentID, time.Now().UnixNano())
	if status, body := post(t, url+pathCP, jsonOf(contactProcessed(guid, guid, agentID)), nil); status != 200 {
		t.Fatalf("barrier post: %d %v", status, body)
	}
	c.next("barrier "+guid, func(m map[string]any) bool {
		d, _ := m["data"].(map[string]any)
		return m["name"] == "outbound.contactProcessed" && d["GSW_MESSAGE_GUID"] == guid
	})
	var evs []map[string]any
	for _, m := range c.pending {
		if isTeamEvent(m) {
			evs = append(evs, m)
		}
	}
	c.pending = slices.DeleteFunc(c.pending, isTeamEvent)
	return evs
}

// beginTeams sends report.teamstatus.begin for agent id and checks that the
// success comes before any team event.
func beginTeams(t *testing.T, c *client, id string) {
	t.Helper()
	rid := c.send("report.teamstatus.begin", map[string]any{"agentId": id}, "")
	first := c.next("begin answer or team event", func(m map[string]any) bool { return m["id"] == rid || isTeamEvent(m) })
	if first["id"] != rid || keys(success(t, first)) != "" {
		t.Fatalf("first frame after begin: %v", first)
	}
}

func TestTeamStatusEventsInOrder(t *testing.T) {
	ts := startServer(t, nil)
	sup := dial(t, ts.WS)
	supSID, _ := sup.login("2001")
	barrier(t, ts.URL, sup, supSID, "2001")
	beginTeams(t, sup, "2001")
	expectTeamEvents(t, sup,
		"teamadded 2001 t1 Sales 1001/Agent/Ann Lee/logged_out/ 1002/Agent/Bob Ray/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/",
		"teamadded 2001 t2 Support 1003/Agent/Cy Dunn/logged_out/ 1004/Agent/Di Hart/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
	)

	ann := dial(t, ts.WS)
	annSID, _ := ann.login("1001")
	// An agent may watch its own teams only.
	failure(t, ann.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""), "auth.forbidden")
	failure(t, ann.request("report.teamstatus.begin", map[string]any{"agentId": "1002"}, ""), "auth.forbidden")
	failure(t, ann.request("report.teamstatus.end", map[string]any{"agentId": "2001"}, ""), "auth.forbidden")
	failure(t, ann.request("report.teamstatus.begin", map[string]any{}, ""), "request.invalid")
	barrier(t, ts.URL, ann, annSID, "1001")
	beginTeams(t, ann, "1001")
	expectTeamEvents(t, ann,
		"teamadded 1001 t1 Sales 1001/Agent/Ann Lee/not_ready/login 1002/Agent/Bob Ray/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/")

	cy := dial(t, ts.WS)
	cySID, _ := cy.login("1003")
	success(t, ann.request("setState", map[string]any{"state": "ready"}, annSID))
	success(t, ann.request("setState", map[string]any{"state": "not_ready", "reason": 32}, annSID))
	success(t, cy.request("setState", map[string]any{"state": "ready", "reason": ""}, cySID))
	success(t, ann.request("setState", map[string]any{"state": "ACW"}, annSID))
	success(t, cy.request("closeSession", nil, cySID))
	bob := dial(t, ts.WS)
	bob.login("1002")
	// Ann sees her own team only (Cy is in Support).
	expectTeamEvents(t, ann,
		"memberstatuschanged 1001 t1 Sales 1001/Agent/Ann Lee/ready/",
		"memberstatuschanged 1001 t1 Sales 1001/Agent/Ann Lee/not_ready/32",
		"memberstatuschanged 1001 t1 Sales 1001/Agent/Ann Lee/ACW/",
		"memberstatuschanged 1001 t1 Sales 1002/Agent/Bob Ray/not_ready/login",
	)
	success(t, ann.request("closeSession", nil, annSID))

	expectTeamEvents(t, sup,
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/login",
		"memberstatuschanged 2001 t2 Support 1003/Agent/Cy Dunn/not_ready/login",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/ready/",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/32",
		"memberstatuschanged 2001 t2 Support 1003/Agent/Cy Dunn/ready/",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/ACW/",
		"memberstatuschanged 2001 t2 Support 1003/Agent/Cy Dunn/logged_out/closed",
		"memberstatuschanged 2001 t1 Sales 1002/Agent/Bob Ray/not_ready/login",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/logged_out/closed",
	)
	if evs := barrier(t, ts.URL, sup, supSID, "2001"); len(evs) != 0 {
		t.Fatalf("unexpected team events: %v", evs)
	}

	// A second begin sends the current snapshot again.
	beginTeams(t, sup, "2001")
	expectTeamEvents(t, sup,
		"teamadded 2001 t1 Sales 1001/Agent/Ann Lee/logged_out/closed 1002/Agent/Bob Ray/not_ready/login 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/",
		"teamadded 2001 t2 Support 1003/Agent/Cy Dunn/logged_out/closed 1004/Agent/Di Hart/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
	)
	// end stops the stream: Di's login is committed before the barrier,
	// and no team event for it reaches the supervisor.
	success(t, sup.request("report.teamstatus.end", map[string]any{"agentId": "2001"}, ""))
	di := dial(t, ts.WS)
	di.login("1004")
	if evs := barrier(t, ts.URL, sup, supSID, "2001"); len(evs) != 0 {
		t.Fatalf("team events after end: %v", evs)
	}
}

// putDirectory sends PUT /admin/directory and returns the status, the
// WWW-Authenticate header and the body.
func putDirectory(t *testing.T, url, body, token string) (int, string, string) {
	t.Helper()
	return adminRequest(t, http.MethodPut, url, body, token)
}

// adminRequest sends method to /admin/directory with the admin token, and
// returns the status, the WWW-Authenticate header and the body.
func adminRequest(t *testing.T, method, url, body, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url+"/admin/directory", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// reloadedDirectoryJSON is the test directory with t1 renamed "Sales East"
// (1002 out, 1004 in), t2 gone and t3 "Retention" (1003; supervisor 2001)
// new.
func reloadedDirectoryJSON(t *testing.T) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(testDirectoryJSON(t), &doc); err != nil {
		t.Fatal(err)
	}
	t1 := doc["teams"].([]any)[0].(map[string]any)
	t1["name"] = "Sales East"
	t1["members"] = []any{"1001", "3001", "1004"}
	doc["teams"] = []any{t1, map[string]any{"id": "t3", "name": "Retention", "members": []any{"1003"}, "supervisors": []any{"2001"}}}
	b, _ := json.Marshal(doc)
	return b
}

// The reload test of TestDirectoryReloadEvents, with every watcher's
// events checked for order and shape, the admin token, bad files that
// change nothing, live changes after the reload, and an empty body that
// re-reads --directory.
func TestDirectoryReloadEachWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(path, testDirectoryJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *server.Config) { c.AdminToken = "adm1n-t0ken"; c.DirectoryPath = path })
	sup := dial(t, ts.WS)
	supSID, _ := sup.login("2001")
	ann := dial(t, ts.WS)
	annSID, _ := ann.login("1001")
	bob := dial(t, ts.WS)
	bobSID, _ := bob.login("1002")
	di := dial(t, ts.WS)
	diSID, _ := di.login("1004")
	success(t, di.request("setState", map[string]any{"state": "ready"}, diSID))
	barrier(t, ts.URL, sup, supSID, "2001")
	for _, w := range []struct {
		c  *client
		id string
		n  int
	}{{sup, "2001", 2}, {ann, "1001", 1}, {bob, "1002", 1}} {
		beginTeams(t, w.c, w.id)
		for range w.n {
			if ev := nextTeamEvent(t, w.c); ev["name"] != "report.teamstatus.teamadded" {
				t.Fatalf("%s: %v", w.id, ev)
			}
		}
	}

	good := string(reloadedDirectoryJSON(t))
	if status, auth, _ := putDirectory(t, ts.URL, good, ""); status != 401 || !strings.HasPrefix(auth, "Bearer") {
		t.Fatalf("no token: %d %q", status, auth)
	}
	if status, _, _ := putDirectory(t, ts.URL, good, "wrong"); status != 401 {
		t.Fatalf("wrong token: %d", status)
	}
	unknown := strings.Replace(good, `"1004"]`, `"9999"]`, 1)
	for _, bad := range []struct{ body, names string }{
		{unknown, "9999"},
		{`{"agents":[{"id":"1","name":"x","type":"Boss","passwordHash":"x"}],"teams":[]}`, "Boss"},
		{`{"agents": [`, ""},
	} {
		status, _, body := putDirectory(t, ts.URL, bad.body, "adm1n-t0ken")
		if status != 400 || !strings.Contains(body, bad.names) || !strings.Contains(body, `"error"`) {
			t.Fatalf("bad directory: %d %s", status, body)
		}
	}
	// Nothing changed: no events, and a fresh snapshot shows the old teams.
	if evs := barrier(t, ts.URL, sup, supSID, "2001"); len(evs) != 0 {
		t.Fatalf("a refused directory produced %v", evs)
	}
	beginTeams(t, sup, "2001")
	if ev := nextTeamEvent(t, sup); teamLine(t, ev) != "teamadded 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/login 1002/Agent/Bob Ray/not_ready/login 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/" {
		t.Fatalf("after refused reloads: %s", teamLine(t, ev))
	}
	nextTeamEvent(t, sup)

	if status, _, body := putDirectory(t, ts.URL, good, "adm1n-t0ken"); status != 200 || !strings.Contains(body, `"reloaded":true`) {
		t.Fatalf("reload: %d %s", status, body)
	}
	expectTeamEvents(t, sup,
		"teamchanged 2001 t1 Sales East",
		"memberremoved 2001 t1 Sales East 1002",
		"memberadded 2001 t1 Sales East 1004/Agent/Di Hart/ready/",
		"teamadded 2001 t3 Retention 1003/Agent/Cy Dunn/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
		"teamremoved 2001 t2 Support",
	)
	expectTeamEvents(t, ann,
		"teamchanged 1001 t1 Sales East",
		"memberremoved 1001 t1 Sales East 1002",
		"memberadded 1001 t1 Sales East 1004/Agent/Di Hart/ready/",
	)
	expectTeamEvents(t, bob, "teamremoved 1002 t1 Sales")

	// Live changes follow the new teams: Di reaches the Sales East watchers,
	// Bob (no team now) reaches nobody.
	success(t, bob.request("setState", map[string]any{"state": "ready"}, bobSID))
	success(t, di.request("setState", map[string]any{"state": "not_ready", "reason": "7"}, diSID))
	expectTeamEvents(t, sup, "memberstatuschanged 2001 t1 Sales East 1004/Agent/Di Hart/not_ready/7")
	expectTeamEvents(t, ann, "memberstatuschanged 1001 t1 Sales East 1004/Agent/Di Hart/not_ready/7")
	for _, w := range []struct {
		c       *client
		sid, id string
	}{{sup, supSID, "2001"}, {ann, annSID, "1001"}} {
		if evs := barrier(t, ts.URL, w.c, w.sid, w.id); len(evs) != 0 {
			t.Fatalf("unexpected %v", evs)
		}
	}

	// An empty body re-reads --directory: back to the original teams.
	if status, _, body := putDirectory(t, ts.URL, "", "adm1n-t0ken"); status != 200 {
		t.Fatalf("re-read: %d %s", status, body)
	}
	expectTeamEvents(t, sup,
		"teamchanged 2001 t1 Sales",
		"memberremoved 2001 t1 Sales 1004",
		"memberadded 2001 t1 Sales 1002/Agent/Bob Ray/ready/",
		"teamadded 2001 t2 Support 1003/Agent/Cy Dunn/logged_out/ 1004/Agent/Di Hart/not_ready/7 2001/Supervisor/Sue Pervis/not_ready/login",
		"teamremoved 2001 t3 Retention",
	)
	expectTeamEvents(t, bob, "teamadded 1002 t1 Sales 1001/Agent/Ann Lee/not_ready/login 1002/Agent/Bob Ray/ready/ 2001/Supervisor/Sue Pervis/not_ready/login 3001/TeamLead/Tom Lead/logged_out/")
}

// A watch belongs to the session, not the connection: changes made while
// the watcher was disconnected are replayed in order on resumeSession.
func TestTeamStatusResumeReplaysChanges(t *testing.T) {
	ts := startServer(t, nil)
	sup, supSID, token := watchingSupervisor(t, ts.WS, ts.URL)
	ann := dial(t, ts.WS)
	annSID, _ := ann.login("1001")
	since := seqOf(t, nextTeamEvent(t, sup))
	sup.ws.Close()
	success(t, ann.request("setState", map[string]any{"state": "ready"}, annSID))
	success(t, ann.request("setState", map[string]any{"state": "not_ready", "reason": "away-3"}, annSID))

	r, resp := resumeOn(t, ts.WS, supSID, token, since)
	if success(t, resp)["recovered"] != true {
		t.Fatalf("resume: %v", resp)
	}
	expectTeamEvents(t, r,
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/ready/",
		"memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/not_ready/away-3",
	)
	success(t, ann.request("closeSession", nil, annSID))
	expectTeamEvents(t, r, "memberstatuschanged 2001 t1 Sales 1001/Agent/Ann Lee/logged_out/closed")
}

// The admin endpoint's access rules: without --admin-token only loopback
// clients may reload (403 otherwise); with one, the bearer token is needed
// from anywhere (401 without it or with a wrong one) and enough from
// anywhere. A refused request changes nothing. Non-loopback clients cannot
// be dialled on loopback, so those requests go to the real handler through
// httptest with a documentation address (RFC 5737) as the peer.
func TestDirectoryReloadAdminAuth(t *testing.T) {
	remote := func(ts *testServer, token string) (int, string) {
		req := httptest.NewRequest(http.MethodPut, "/admin/directory", strings.NewReader(string(reloadedDirectoryJSON(t))))
		req.RemoteAddr, req.Host = "192.0.2.7:40000", "127.0.0.1"
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	// teamName reads team t1's name as a supervisor sees it.
	teamName := func(ts *testServer) string {
		c := dial(t, ts.WS)
		defer c.ws.Close()
		sid, _ := c.login2("2001", true)
		beginTeams(t, c, "2001")
		name := ""
		for range 2 {
			team := nextTeamEvent(t, c)["data"].(map[string]any)["team"].(map[string]any)
			if team["teamId"] == "t1" {
				name = team["teamName"].(string)
			}
		}
		success(t, c.request("closeSession", nil, sid))
		return name
	}

	open := startServer(t, nil)
	if status, body := remote(open, ""); status != 403 || !strings.Contains(body, "auth.forbidden") || teamName(open) != "Sales" {
		t.Fatalf("remote reload without a configured token: %d %s (t1 %q)", status, body, teamName(open))
	}
	if status, _, body := putDirectory(t, open.URL, string(reloadedDirectoryJSON(t)), ""); status != 200 || teamName(open) != "Sales East" {
		t.Fatalf("loopback reload without a configured token: %d %s", status, body)
	}

	locked := startServer(t, func(c *server.Config) { c.AdminToken = "adm1n-t0ken" })
	for _, token := range []string{"", "wrong", "Adm1n-t0ken"} {
		if status, _ := remote(locked, token); status != 401 || teamName(locked) != "Sales" {
			t.Fatalf("token %q: %d (t1 %q)", token, status, teamName(locked))
		}
	}
	if status, body := remote(locked, "adm1n-t0ken"); status != 200 || teamName(locked) != "Sales East" {
		t.Fatalf("remote reload with the token: %d %s", status, body)
	}
}

// watchingSupervisor logs supervisor 2001 in on a new connection to wsURL,
// waits until its login is settled (baseURL takes the barrier's post),
// begins team status and reads its two teamadded events: what follows are
// live changes.
func watchingSupervisor(t *testing.T, wsURL, baseURL string) (*client, string, string) {
	t.Helper()
	sup := dial(t, wsURL)
	sid, token := sup.login("2001")
	barrier(t, baseURL, sup, sid, "2001")
	beginTeams(t, sup, "2001")
	nextTeamEvent(t, sup)
	nextTeamEvent(t, sup)
	return sup, sid, token
}
