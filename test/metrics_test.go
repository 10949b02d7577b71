package test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"iproc/server"
)

// samples is one scrape of /metrics: "name{label=\"v\",…}" → value. Counters
// and gauges give their value, histograms their _count and _sum.
type samples map[string]float64

// scrape reads /metrics over HTTP and parses the Prometheus text format.
func scrape(t testing.TB, base string) samples {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := samples{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			key := name + labelText(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labelText(m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labelText(m.GetLabel())] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func labelText(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// checkDeltas compares after-before with want for every key of want.
func checkDeltas(t *testing.T, before, after samples, want map[string]float64) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := after[k]; !ok {
			t.Errorf("%s: not exported", k)
			continue
		}
		if got := after[k] - before[k]; got != want[k] {
			t.Errorf("%s moved by %v, want %v", k, got, want[k])
		}
	}
}

// TestMetricsCountTraffic drives known traffic through real WebSocket and
// HTTP and checks every counter moved by exactly what that traffic implies.
func TestMetricsCountTraffic(t *testing.T) {
	ts := startServer(t, nil)
	before := scrape(t, ts.URL)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes"} {
		if _, ok := before[name]; !ok {
			t.Errorf("runtime metric %s missing", name)
		}
	}

	sup, supSID, _ := subscribed(t, ts, "2001") // service.info + own stateChanged
	sup.waitEvent("session.stateChanged")
	// The watch begins before the agent logs in, so that the login is one
	// memberstatuschanged whatever the timing (begun after, the login
	// would be in the snapshot or live, depending on whether the hub had
	// delivered it yet).
	success(t, sup.request("report.teamstatus.begin", map[string]any{"agentId": "2001"}, ""))
	sup.waitEvent("report.teamstatus.teamadded")
	sup.waitEvent("report.teamstatus.teamadded")
	agent := dial(t, ts.WS)
	agentSID, _ := agent.login("1001")
	agent.waitEvent("session.stateChanged")
	sup.waitEvent("report.teamstatus.memberstatuschanged")

	// Notifications: 1 contact-processed (+1 retry), 2 campaign group
	// states, a callback array of 3, one invalid body.
	cp := jsonOf(contactProcessed("MET-GUID-1", "MET-ATT-1", "1001"))
	for i := 0; i < 2; i++ {
		if status, b := post(t, ts.URL+pathCP, cp, nil); status != 200 {
			t.Fatalf("contact-processed: %d %v", status, b)
		}
	}
	for i := 0; i < 2; i++ {
		if status, b := post(t, ts.URL+pathCGS, jsonOf(campaignGroupState(fmt.Sprintf("MET-CG-%d", i), 2)), nil); status != 200 {
			t.Fatalf("campaign-group-state: %d %v", status, b)
		}
	}
	arr := []any{callbackEvent("MET-S", "on_dial_init", "1001", 1), callbackEvent("MET-S", "on_dial_ok", "1001", 2), callbackEvent("MET-S", "on_done", "1001", 3)}
	if status, b := post(t, ts.URL+pathCallback, jsonOf(arr), nil); status != 200 {
		t.Fatalf("callback array: %d %v", status, b)
	}
	if status, _ := post(t, ts.URL+pathCP, `{"GSW_MESSAGE":"ContactProcessed"}`, nil); status != 400 {
		t.Fatalf("invalid contact-processed: %d, want 400", status)
	}
	for _, name := range []string{"outbound.contactProcessed", "outbound.campaignGroupState", "outbound.campaignGroupState",
		"callback.status", "callback.status", "callback.status"} {
		sup.waitEvent(name)
	}
	success(t, agent.request("setState", map[string]any{"state": "ready"}, agentSID))
	agent.waitEvent("session.stateChanged")
	sup.waitEvent("report.teamstatus.memberstatuschanged")
	_ = supSID

	// Event frames written: service.info ×2, session.stateChanged ×3 (two
	// logins, one setState), teamadded ×2, memberstatuschanged ×2 (the
	// login, the setState) and the 6 notifications to the supervisor. All
	// but service.info and teamadded carry a seq, so they are timed
	// commit-to-socket. The counters move just after the write, so wait
	// for the last one.
	const delivered, timed = 15, 11
	checkFor(t, 5*time.Second, "deliveries counted", func() bool {
		return scrape(t, ts.URL)["iproc_events_delivered_total"]-before["iproc_events_delivered_total"] >= delivered
	})
	after := scrape(t, ts.URL)
	checkDeltas(t, before, after, map[string]float64{
		"iproc_connections": 2,
		"iproc_sessions":    2,
		`iproc_events_in_total{source="ocs_contact_processed"}`:           1,
		`iproc_events_in_total{source="ocs_campaign_group_state"}`:        2,
		`iproc_events_in_total{source="gms_callback"}`:                    3,
		"iproc_duplicates_total":                                          1,
		`iproc_ingest_rejected_total{status="Bad Request"}`:               1,
		`iproc_ingest_seconds_count{source="ocs_contact_processed"}`:      2,
		`iproc_ingest_seconds_count{source="ocs_campaign_group_state"}`:   2,
		`iproc_ingest_seconds_count{source="gms_callback"}`:               1,
		"iproc_events_delivered_total":                                    delivered,
		"iproc_commit_to_socket_seconds_count":                            timed,
		"iproc_slow_consumer_disconnects_total":                           0,
		`iproc_requests_total{command="prepareSession",result="success"}`: 2,
		`iproc_requests_total{command="setState",result="success"}`:       1,
		"iproc_frames_received_total":                                     5,
	})
	if s := after["iproc_commit_to_socket_seconds_sum"] - before["iproc_commit_to_socket_seconds_sum"]; s <= 0 || s > 10*timed {
		t.Errorf("commit-to-socket sum %v s for %d deliveries: not a latency", s, timed)
	}
	if s := after[`iproc_ingest_seconds_sum{source="gms_callback"}`]; s <= 0 {
		t.Errorf("ingest latency sum %v, want > 0", s)
	}

	// Closing both connections brings the connection gauge back.
	sup.ws.Close()
	agent.ws.Close()
	checkFor(t, 5*time.Second, "connections gauge back to its start", func() bool {
		return scrape(t, ts.URL)["iproc_connections"] == before["iproc_connections"]
	})
}

// TestMetricsSlowConsumer checks that a connection that stops reading is
// counted once as a slow-consumer disconnect, and that every notification
// posted meanwhile is counted in.
func TestMetricsSlowConsumer(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SendQueueSize = 4; c.WriteWait = 20 * time.Second })
	before := scrape(t, ts.URL)
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ask := func(req map[string]any) map[string]any {
		if err := ws.WriteJSON(req); err != nil {
			t.Fatalf("write: %v", err)
		}
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("read: %v", err)
			}
			if m["id"] == req["id"] {
				return m
			}
		}
	}
	resp := ask(map[string]any{"command": "prepareSession", "id": "1", "data": map[string]any{"agent": map[string]any{"id": "2001", "password": testPassword}}})
	sid := resp["resource"].(map[string]any)["id"].(string)
	ask(map[string]any{"command": "subscribe", "id": "2", "resource": sid, "data": map[string]any{"topics": allTopics}})

	// From here on nothing is read: posts fill the socket buffers, then
	// the 4-frame queue (the writer is stuck in a write with a long
	// deadline), and the server closes the connection with 1013.
	big := strings.Repeat("z", 256<<10)
	posted := 0
	for posted < 200 && scrape(t, ts.URL)["iproc_slow_consumer_disconnects_total"] == before["iproc_slow_consumer_disconnects_total"] {
		cgs := campaignGroupState(fmt.Sprintf("SLOW-%d", posted), 1)
		cgs["pad"] = big
		if status, b := post(t, ts.URL+pathCGS, jsonOf(cgs), nil); status != 200 {
			t.Fatalf("post: %d %v", status, b)
		}
		posted++
	}
	after := scrape(t, ts.URL)
	checkDeltas(t, before, after, map[string]float64{
		"iproc_slow_consumer_disconnects_total":                    1,
		`iproc_events_in_total{source="ocs_campaign_group_state"}`: float64(posted),
	})
	t.Logf("slow consumer closed after %d posts", posted)
}
