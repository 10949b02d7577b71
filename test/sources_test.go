package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"iproc/server"
)

// sourcesOf returns report.sources' answer keyed by source.
func sourcesOf(t *testing.T, c *client) map[string]map[string]any {
	t.Helper()
	d := success(t, c.request("report.sources", nil, ""))
	list, ok := d["sources"].([]any)
	if !ok {
		t.Fatalf("report.sources: no sources list in %v", d)
	}
	out := map[string]map[string]any{}
	for _, v := range list {
		s := v.(map[string]any)
		out[s["source"].(string)] = s
	}
	return out
}

// healthEvent waits for the system.sourceHealth event of source with status.
func healthEvent(c *client, source, status string) map[string]any {
	c.t.Helper()
	return c.next("system.sourceHealth "+source+" "+status, func(m map[string]any) bool {
		d, _ := m["data"].(map[string]any)
		return m["name"] == "system.sourceHealth" && d["source"] == source && d["status"] == status
	})
}

// metricLine reports whether /metrics has a line starting with prefix.
func metricLine(t *testing.T, url, prefix string) bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// One notification makes its source ok (the others stay unknown), its
// status change is an event with a seq that a resumed supervisor gets again,
// two seconds of silence make it quiet, a bad body and a retry are counted,
// /metrics says the same, and an agent may not read the report.
func TestSourceHealthOkThenQuiet(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SourceQuiet = 2 * time.Second })
	sup := dial(t, ts.WS)
	sid, token := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"system.sourceHealth"}}, sid))
	ann := dial(t, ts.WS)
	annSID, _ := ann.login("1001")
	success(t, ann.request("subscribe", map[string]any{"topics": []string{"system.sourceHealth"}}, annSID))

	before := sourcesOf(t, sup)
	if len(before) != 3 {
		t.Fatalf("without Redis there are 3 sources, got %v", before)
	}
	for name, s := range before {
		if s["status"] != "unknown" || s["lastSeen"] != nil {
			t.Errorf("%s before any notification: %v", name, s)
		}
	}
	failure(t, ann.request("report.sources", nil, ""), "auth.forbidden")

	cp := jsonOf(contactProcessed("SRC-1", "ATT-SRC-1", "1001"))
	status, body := post(t, ts.URL+pathCP, cp, nil)
	if status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	if status, _ := post(t, ts.URL+pathCP, cp, nil); status != 200 { // a retry
		t.Fatalf("retry: %d", status)
	}
	if status, _ := post(t, ts.URL+pathCP, `{"GSW_USER_EVENT":"ContactProcessed"}`, nil); status != 400 {
		t.Fatalf("bad body: %d", status)
	}
	ok := healthEvent(sup, "ocs.contactProcessed", "ok")
	if seqOf(t, ok) <= seqOf(t, body) {
		t.Fatalf("the ok event (seq %d) must follow the notification (seq %d)", seqOf(t, ok), seqOf(t, body))
	}
	got := sourcesOf(t, sup)
	cpSrc := got["ocs.contactProcessed"]
	if cpSrc["status"] != "ok" || cpSrc["lastSeen"] == nil || num(cpSrc["perMinute"]) != 1 ||
		num(cpSrc["duplicatesPerMinute"]) != 1 || num(cpSrc["rejectedPerMinute"]) != 1 {
		t.Fatalf("contact-processed source after one notification, a retry and a bad body: %v", cpSrc)
	}
	for _, name := range []string{"ocs.campaignGroupState", "gms.callback"} {
		if got[name]["status"] != "unknown" {
			t.Errorf("%s: %v, want unknown", name, got[name])
		}
	}
	checkFor(t, 5*time.Second, "the source's status on /metrics", func() bool {
		return metricLine(t, ts.URL, `iproc_source_status{source="ocs.contactProcessed",status="ok"} 1`)
	})

	quiet := healthEvent(sup, "ocs.contactProcessed", "quiet")
	if d := quiet["data"].(map[string]any); d["lastSeen"] != cpSrc["lastSeen"] {
		t.Errorf("quiet event %v: lastSeen differs from the report's %v", d, cpSrc["lastSeen"])
	}
	if s := sourcesOf(t, sup)["ocs.contactProcessed"]["status"]; s != "quiet" {
		t.Errorf("report after the quiet event: %v", s)
	}
	if !metricLine(t, ts.URL, `iproc_source_status{source="ocs.contactProcessed",status="quiet"} 1`) {
		t.Error("/metrics does not show the source quiet")
	}
	// /readyz is not affected by a quiet source.
	if s, reason := readyz(t, ts.URL); s != 200 {
		t.Errorf("readyz with a quiet source: %d %s", s, reason)
	}
	// An agent never receives source health.
	ann.noEvent("system.sourceHealth", 0)

	// Resumed from before the notification, the supervisor gets both
	// changes again, in order, with the same seqs.
	sup.ws.Close()
	again, resp := resumeOn(t, ts.WS, sid, token, seqOf(t, body))
	success(t, resp)
	if r := healthEvent(again, "ocs.contactProcessed", "ok"); seqOf(t, r) != seqOf(t, ok) {
		t.Errorf("replayed ok seq %d, live %d", seqOf(t, r), seqOf(t, ok))
	}
	if r := healthEvent(again, "ocs.contactProcessed", "quiet"); seqOf(t, r) != seqOf(t, quiet) {
		t.Errorf("replayed quiet seq %d, live %d", seqOf(t, r), seqOf(t, quiet))
	}
}

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case interface{ Float64() (float64, error) }:
		f, _ := n.Float64()
		return f
	}
	return -1
}

// The dialer is down while its Redis is stopped and ok again once it is
// back; the changes made while Redis (which holds the log) was away are
// stored when it returns, in order.
func TestSourceHealthDialerDownWhileRedisStopped(t *testing.T) {
	r := startRedis(t, redisOptions{Durable: true})
	rdb := r.Client()
	const key = "cdr:health"
	ts := startServer(t, func(c *server.Config) { c.RedisURL, c.CDRKey = r.URL, key })
	sup := dial(t, ts.WS)
	sid, _ := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"system.sourceHealth", "dialer.cdr"}}, sid))
	if got := sourcesOf(t, sup); len(got) != 4 || got["dialer.cdr"]["status"] != "unknown" {
		t.Fatalf("with Redis there are 4 sources, the dialer unknown: %v", got)
	}
	if err := pushCDRs(t, rdb, key, "HEALTH", 1, ext5001); err != nil {
		t.Fatal(err)
	}
	sup.waitEvent("dialer.cdr")
	healthEvent(sup, "dialer.cdr", "ok")
	d := sourcesOf(t, sup)["dialer.cdr"]
	if d["listLength"] == nil || d["deadLetters"] == nil || d["listNonEmptySeconds"] == nil {
		t.Fatalf("the dialer's list figures are missing: %v", d)
	}

	r.Stop()
	checkFor(t, 10*time.Second, "report.sources: dialer down", func() bool {
		return sourcesOf(t, sup)["dialer.cdr"]["status"] == "down"
	})
	if !metricLine(t, ts.URL, `iproc_source_status{source="dialer.cdr",status="down"} 1`) {
		t.Error("/metrics does not show the dialer down")
	}
	r.start()
	checkFor(t, 15*time.Second, "report.sources: dialer ok again", func() bool {
		return sourcesOf(t, sup)["dialer.cdr"]["status"] == "ok"
	})
	down := healthEvent(sup, "dialer.cdr", "down")
	back := healthEvent(sup, "dialer.cdr", "ok")
	if seqOf(t, back) <= seqOf(t, down) {
		t.Fatalf("ok (seq %d) stored before down (seq %d)", seqOf(t, back), seqOf(t, down))
	}
}
