package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iproc/server"
)

const (
	pathCGS      = "/ingest/ocs/campaign-group-state"
	pathCP       = "/ingest/ocs/contact-processed"
	pathCallback = "/ingest/gms/callback"
)

var allTopics = []string{"outbound.campaignGroupState", "outbound.contactProcessed", "callback.status", "dialer.cdr"}

// subscribed logs agent id in on a new connection and subscribes it to
// every topic.
func subscribed(t *testing.T, ts *testServer, id string) (*client, string, string) {
	t.Helper()
	c := dial(t, ts.WS)
	sid, token := c.login(id)
	success(t, c.request("subscribe", map[string]any{"topics": allTopics}, sid))
	return c, sid, token
}

// customerFields are the default --customer-fields.
var customerFields = []string{"GSW_PHONE", "_customer_number", "_phone_number", "client_number", "dial_number"}

// masked returns v as a viewer who may not see customer data gets it: all
// but the last four characters starred, "****" for four or fewer.
func masked(v string) string {
	r := []rune(v)
	if len(r) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(r)-4) + string(r[len(r)-4:])
}

// sameFields checks that every field sent is in the event data unchanged,
// but for customer data, which a supervisor gets masked.
func sameFields(t *testing.T, sent map[string]any, got map[string]any) {
	t.Helper()
	var want map[string]any
	_ = json.Unmarshal([]byte(jsonOf(sent)), &want)
	for _, f := range customerFields {
		if v, ok := want[f]; ok {
			want[f] = masked(fmt.Sprint(v))
		}
	}
	var have map[string]any
	_ = json.Unmarshal([]byte(jsonOf(got)), &have)
	for k, v := range want {
		if jsonOf(have[k]) != jsonOf(v) {
			t.Errorf("field %s: sent %s, delivered %s", k, jsonOf(v), jsonOf(have[k]))
		}
	}
}

func seqOf(t *testing.T, m map[string]any) int64 {
	t.Helper()
	n, ok := m["seq"].(json.Number)
	if !ok {
		t.Fatalf("no seq in %v", m)
	}
	v, _ := n.Int64()
	return v
}

func TestIngestEachKindDelivered(t *testing.T) {
	ts := startServer(t, nil)
	sup, _, _ := subscribed(t, ts, "2001")

	cgs := campaignGroupState("6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", 2)
	status, body := post(t, ts.URL+pathCGS, jsonOf(cgs), nil)
	if status != 200 || body["accepted"] != true {
		t.Fatalf("campaign group state: %d %v", status, body)
	}
	ev := sup.waitEvent("outbound.campaignGroupState")
	sameFields(t, cgs, ev["data"].(map[string]any))
	if seqOf(t, ev) != seqOf(t, body) {
		t.Errorf("event seq %v != ack seq %v", ev["seq"], body["seq"])
	}

	cp := contactProcessed("A1B2C3D4-0000-4000-8000-000000000001", "ATT-1", "1001")
	status, body = post(t, ts.URL+pathCP, jsonOf(cp), map[string]string{"ETag": `"a1b2c3d4-0000-4000-8000-000000000001"`})
	if status != 200 {
		t.Fatalf("contact processed: %d %v", status, body)
	}
	ev = sup.waitEvent("outbound.contactProcessed")
	sameFields(t, cp, ev["data"].(map[string]any))

	cb := callbackEvent("445-20e740d3", "on_service_create", "1001", 1467575991)
	status, body = post(t, ts.URL+pathCallback, jsonOf(map[string]any{"deviceId": "desk-7", "message": cb}), nil)
	if status != 200 {
		t.Fatalf("callback: %d %v", status, body)
	}
	ev = sup.waitEvent("callback.status")
	data := ev["data"].(map[string]any)
	sameFields(t, cb, data)
	if data["deviceId"] != "desk-7" {
		t.Errorf("deviceId not added beside the fields: %v", data)
	}

	arr := []any{callbackEvent("445-x", "on_dial_init", "", 1467575992), callbackEvent("445-x", "on_dial_done", "", 1467576012)}
	status, body = post(t, ts.URL+pathCallback, jsonOf(arr), nil)
	seqs, _ := body["seqs"].([]any)
	if status != 200 || len(seqs) != 2 {
		t.Fatalf("callback array: %d %v", status, body)
	}
	e1, e2 := sup.waitEvent("callback.status"), sup.waitEvent("callback.status")
	if e1["data"].(map[string]any)["event_id"] != "_cbe_on_dial_init" || e2["data"].(map[string]any)["event_id"] != "_cbe_on_dial_done" || seqOf(t, e1) >= seqOf(t, e2) {
		t.Errorf("array events out of order: %v %v", e1, e2)
	}
}

func TestIngestBadInputStoresNothing(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.IngestToken = "s3cr3t-token" })
	sup, _, _ := subscribed(t, ts, "2001")
	auth := map[string]string{"Authorization": "Bearer s3cr3t-token"}
	withAuth := func(extra map[string]string) map[string]string {
		m := map[string]string{"Authorization": "Bearer s3cr3t-token"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	missing := contactProcessed("G-missing", "A", "1001")
	delete(missing, "GSW_CALLING_LIST")
	wrongType := contactProcessed("G-type", "A", "1001")
	wrongType["GSW_CHAIN_ID"] = "forty-two"
	media := contactProcessed("G-media", "A", "1001")
	media["GSW_CONTACT_MEDIA_TYPE"] = "fax"
	actor := campaignGroupState("CG-1", 2)
	actor["GSW_CAMPAIGN_GROUP_ACTOR"] = 9
	noService := callbackEvent("", "on_dial_init", "", 1)
	delete(noService, "_service_id")
	badEvent := callbackEvent("S1", "x", "", 1)
	badEvent["event_id"] = "on_dial_init"
	gmsSample := `{
           "event_id": "_cbe_on_service_create",
          "timestamp": "1467575991"
          "_service_id": "445-20e740d3-8458-43d6-834d-3713c3385bac",
          "_callback_state": "QUEUED"
}`
	cases := []struct {
		name, path, body string
		header           map[string]string
		status           int
		code, field      string
	}{
		{"missing mandatory field", pathCP, jsonOf(missing), auth, 400, "request.invalid", "GSW_CALLING_LIST"},
		{"wrong type", pathCP, jsonOf(wrongType), auth, 400, "request.invalid", "GSW_CHAIN_ID"},
		{"wrong media type", pathCP, jsonOf(media), auth, 400, "request.invalid", "GSW_CONTACT_MEDIA_TYPE"},
		{"ETag differs", pathCP, jsonOf(contactProcessed("G-etag", "A", "1001")), withAuth(map[string]string{"ETag": "other"}), 400, "request.invalid", "ETag"},
		{"actor out of range", pathCGS, jsonOf(actor), auth, 400, "request.invalid", "GSW_CAMPAIGN_GROUP_ACTOR"},
		{"callback without service id", pathCallback, jsonOf(noService), auth, 400, "request.invalid", "_service_id"},
		{"callback event id", pathCallback, jsonOf(badEvent), auth, 400, "request.invalid", "event_id"},
		{"array with one bad item", pathCallback, jsonOf([]any{callbackEvent("S", "on_dial_init", "", 1), noService}), auth, 400, "request.invalid", ""},
		{"GMS sample with missing commas", pathCallback, gmsSample, auth, 400, "request.malformed", ""},
		{"not an object", pathCGS, `[]`, auth, 400, "", ""},
		{"wrong content type", pathCGS, jsonOf(campaignGroupState("CG", 1)), withAuth(map[string]string{"Content-Type": "text/plain"}), 415, "", ""},
		{"oversize", pathCGS, `{"x":"` + strings.Repeat("a", 1<<20) + `"}`, auth, 413, "", ""},
		{"no token", pathCGS, jsonOf(campaignGroupState("CG", 1)), nil, 401, "auth.forbidden", ""},
		{"wrong token", pathCGS, jsonOf(campaignGroupState("CG", 1)), map[string]string{"Authorization": "Bearer nope"}, 401, "auth.forbidden", ""},
	}
	for _, tc := range cases {
		status, body := post(t, ts.URL+tc.path, tc.body, tc.header)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, status, tc.status, body)
			continue
		}
		e, _ := body["error"].(map[string]any)
		if e == nil || e["message"] == "" {
			t.Errorf("%s: no error body: %v", tc.name, body)
			continue
		}
		if tc.code != "" && e["code"] != tc.code {
			t.Errorf("%s: code %v, want %s", tc.name, e["code"], tc.code)
		}
		if tc.field != "" && !strings.Contains(jsonOf(e["fields"]), tc.field) {
			t.Errorf("%s: fields %v lack %s", tc.name, e["fields"], tc.field)
		}
		if strings.Contains(jsonOf(body), "s3cr3t-token") {
			t.Errorf("%s: token echoed", tc.name)
		}
	}
	// Nothing was stored: the next good notification is the next event.
	status, body := post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-good", 1)), auth)
	if status != 200 {
		t.Fatalf("good post: %d %v", status, body)
	}
	ev := sup.next("any topic event", func(m map[string]any) bool {
		n, _ := m["name"].(string)
		return strings.HasPrefix(n, "outbound.") || strings.HasPrefix(n, "callback.")
	})
	if ev["data"].(map[string]any)["GSW_CAMPAIGN_GROUP_GUID"] != "CG-good" {
		t.Fatalf("a refused notification was delivered: %v", ev)
	}
}

func TestContactProcessedDedup(t *testing.T) {
	ts := startServer(t, nil)
	sup, _, _ := subscribed(t, ts, "2001")
	cp := contactProcessed("DEAD-BEEF-1", "ATT-9", "1001")
	s1, b1 := post(t, ts.URL+pathCP, jsonOf(cp), map[string]string{"ETag": `"DEAD-BEEF-1"`})
	cp["GSW_MESSAGE_GUID"] = "dead-beef-1" // GUIDs compare case-insensitively
	s2, b2 := post(t, ts.URL+pathCP, jsonOf(cp), nil)
	if s1 != 200 || s2 != 200 || b2["duplicate"] != true || seqOf(t, b1) != seqOf(t, b2) || b1["duplicate"] != nil {
		t.Fatalf("dedup: %d %v / %d %v", s1, b1, s2, b2)
	}
	sup.waitEvent("outbound.contactProcessed")
	sup.noEvent("outbound.contactProcessed", 300*time.Millisecond)
}

func TestAgentSeesOnlyOwnEvents(t *testing.T) {
	ts := startServer(t, nil)
	ann, _, _ := subscribed(t, ts, "1001")
	bob, _, _ := subscribed(t, ts, "1002")
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-9", 2)), nil)
	post(t, ts.URL+pathCP, jsonOf(contactProcessed("G-bob", "A-bob", "1002")), nil)
	post(t, ts.URL+pathCP, jsonOf(contactProcessed("G-none", "A-none", "")), nil)
	post(t, ts.URL+pathCallback, jsonOf(callbackEvent("S-bob", "on_route_to_agent", "1002", 2)), nil)
	post(t, ts.URL+pathCP, jsonOf(contactProcessed("G-ann", "A-ann", "1001")), nil)
	post(t, ts.URL+pathCallback, jsonOf(callbackEvent("S-ann", "on_route_to_agent", "1001", 3)), nil)
	got := ann.waitEvent("outbound.contactProcessed")
	if got["data"].(map[string]any)["GSW_AGENT_ID"] != "1001" {
		t.Fatalf("ann got %v", got)
	}
	if cb := ann.waitEvent("callback.status"); cb["data"].(map[string]any)["c_agent_id"] != "1001" {
		t.Fatalf("ann got %v", cb)
	}
	if got := bob.waitEvent("outbound.contactProcessed"); got["data"].(map[string]any)["GSW_AGENT_ID"] != "1002" {
		t.Fatalf("bob got %v", got)
	}
	ann.noEvent("outbound.campaignGroupState", 200*time.Millisecond)
	for _, m := range ann.pending {
		if d, ok := m["data"].(map[string]any); ok && (d["GSW_AGENT_ID"] == "1002" || d["c_agent_id"] == "1002" || m["name"] == "outbound.campaignGroupState") {
			t.Fatalf("ann saw someone else's event: %v", m)
		}
	}
	f := failure(t, ann.request("report.campaigngroups", nil, ""), "auth.forbidden")
	_ = f
}

func TestSubscribeFilterAndUnsubscribe(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.WS)
	sid, _ := c.login("2001")
	failure(t, c.request("subscribe", map[string]any{"topics": []string{"nope"}}, sid), "request.invalid")
	failure(t, c.request("subscribe", map[string]any{"topics": []string{}}, sid), "request.invalid")
	success(t, c.request("subscribe", map[string]any{"topics": []string{"outbound.campaignGroupState"},
		"filter": map[string]any{"GSW_CAMPAIGN_GROUP_GUID": "CG-B", "GSW_CAMPAIGN_GROUP_STATE": "2"}}, sid))
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-A", 2)), nil)
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-B", 3)), nil)
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-B", 2)), nil) // number 2 matches "2"
	ev := c.waitEvent("outbound.campaignGroupState")
	if d := ev["data"].(map[string]any); d["GSW_CAMPAIGN_GROUP_GUID"] != "CG-B" || d["GSW_CAMPAIGN_GROUP_STATE"].(json.Number) != "2" {
		t.Fatalf("filter let through %v", ev)
	}
	c.noEvent("outbound.campaignGroupState", 200*time.Millisecond)
	success(t, c.request("unsubscribe", map[string]any{"topics": []string{"outbound.campaignGroupState"}}, sid))
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-B", 2)), nil)
	c.noEvent("outbound.campaignGroupState", 200*time.Millisecond)
}

// resumeOn dials a new connection and resumes session sid from since.
func resumeOn(t *testing.T, url, sid, token string, since int64) (*client, map[string]any) {
	t.Helper()
	c := dial(t, url)
	resp := c.request("resumeSession", map[string]any{"id": sid, "resumeToken": token, "since": since}, "")
	return c, resp
}

func TestResumeReplaysMissedEventsInOrder(t *testing.T) {
	ts := startServer(t, nil)
	c, sid, token := subscribed(t, ts, "2001")
	post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-0", 1)), nil)
	last := seqOf(t, c.waitEvent("outbound.campaignGroupState"))
	c.ws.Close()
	var acked []int64
	for i := 1; i <= 5; i++ {
		_, b := post(t, ts.URL+pathCGS, jsonOf(campaignGroupState(fmt.Sprintf("CG-%d", i), 1)), nil)
		acked = append(acked, seqOf(t, b))
	}
	failure(t, func() map[string]any { _, r := resumeOn(t, ts.WS, sid, "wrong-token", last); return r }(), "session.notResumable")
	r, resp := resumeOn(t, ts.WS, sid, token, last)
	d := success(t, resp)
	if d["recovered"] != true {
		t.Fatalf("resume = %v", resp)
	}
	for i, want := range acked {
		ev := r.waitEvent("outbound.campaignGroupState")
		if seqOf(t, ev) != want || ev["data"].(map[string]any)["GSW_CAMPAIGN_GROUP_GUID"] != fmt.Sprintf("CG-%d", i+1) {
			t.Fatalf("replayed %v, want seq %d", ev, want)
		}
	}
	r.noEvent("outbound.campaignGroupState", 200*time.Millisecond)
	// Then live, on the same session.
	_, b := post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("CG-live", 1)), nil)
	if ev := r.waitEvent("outbound.campaignGroupState"); seqOf(t, ev) != seqOf(t, b) {
		t.Fatalf("live event %v", ev)
	}
	success(t, r.request("getState", nil, sid))
}

func TestResumeAfterGraceFails(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.SessionGrace = time.Second })
	c := dial(t, ts.WS)
	sid, token := c.login("1001")
	c.ws.Close()
	time.Sleep(2500 * time.Millisecond) // past the grace period and one expiry sweep
	_, resp := resumeOn(t, ts.WS, sid, token, 0)
	failure(t, resp, "session.notResumable")
	// The agent has no session any more: a login needs no override.
	d := dial(t, ts.WS)
	d.login("1001")
}

// A consumer that stops reading is closed with 1013 and, on resume, gets
// every event it missed, each once.
func TestSlowConsumerLosesNothing(t *testing.T) {
	// The write deadline outlasts the posting below, so that the server's
	// blocked writer is still waiting when the client reads again and the
	// 1013 close frame reaches it (a shorter one would time the write out
	// and end the connection without a close frame, 1006).
	// The session grace outlasts the posting too: on a loaded machine 240
	// posts of 32 KiB took longer than the harness's 5 s.
	ts := startServer(t, func(c *server.Config) {
		c.SendQueueSize, c.WriteWait, c.SessionGrace = 4, 30*time.Second, 2*time.Minute
	})
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// Read by hand until the answer to a request, then stop reading.
	ask := func(req map[string]any) map[string]any {
		_ = ws.WriteJSON(req)
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
	res := resp["resource"].(map[string]any)
	sid, token := res["id"].(string), res["resumeToken"].(string)
	ask(map[string]any{"command": "subscribe", "id": "2", "resource": sid, "data": map[string]any{"topics": allTopics}})

	big := strings.Repeat("z", 32<<10)
	var mu sync.Mutex
	acked := map[int64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 60; i++ {
				cgs := campaignGroupState(fmt.Sprintf("CG-%d-%d", w, i), 1)
				cgs["pad"] = big
				status, b := post(t, ts.URL+pathCGS, jsonOf(cgs), nil)
				if status != 200 {
					t.Errorf("post: %d %v", status, b)
					return
				}
				n, _ := b["seq"].(json.Number).Int64()
				mu.Lock()
				acked[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Drain what the first connection got, up to its close.
	seen := map[int64]int{}
	var last int64
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m map[string]any
		dec := ws.ReadJSON(&m)
		if dec != nil {
			var ce *websocket.CloseError
			if !errors.As(dec, &ce) || ce.Code != websocket.CloseTryAgainLater {
				t.Fatalf("slow consumer closed with %v, want 1013", dec)
			}
			break
		}
		if m["name"] == "outbound.campaignGroupState" {
			n := int64(m["seq"].(float64))
			seen[n]++
			last = n
		}
	}
	r, resp := resumeOn(t, ts.WS, sid, token, last)
	if success(t, resp)["recovered"] != true {
		t.Fatalf("resume: %v", resp)
	}
	for n := range acked {
		if n <= last && seen[n] == 0 {
			t.Fatalf("event %d before the resume point was never delivered", n)
		}
	}
	missing := 0
	for n := range acked {
		if n > last {
			missing++
		}
	}
	for i := 0; i < missing; i++ {
		ev := r.waitEvent("outbound.campaignGroupState")
		n := seqOf(t, ev)
		if !acked[n] || n <= last {
			t.Fatalf("replayed unexpected seq %d (last %d)", n, last)
		}
		seen[n]++
	}
	r.noEvent("outbound.campaignGroupState", 200*time.Millisecond)
	for n := range acked {
		if seen[n] != 1 {
			t.Fatalf("event %d delivered %d times", n, seen[n])
		}
	}
	t.Logf("%d events: %d before the 1013 close, %d replayed", len(acked), len(acked)-missing, missing)
}
