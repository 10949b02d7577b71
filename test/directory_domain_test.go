package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"iproc/reporting/directory"
	"iproc/server"
)

// withNewAgent adds agent 1005 (Eve, extension 5005) to directory doc.
func withNewAgent(t *testing.T, doc []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	agents := m["agents"].([]any)
	eve := map[string]any{}
	for k, v := range agents[0].(map[string]any) {
		eve[k] = v // the same password hash
	}
	eve["id"], eve["name"], eve["extension"] = "1005", "Eve Stone", "5005"
	m["agents"] = append(agents, eve)
	b, _ := json.Marshal(m)
	return string(b)
}

// getDirectory reads GET /admin/directory.
func getDirectory(t *testing.T, url, token string) (int, map[string]any, string) {
	t.Helper()
	status, _, body := adminRequest(t, http.MethodGet, url, "", token)
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return status, m, body
}

// The directory is one for the instance domain: a reload on A reaches a
// watcher on B with a seq, a new agent can log in on B at once, GET
// /admin/directory on B shows it with its version and no password hashes,
// and an instance started later with the old file uses the new directory.
func TestDirectoryReloadReachesEveryInstance(t *testing.T) {
	const token = "adm1n-t0ken"
	r, ps := startCluster(t, 2, "--admin-token", token)
	sup, _, _ := watchingSupervisor(t, ps[1].WS, ps[1].URL)

	reloaded := withNewAgent(t, reloadedDirectoryJSON(t))
	status, _, body := putDirectory(t, ps[0].URL, reloaded, token)
	if status != 200 || !strings.Contains(body, `"version"`) {
		t.Fatalf("reload on A: %d %s", status, body)
	}
	var put struct{ Version int64 }
	_ = json.Unmarshal([]byte(body), &put)
	ev := nextTeamEvent(t, sup)
	if ev["name"] != "report.teamstatus.teamchanged" || seqOf(t, ev) != put.Version {
		t.Fatalf("watcher on B got %v; want teamchanged with the reload's seq %d", ev, put.Version)
	}
	expectTeamEvents(t, sup,
		"memberremoved 2001 t1 Sales East 1002",
		"memberadded 2001 t1 Sales East 1004/Agent/Di Hart/logged_out/",
		"teamadded 2001 t3 Retention 1003/Agent/Cy Dunn/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
		"teamremoved 2001 t2 Support",
	)
	eve := dial(t, ps[1].WS)
	eve.login("1005")

	status, got, raw := getDirectory(t, ps[1].URL, token)
	if status != 200 || int64(got["version"].(float64)) != put.Version || strings.Contains(raw, "passwordHash") || strings.Contains(raw, "$2") || !strings.Contains(raw, "Eve Stone") {
		t.Fatalf("GET /admin/directory on B: %d %s", status, raw)
	}
	if status, _, _ := getDirectory(t, ps[1].URL, ""); status != 401 {
		t.Fatalf("GET /admin/directory without the token: %d", status)
	}
	// A bad directory changes nothing anywhere.
	if status, _, _ := putDirectory(t, ps[1].URL, `{"agents":[]}`, token); status != 400 {
		t.Fatalf("bad directory: %d", status)
	}

	// A third instance, started with the old file, uses the domain's.
	late := startInstance(t, r, "--admin-token", token)
	if _, got, raw := getDirectory(t, late.URL, token); int64(got["version"].(float64)) != put.Version || !strings.Contains(raw, "Eve Stone") {
		t.Fatalf("instance started later: %s", raw)
	}
	if !strings.Contains(late.output(), "using the directory stored by the newest reload") {
		t.Fatalf("the late instance did not say it used the stored directory:\n%s", late.output())
	}
	// 1005 is logged in on B: the late instance asks to confirm, then
	// takes over.
	c := dial(t, late.WS)
	c.login2("1005", true)
}

// Team events of a reload carry its seq and are replayed on resumeSession
// to a watcher that was away.
func TestDirectoryReloadReplayedOnResume(t *testing.T) {
	ts := startServer(t, nil)
	sup, sid, token := watchingSupervisor(t, ts.WS, ts.URL)
	// The seq of a last event it received, then away.
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"outbound.contactProcessed"}}, sid))
	_, body := post(t, ts.URL+pathCP, jsonOf(contactProcessed("BEFORE-AWAY", "ATT-BEFORE-AWAY", "1001")), nil)
	last := seqOf(t, body)
	if got := seqOf(t, sup.waitEvent("outbound.contactProcessed")); got != last {
		t.Fatalf("seq %d, want %d", got, last)
	}
	sup.ws.Close()
	if status, _, body := putDirectory(t, ts.URL, string(reloadedDirectoryJSON(t)), ""); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	c, resp := resumeOn(t, ts.WS, sid, token, last)
	success(t, resp)
	expectTeamEvents(t, c,
		"teamchanged 2001 t1 Sales East",
		"memberremoved 2001 t1 Sales East 1002",
		"memberadded 2001 t1 Sales East 1004/Agent/Di Hart/logged_out/",
		"teamadded 2001 t3 Retention 1003/Agent/Cy Dunn/logged_out/ 2001/Supervisor/Sue Pervis/not_ready/login",
		"teamremoved 2001 t2 Support",
	)
}

// The directory's reason-code labels reach desktops through
// getCapabilities, and follow reloads.
func TestReasonCodeLabelsFromTheDirectory(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.Directory = directory.Demo() })
	c := dial(t, ts.WS)
	caps := success(t, c.request("getCapabilities", nil, ""))
	if codes, _ := caps["reasonCodes"].(map[string]any); codes["32"] != "Training" || codes["1"] != "Break" {
		t.Fatalf("reasonCodes of the demo directory: %v", caps["reasonCodes"])
	}
	var doc map[string]any
	_ = json.Unmarshal(testDirectoryJSON(t), &doc)
	doc["reasonCodes"] = map[string]string{"7": "Coaching"}
	if status, _, body := putDirectory(t, ts.URL, jsonOf(doc), ""); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	caps = success(t, c.request("getCapabilities", nil, ""))
	if codes, _ := caps["reasonCodes"].(map[string]any); len(codes) != 1 || codes["7"] != "Coaching" {
		t.Fatalf("reasonCodes after the reload: %v", caps["reasonCodes"])
	}
	if _, got, raw := getDirectory(t, ts.URL, ""); got["reasonCodes"] == nil {
		t.Fatalf("GET /admin/directory without reasonCodes: %s", raw)
	}
}
