package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"iproc/server"
)

// teamOf returns data.team of a team-status event.
func teamOf(t *testing.T, ev map[string]any) map[string]any {
	t.Helper()
	d := ev["data"].(map[string]any)
	return d["team"].(map[string]any)
}

func membersOf(t *testing.T, ev map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	ms, _ := teamOf(t, ev)["members"].([]any)
	for _, m := range ms {
		mm := m.(map[string]any)
		out[mm["memberId"].(string)] = mm
	}
	return out
}

// statusChange waits for the next memberstatuschanged of member id.
func statusChange(t *testing.T, c *client, id string) map[string]any {
	t.Helper()
	ev := c.next("memberstatuschanged of "+id, func(m map[string]any) bool {
		if m["name"] != "report.teamstatus.memberstatuschanged" {
			return false
		}
		_, ok := membersOf(t, m)[id]
		return ok
	})
	return membersOf(t, ev)[id]
}

func TestTeamStatusLive(t *testing.T) {
	ts := startServer(t, nil)
	ann := dial(t, ts.WS)
	annSID, _ := ann.login("1001")

	sup := dial(t, ts.WS)
	sup.login("2001")
	begin := sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, "")
	if d := success(t, begin); len(d) != 0 {
		t.Fatalf("begin data = %v", d)
	}
	teams := map[string]map[string]map[string]any{}
	for i := 0; i < 2; i++ {
		ev := sup.waitEvent("report.teamstatus.teamadded")
		if ev["data"].(map[string]any)["agentId"] != "2001" {
			t.Fatalf("teamadded agentId = %v", ev)
		}
		teams[teamOf(t, ev)["teamId"].(string)] = membersOf(t, ev)
	}
	sales := teams["t1"]
	if len(sales) != 4 || sales["1001"]["status"] != "not_ready" || sales["1001"]["memberName"] != "Ann Lee" ||
		sales["1001"]["memberType"] != "Agent" || sales["1002"]["status"] != "logged_out" || sales["2001"]["memberType"] != "Supervisor" {
		t.Fatalf("Sales members = %v", sales)
	}
	if len(teams["t2"]) != 3 {
		t.Fatalf("Support members = %v", teams["t2"])
	}

	success(t, ann.request("setState", map[string]any{"state": "ready"}, annSID))
	if m := statusChange(t, sup, "1001"); m["status"] != "ready" {
		t.Fatalf("after ready: %v", m)
	}
	success(t, ann.request("setState", map[string]any{"state": "not_ready", "reason": "lunch-7"}, annSID))
	if m := statusChange(t, sup, "1001"); m["status"] != "not_ready" || m["reason"] != "lunch-7" {
		t.Fatalf("after not_ready: %v", m)
	}
	success(t, ann.request("setState", map[string]any{"state": "ACW"}, annSID))
	if m := statusChange(t, sup, "1001"); m["status"] != "ACW" {
		t.Fatalf("after ACW: %v", m)
	}
	bob := dial(t, ts.WS)
	bobSID, _ := bob.login("1002")
	if m := statusChange(t, sup, "1002"); m["status"] != "not_ready" {
		t.Fatalf("after bob's login: %v", m)
	}
	success(t, ann.request("closeSession", nil, annSID))
	if m := statusChange(t, sup, "1001"); m["status"] != "logged_out" {
		t.Fatalf("after close: %v", m)
	}
	// An agent cannot watch someone else's teams.
	failure(t, bob.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""), "auth.forbidden")

	success(t, sup.request("report.teamstatus.end", map[string]any{"agentId": "2001"}, ""))
	success(t, bob.request("setState", map[string]any{"state": "ready"}, bobSID))
	sup.noEvent("report.teamstatus.memberstatuschanged", 300*time.Millisecond)
}

func TestTeamStatusExpiryMakesLoggedOut(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SessionGrace = time.Second })
	sup := dial(t, ts.WS)
	sup.login("2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	ann := dial(t, ts.WS)
	ann.login("1001")
	if m := statusChange(t, sup, "1001"); m["status"] != "not_ready" {
		t.Fatalf("login: %v", m)
	}
	ann.ws.Close()
	if m := statusChange(t, sup, "1001"); m["status"] != "logged_out" {
		t.Fatalf("after grace: %v", m)
	}
}

func TestDirectoryReloadEvents(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.AdminToken = "adm1n" })
	sup := dial(t, ts.WS)
	sup.login("2001")
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")

	var doc map[string]any
	_ = json.Unmarshal(testDirectoryJSON(t), &doc)
	teams := doc["teams"].([]any)
	t1 := teams[0].(map[string]any)
	t1["name"] = "Sales East"
	t1["members"] = []any{"1001", "3001", "1004"} // 1002 out, 1004 in
	doc["teams"] = []any{t1, map[string]any{"id": "t3", "name": "Retention", "members": []any{"1003"}, "supervisors": []any{"2001"}}}

	put := func(body, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/admin/directory", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	if status, _ := put(jsonOf(doc), ""); status != 401 {
		t.Fatalf("reload without token: %d", status)
	}
	if status, body := put(`{"agents":[{"id":"1","name":"x","type":"Boss","passwordHash":"x"}],"teams":[]}`, "adm1n"); status != 400 || !strings.Contains(body, "Boss") {
		t.Fatalf("bad directory: %d %s", status, body)
	}
	sup.noEvent("report.teamstatus.teamchanged", 100*time.Millisecond)
	if status, body := put(jsonOf(doc), "adm1n"); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	changed := sup.waitEvent("report.teamstatus.teamchanged")
	if teamOf(t, changed)["teamName"] != "Sales East" {
		t.Fatalf("teamchanged = %v", changed)
	}
	added := sup.waitEvent("report.teamstatus.memberadded")
	if _, ok := membersOf(t, added)["1004"]; !ok || teamOf(t, added)["teamId"] != "t1" {
		t.Fatalf("memberadded = %v", added)
	}
	removed := sup.waitEvent("report.teamstatus.memberremoved")
	if _, ok := membersOf(t, removed)["1002"]; !ok {
		t.Fatalf("memberremoved = %v", removed)
	}
	newTeam := sup.waitEvent("report.teamstatus.teamadded")
	if teamOf(t, newTeam)["teamId"] != "t3" {
		t.Fatalf("teamadded = %v", newTeam)
	}
	gone := sup.waitEvent("report.teamstatus.teamremoved")
	if teamOf(t, gone)["teamId"] != "t2" {
		t.Fatalf("teamremoved = %v", gone)
	}
}
