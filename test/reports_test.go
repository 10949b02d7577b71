package test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// seedService is the _service_id of the seed 003 callback sample.
const seedService = "445-20e740d3-8458-43d6-834d-3713c3385bac"

// seedCallbacks returns the seed 003 callback sequence for service svc, in
// time order, with the route to agent 1003 (extension 5003) that the sample's
// transaction list asks for. The notify_custom fields name1/name2 are kept.
func seedCallbacks(svc string) []map[string]any {
	ev := func(id, ts string, extra map[string]any) map[string]any {
		m := map[string]any{"event_id": id, "timestamp": ts, "_service_id": svc, "_service_name": "samples_dev",
			"name1": "value1", "name2": "value2"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []map[string]any{
		ev("_cbe_on_service_create", "1467575991", map[string]any{"_callback_state": "QUEUED", "_customer_number": "5115", "_urs_virtual_queue": "SIP_VQ_SIP_Switch"}),
		ev("_cbe_on_virtual_ixn_create", "1467575992", map[string]any{"_callback_state": "QUEUED"}),
		ev("_cbe_on_dial_init", "1467575992", map[string]any{"_callback_state": "QUEUED", "_customer_number": "5115", "c_dialed_number": "5115"}),
		ev("_cbe_on_dial_done", "1467576012", map[string]any{"_callback_state": "QUEUED", "_customer_number": "5115", "c_dialed_number": "5115", "c_call_result": 0, "c_call_num_attempt": 1}),
		ev("_cbe_on_connect_treatment_start", "1467576012", map[string]any{"_callback_state": "QUEUED", "_vq_for_outbound_calls": "VQ_GMS_REP_SIP_Switch", "c_dialed_number": "5115"}),
		ev("_cbe_on_customer_queued", "1467576016", map[string]any{"_callback_state": "QUEUED", "_vq_for_outbound_calls": "VQ_GMS_REP_SIP_Switch", "c_dialed_number": "5115"}),
		ev("_cbe_on_route_to_agent", "1467576017.250", map[string]any{"_urs_virtual_queue": "SIP_VQ_SIP_Switch", "c_agent_id": "1003", "c_agent_extension": "5003"}),
		ev("_cbe_on_service_exit", "1467576291", map[string]any{"_callback_state": "COMPLETED", "c_termination_type": "COMPLETED.AGENT_CONNECTED"}),
	}
}

// journeyLines returns the report.calljourney steps of resp, one
// "CallId|DeviceType|Device|Description|Duration|DurationMs" line each, and
// checks that every step has exactly the seed 002 fields plus DurationMs.
func journeyLines(t *testing.T, resp map[string]any) []string {
	t.Helper()
	d := success(t, resp)
	steps, ok := d["CallJourney"].([]any)
	if !ok || len(d) != 1 {
		t.Fatalf("report.calljourney data = %v", d)
	}
	lines := make([]string, 0, len(steps))
	for _, s := range steps {
		st := s.(map[string]any)
		if len(st) != 6 {
			t.Fatalf("step fields %v, want CallId Device DeviceType Description Duration DurationMs", st)
		}
		lines = append(lines, fmt.Sprintf("%v|%v|%v|%v|%v|%v", st["CallId"], st["DeviceType"], st["Device"], st["Description"], st["Duration"], st["DurationMs"]))
	}
	return lines
}

// maskedSteps is what a supervisor or team lead without customerData
// "full" reads of journey steps (CallId|DeviceType|Device|Description|…):
// the Customer step's device, and any phone number (five digits or more)
// in a device or description, masked to its last four characters.
func maskedSteps(lines []string) []string {
	number := regexp.MustCompile(`\+?\d{5,}`)
	out := make([]string, len(lines))
	for i, l := range lines {
		f := strings.Split(l, "|")
		if f[1] == "Customer" {
			f[2] = masked(f[2])
		}
		f[2] = number.ReplaceAllStringFunc(f[2], masked)
		f[3] = number.ReplaceAllStringFunc(f[3], masked)
		out[i] = strings.Join(f, "|")
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// contactSteps are the steps of payloads_test.go's contactProcessed for
// attempt and agent, in time order.
func contactSteps(attempt, agent string) []string {
	return []string{
		attempt + "|Dialer|Renewals@Sales|dialing +15551230001|00:00:02|2500",
		attempt + "|Customer|+15551230001|ringing, answered|00:00:06|6500",
		attempt + "|CPD|Renewals@Sales|call progress detection|00:00:01|1000",
		attempt + "|Queue|7001|queued until an agent was offered the call|00:00:03|3000",
		attempt + "|Agent|" + agent + "|agent ringing, answered|00:00:02|2000",
		attempt + "|Agent|" + agent + "|agent connected|00:01:00|60000",
		attempt + "|ACW|" + agent + "|after call work|00:00:20|20000",
	}
}

// seedCallbackSteps are the steps of seedCallbacks(svc): each event lasts
// until the next one, so 8 events make 7 steps; the last event (service
// exit) is not a step, its outcome is written into the step it ends.
func seedCallbackSteps(svc string) []string {
	return []string{
		svc + "|Queue|SIP_VQ_SIP_Switch|service create (callback_state QUEUED)|00:00:01|1000",
		svc + "|Callback|samples_dev|virtual ixn create (callback_state QUEUED)|00:00:00|0",
		svc + "|Customer|5115|dial init (callback_state QUEUED)|00:00:20|20000",
		svc + "|Customer|5115|dial done (call_result 0, callback_state QUEUED)|00:00:00|0",
		svc + "|Queue|VQ_GMS_REP_SIP_Switch|connect treatment start (callback_state QUEUED)|00:00:04|4000",
		svc + "|Queue|VQ_GMS_REP_SIP_Switch|customer queued (callback_state QUEUED)|00:00:01|1250",
		svc + "|Agent|5003|route to agent, ended by service exit (termination_type COMPLETED.AGENT_CONNECTED, callback_state COMPLETED)|00:04:33|273750",
	}
}

// postJourneys posts a ContactProcessed for attempt (agent 1001) and the
// seed callback sequence for svc: the first event alone, the second in a
// GMS {deviceId, message} wrapper, the rest as one array, the exit event
// before the others to show that arrival order does not matter.
func postJourneys(t *testing.T, url, attempt, svc string) {
	t.Helper()
	if status, body := post(t, url+pathCP, jsonOf(contactProcessed("MSG-"+attempt, attempt, "1001")), nil); status != 200 {
		t.Fatalf("contact processed: %d %v", status, body)
	}
	cbs := seedCallbacks(svc)
	bodies := []string{
		jsonOf(cbs[7]),
		jsonOf(cbs[0]),
		jsonOf(map[string]any{"deviceId": "desk-7", "message": cbs[1]}),
		jsonOf(cbs[2:7]),
	}
	for _, b := range bodies {
		if status, resp := post(t, url+pathCallback, b, nil); status != 200 {
			t.Fatalf("callback: %d %v", status, resp)
		}
	}
}

func TestReportCallJourneyFromContactProcessedAndCallbacks(t *testing.T) {
	ts := startServer(t, nil)
	const attempt = "0E1F2A3B-4C5D-4E6F-8A9B-0C1D2E3F4A5B"
	postJourneys(t, ts.URL, attempt, seedService)
	sup := dial(t, ts.WS)
	sup.login("2001")

	// By GSW_CALL_ATTEMPT_GUID, as sent and in another case (GUIDs compare
	// case-insensitively); the CallId of each step is the id as received.
	for _, id := range []string{attempt, strings.ToLower(attempt)} {
		got := journeyLines(t, sup.request("report.calljourney", map[string]any{"CallId": id}, ""))
		wantLines(t, "journey by "+id, got, maskedSteps(contactSteps(attempt, "1001")))
	}
	// By _service_id: the callback events in time order (ties in arrival
	// order), whatever order they were posted in.
	wantLines(t, "journey by _service_id",
		journeyLines(t, sup.request("report.calljourney", map[string]any{"CallId": seedService}, "")),
		maskedSteps(seedCallbackSteps(seedService)))

	// A team lead may read any journey, as a supervisor may.
	lead := dial(t, ts.WS)
	lead.login("3001")
	wantLines(t, "team lead", journeyLines(t, lead.request("report.calljourney", map[string]any{"CallId": seedService}, "")), maskedSteps(seedCallbackSteps(seedService)))

	// Unknown ids, and requests without a usable CallId.
	f := failure(t, sup.request("report.calljourney", map[string]any{"CallId": "NO-SUCH-CALL"}, ""), "report.notFound")
	if !strings.Contains(f["message"].(string), "NO-SUCH-CALL") {
		t.Errorf("notFound message %v", f)
	}
	failure(t, sup.request("report.calljourney", map[string]any{"CallId": ""}, ""), "request.invalid")
	failure(t, sup.request("report.calljourney", map[string]any{}, ""), "request.invalid")
	failure(t, sup.request("report.calljourney", map[string]any{"CallId": map[string]any{"x": 1}}, ""), "request.invalid")
	// Reports need a session.
	anon := dial(t, ts.WS)
	failure(t, anon.request("report.calljourney", map[string]any{"CallId": attempt}, ""), "session.required")
	failure(t, anon.request("report.campaigngroups", nil, ""), "session.required")
}

// Steps whose start or end timestamp is missing are dropped (SPEC §7.2);
// so are timestamps of 0 or "". A journey with no timestamps at all is
// still known: its report is empty, not report.notFound.
func TestReportCallJourneyMissingTimestamps(t *testing.T) {
	ts := startServer(t, nil)
	noAnswer := contactProcessed("MSG-NOANSWER", "ATT-NOANSWER", "")
	for _, f := range []string{"GSW_DIALING", "GSW_ANSWERED", "GSW_CPD_COMPLETED", "GSW_QUEUED", "GSW_AGENT_RINGING", "GSW_AGENT_ANSWERED", "GSW_AGENT_RELEASED", "GSW_ACW_COMPLETED"} {
		delete(noAnswer, f)
	}
	noAnswer["GSW_RELEASED"] = "1700000033.500"
	abandoned := contactProcessed("MSG-ABANDONED", "ATT-ABANDONED", "")
	abandoned["GSW_AGENT_RINGING"] = ""
	abandoned["GSW_AGENT_ANSWERED"] = "0"
	abandoned["GSW_ABANDONED"] = "1700000041.800"
	for _, f := range []string{"GSW_AGENT_RELEASED", "GSW_ACW_COMPLETED", "GSW_DIALING"} {
		delete(abandoned, f)
	}
	bare := contactProcessed("MSG-BARE", "ATT-BARE", "1001")
	for k := range bare {
		if k == "GSW_DIALING" || k == "GSW_RINGING" || k == "GSW_ANSWERED" || k == "GSW_CPD_COMPLETED" || k == "GSW_QUEUED" ||
			strings.HasPrefix(k, "GSW_AGENT_R") || k == "GSW_AGENT_ANSWERED" || k == "GSW_ACW_COMPLETED" {
			delete(bare, k)
		}
	}
	for _, cp := range []map[string]any{noAnswer, abandoned, bare} {
		if status, body := post(t, ts.URL+pathCP, jsonOf(cp), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
	}
	sup := dial(t, ts.WS)
	sup.login("2001")
	ask := func(id string) []string {
		return journeyLines(t, sup.request("report.calljourney", map[string]any{"CallId": id}, ""))
	}
	wantLines(t, "no answer", ask("ATT-NOANSWER"), maskedSteps([]string{
		"ATT-NOANSWER|Customer|+15551230001|ringing, released without answer|00:00:30|30000",
	}))
	wantLines(t, "abandoned", ask("ATT-ABANDONED"), maskedSteps([]string{
		"ATT-ABANDONED|Customer|+15551230001|ringing, answered|00:00:06|6500",
		"ATT-ABANDONED|CPD|Renewals@Sales|call progress detection|00:00:01|1000",
		"ATT-ABANDONED|Queue|7001|queued, abandoned|00:00:30|30800",
	}))
	wantLines(t, "no timestamps", ask("ATT-BARE"), nil)
}

// SPEC §3.6: supervisors and team leads read any journey; an agent only the
// calls it took part in (GSW_AGENT_ID, c_agent_id or c_agent_extension);
// another call's journey answers auth.forbidden, an unknown one
// report.notFound.
func TestReportCallJourneyAgentAuthorisation(t *testing.T) {
	ts := startServer(t, nil)
	postJourneys(t, ts.URL, "ATT-ANN", "SVC-CY")
	ann := dial(t, ts.WS) // GSW_AGENT_ID of the ContactProcessed
	ann.login("1001")
	bob := dial(t, ts.WS) // took part in neither call
	bob.login("1002")
	cy := dial(t, ts.WS) // c_agent_id of the route to agent
	cy.login("1003")

	wantLines(t, "ann's own call", journeyLines(t, ann.request("report.calljourney", map[string]any{"CallId": "att-ann"}, "")), contactSteps("ATT-ANN", "1001"))
	wantLines(t, "cy's callback", journeyLines(t, cy.request("report.calljourney", map[string]any{"CallId": "SVC-CY"}, "")), seedCallbackSteps("SVC-CY"))
	for _, tc := range []struct {
		c  *client
		id string
	}{{ann, "SVC-CY"}, {cy, "ATT-ANN"}, {bob, "ATT-ANN"}, {bob, "SVC-CY"}} {
		f := failure(t, tc.c.request("report.calljourney", map[string]any{"CallId": tc.id}, ""), "auth.forbidden")
		if strings.Contains(jsonOf(f), "Renewals") || strings.Contains(jsonOf(f), "samples_dev") {
			t.Fatalf("forbidden answer leaks the journey: %v", f)
		}
	}
	failure(t, bob.request("report.calljourney", map[string]any{"CallId": "ATT-NONE"}, ""), "report.notFound")
}

func TestCampaignGroupsLatestPerGroup(t *testing.T) {
	ts := startServer(t, nil)
	sup := dial(t, ts.WS)
	sup.login("2001")
	if d := success(t, sup.request("report.campaigngroups", nil, "")); jsonOf(d) != `{"CampaignGroups":[]}` {
		t.Fatalf("no states yet: %v", d)
	}
	const g1, g2 = "6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", "0A9B8C7D-2222-4D3E-8F10-112233445566"
	state := func(guid string, st int, at string) map[string]any {
		m := campaignGroupState(guid, st)
		m["GSW_DATE_TIME"] = at
		m["GSW_CAMPAIGN_GROUP_NAME"] = "CG " + guid[:4]
		return m
	}
	for _, m := range []map[string]any{
		state(g1, 1, "1700000100.000"), // loaded
		state(g2, 1, "1700000100.000"),
		state(g1, 2, "1700000200.000"), // started
		state(g2, 3, "1700000300.000"),
		state(g2, 2, "1700000250.000"),                  // older than the last one, arrives late: ignored
		state(strings.ToLower(g1), 4, "1700000400.125"), // the same group (GUIDs compare case-insensitively): stopped
	} {
		if status, body := post(t, ts.URL+pathCGS, jsonOf(m), nil); status != 200 {
			t.Fatalf("post: %d %v", status, body)
		}
	}
	check := func(c *client) {
		t.Helper()
		groups := success(t, c.request("report.campaigngroups", nil, ""))["CampaignGroups"].([]any)
		got := map[string]map[string]any{}
		for _, g := range groups {
			m := g.(map[string]any)
			got[strings.ToUpper(m["GSW_CAMPAIGN_GROUP_GUID"].(string))] = m
		}
		if len(groups) != 2 || len(got) != 2 {
			t.Fatalf("campaign groups %v", groups)
		}
		if s := got[g1]["GSW_CAMPAIGN_GROUP_STATE"]; s != json.Number("4") || got[g1]["GSW_DATE_TIME"] != "1700000400.125" {
			t.Errorf("group 1: %v", got[g1])
		}
		if s := got[g2]["GSW_CAMPAIGN_GROUP_STATE"]; s != json.Number("3") {
			t.Errorf("group 2: %v", got[g2])
		}
		// The state is the notification as received, every field kept.
		sameFields(t, state(g2, 3, "1700000300.000"), got[g2])
	}
	check(sup)
	lead := dial(t, ts.WS)
	lead.login("3001")
	check(lead)
	ann := dial(t, ts.WS)
	ann.login("1001")
	failure(t, ann.request("report.campaigngroups", nil, ""), "auth.forbidden")
	failure(t, ann.request("report.campaigngroups", map[string]any{"any": "thing"}, ""), "auth.forbidden")
}
