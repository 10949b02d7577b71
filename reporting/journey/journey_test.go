package journey

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"iproc/reporting/notify"
	"iproc/reporting/store"
)

const (
	attempt = "A7C1E2D3-0000-4A4A-8B8B-123456789ABC"
	service = "445-20e740d3-8458-43d6-834d-3713c3385bac"
)

// cpBody is a seed 001 ContactProcessed for an answered outbound call.
func cpBody(set map[string]any) []byte {
	m := map[string]any{
		"GSW_MESSAGE": "ContactProcessed", "GSW_MESSAGE_GUID": "0B5A8A3E-77D4-4C5B-A1E3-3F0C7B2E9D11",
		"GSW_TIMESTAMP": "1700000300.250", "GSW_CALL_ATTEMPT_GUID": attempt, "GSW_PHONE": "+15551234567",
		"GSW_PHONE_TYPE": 4, "GSW_CHAIN_ID": 17, "GSW_CHAIN_N": 0, "GSW_RECORD_HANDLE": 1234, "GSW_REASON": 23,
		"GSW_CALL_RESULT": 33, "GSW_CAMPAIGN_NAME": "Spring Sale", "GSW_CONTACT_MEDIA_TYPE": "voice",
		"GSW_CALLING_LIST": "CL_Spring", "GSW_CAMPAIGN_GROUP_NAME": "Spring Sale@Outbound Agents",
		"GSW_CAMPAIGN_GROUP_GUID": "7D1D4B6E-5C2B-4B8B-9E0C-2A3F4E5D6C7B", "GSW_GROUP_NAME": "Outbound Agents",
		"GSW_QUEUE_NAME": "VTD_7000", "GSW_DIAL_MODE": 6, "GSW_AGENT_ID": "1001", "GSW_RECORD_TYPE": 2,
		"GSW_RECORD_STATUS": 3, "GSW_START_PROCESSING": "1700000000.000",
		"GSW_DIALING": "1700000000.200", "GSW_RINGING": "1700000002.200", "GSW_ANSWERED": "1700000010.200",
		"GSW_CPD_COMPLETED": "1700000011.700", "GSW_QUEUED": "1700000011.800",
		"GSW_AGENT_RINGING": "1700000013.800", "GSW_AGENT_ANSWERED": "1700000016.000",
		"GSW_AGENT_RELEASED": "1700000196.000", "GSW_ACW_COMPLETED": "1700000226.000",
		"GSW_COMPLETE_PROCESSING": "1700000300.000",
	}
	return body(m, set)
}

// cbBody is a seed 003 callback event of the test service.
func cbBody(eventID, ts string, set map[string]any) []byte {
	return body(map[string]any{"event_id": eventID, "timestamp": ts, "_service_id": service,
		"_service_name": "samples_dev", "name1": "value1"}, set)
}

func cdrBody(set map[string]any) []byte {
	return body(map[string]any{"ext": "5001", "internal_call_ref": "d-000123", "custom_call_ref": "crm-778",
		"disposition": "ANSWERED", "SIP_termination_code": 200, "campaign_ref": "spring",
		"client_number": "+15551234567", "dial_number": "+15557654321"}, set)
}

func cgsBody(guid, date string, state int) []byte {
	return body(map[string]any{"GSW_USER_EVENT": "CampaignGroupState", "GSW_DATE_TIME": date,
		"GSW_TENANT_NAME": "Environment", "GSW_TENANT_CCID": "101", "GSW_CAMPAIGN_GROUP_NAME": "G " + guid,
		"GSW_CAMPAIGN_GROUP_GUID": guid, "GSW_GROUP_NAME": "Agents", "GSW_QUEUE_NAME": "VTD",
		"GSW_CAMPAIGN_GROUP_STATE": state, "GSW_CAMPAIGN_GROUP_ACTION": 2010, "GSW_CAMPAIGN_GROUP_ACTOR": 1}, nil)
}

func body(m, set map[string]any) []byte {
	maps.Copy(m, set)
	for k, v := range set {
		if v == nil {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// feed validates bodies with the notify decoders (as ingest does) and
// projects them as consecutive events.
type feed struct {
	t   *testing.T
	kv  *memKV
	seq uint64
}

func newFeed(t *testing.T) *feed { return &feed{t: t, kv: newKV()} }

func (f *feed) event(topic string, data []byte) store.Event {
	f.seq++
	return store.Event{Seq: f.seq, Time: time.Unix(1700001000+int64(f.seq), 0).UTC(), Name: topic, Data: data}
}

func (f *feed) project(ev store.Event) {
	f.t.Helper()
	if err := (Projector{}).Project(f.kv, ev); err != nil {
		f.t.Fatalf("Project(%s): %v", ev.Name, err)
	}
}

func (f *feed) cp(b []byte) {
	f.t.Helper()
	n, err := notify.DecodeContactProcessed(b, "")
	if err != nil {
		f.t.Fatal(err)
	}
	f.project(f.event(n.Topic, n.Data))
}

func (f *feed) cb(b []byte) {
	f.t.Helper()
	ns, _, err := notify.DecodeCallback(b)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range ns {
		f.project(f.event(n.Topic, n.Data))
	}
}

func (f *feed) cdr(b []byte) {
	f.t.Helper()
	n, err := notify.DecodeCDR(b)
	if err != nil {
		f.t.Fatal(err)
	}
	f.project(f.event(n.Topic, n.Data))
}

func (f *feed) lookup(id string) Journey {
	f.t.Helper()
	j, ok := Lookup(f.kv, id)
	if !ok {
		f.t.Fatalf("no journey for %q", id)
	}
	return j
}

// line renders a step compactly for comparisons.
func line(s Step) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d", s.CallId, s.DeviceType, s.Device, s.Description, s.Duration, s.DurationMs)
}

func wantSteps(t *testing.T, got []Step, want ...string) {
	t.Helper()
	lines := make([]string, len(got))
	for i, s := range got {
		lines[i] = line(s)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestContactProcessedSteps(t *testing.T) {
	f := newFeed(t)
	f.cp(cpBody(nil))
	j := f.lookup(attempt)
	wantSteps(t, j.Report(),
		attempt+"|Dialer|Spring Sale@Outbound Agents|dialing +15551234567|00:00:02|2000",
		attempt+"|Customer|+15551234567|ringing, answered|00:00:08|8000",
		attempt+"|CPD|Spring Sale@Outbound Agents|call progress detection|00:00:01|1500",
		attempt+"|Queue|VTD_7000|queued until an agent was offered the call|00:00:02|2000",
		attempt+"|Agent|1001|agent ringing, answered|00:00:02|2200",
		attempt+"|Agent|1001|agent connected|00:03:00|180000",
		attempt+"|ACW|1001|after call work|00:00:30|30000",
	)
	if j.ID != attempt || !j.Involves("1001", "") || j.Involves("1002", "") || j.Involves("", "") {
		t.Errorf("journey %+v", j)
	}
	// The report serialises with the seed 002 field names.
	b, _ := json.Marshal(map[string]any{"CallJourney": j.Report()[:1]})
	if want := `{"CallJourney":[{"CallId":"` + attempt + `","Device":"Spring Sale@Outbound Agents","DeviceType":"Dialer","Description":"dialing +15551234567","Duration":"00:00:02","DurationMs":2000}]}`; string(b) != want {
		t.Errorf("json %s", b)
	}
}

func TestContactProcessedMissingTimestamps(t *testing.T) {
	f := newFeed(t)
	// No answer: the customer's phone rang and the call was released; no
	// dialing time, no agent.
	f.cp(cpBody(map[string]any{"GSW_DIALING": nil, "GSW_ANSWERED": nil, "GSW_CPD_COMPLETED": nil,
		"GSW_QUEUED": nil, "GSW_AGENT_RINGING": nil, "GSW_AGENT_ANSWERED": nil, "GSW_AGENT_RELEASED": nil,
		"GSW_ACW_COMPLETED": nil, "GSW_AGENT_ID": nil, "GSW_RELEASED": "1700000032.200"}))
	j := f.lookup(attempt)
	wantSteps(t, j.Report(), attempt+"|Customer|+15551234567|ringing, released without answer|00:00:30|30000")
	if len(j.Agents) != 0 {
		t.Errorf("agents %v", j.Agents)
	}

	// Abandoned in the queue, unassigned ("" and "0") timestamps, and an end
	// before its start (dropped).
	g := newFeed(t)
	g.cp(cpBody(map[string]any{"GSW_AGENT_RINGING": "", "GSW_AGENT_ANSWERED": "0", "GSW_AGENT_RELEASED": nil,
		"GSW_ACW_COMPLETED": nil, "GSW_AGENT_ID": nil, "GSW_ABANDONED": "1700000041.800",
		"GSW_CPD_COMPLETED": "1700000009.000"}))
	wantSteps(t, g.lookup(attempt).Report(),
		attempt+"|Dialer|Spring Sale@Outbound Agents|dialing +15551234567|00:00:02|2000",
		attempt+"|Customer|+15551234567|ringing, answered|00:00:08|8000",
		attempt+"|Queue|VTD_7000|queued, abandoned|00:00:30|30000",
	)

	// No FTC timestamps at all: the journey exists (the id is known) but
	// has no steps.
	h := newFeed(t)
	h.cp(cpBody(map[string]any{"GSW_DIALING": nil, "GSW_RINGING": nil, "GSW_ANSWERED": nil,
		"GSW_CPD_COMPLETED": nil, "GSW_QUEUED": nil, "GSW_AGENT_RINGING": nil, "GSW_AGENT_ANSWERED": nil,
		"GSW_AGENT_RELEASED": nil, "GSW_ACW_COMPLETED": nil}))
	if steps := h.lookup(attempt).Report(); len(steps) != 0 {
		t.Errorf("steps %v", steps)
	}
}

func TestCallbackSequence(t *testing.T) {
	f := newFeed(t)
	// Arrival order differs from time order; one arrives as a wrapper and
	// two in an array.
	f.cb(cbBody("_cbe_on_dial_done", "1467576012", map[string]any{"c_dialed_number": "5115", "c_call_result": 0}))
	f.cb(cbBody("_cbe_on_service_create", "1467575991", map[string]any{"_urs_virtual_queue": "SIP_VQ_SIP_Switch", "_callback_state": "QUEUED"}))
	f.cb([]byte(`{"deviceId":"desk-1","message":` + string(cbBody("_cbe_on_dial_init", "1467575992", map[string]any{"c_dialed_number": "5115"})) + `}`))
	f.cb([]byte("[" + string(cbBody("_cbe_on_route_to_agent", "1467576016", map[string]any{"c_agent_id": "1001", "c_agent_extension": "7001"})) + "," +
		string(cbBody("_cbe_on_service_exit", "1467576291", map[string]any{"c_termination_type": "COMPLETED.AGENT_CONNECTED"})) + "]"))
	j := f.lookup(service)
	wantSteps(t, j.Report(),
		service+"|Queue|SIP_VQ_SIP_Switch|service create (callback_state QUEUED)|00:00:01|1000",
		service+"|Customer|5115|dial init|00:00:20|20000",
		service+"|Customer|5115|dial done (call_result 0)|00:00:04|4000",
		// The last event ends the step before it and is not a step: N
		// events make N-1 steps, and its outcome is in that step.
		service+"|Agent|7001|route to agent, ended by service exit (termination_type COMPLETED.AGENT_CONNECTED)|00:04:35|275000",
	)
	if !j.Involves("1001", "") || !j.Involves("", "7001") || j.Involves("7001", "1001") {
		t.Errorf("participants %v %v", j.Agents, j.Exts)
	}
	// The same event projected again (a retried post) adds nothing.
	f.cb(cbBody("_cbe_on_dial_done", "1467576012", map[string]any{"c_dialed_number": "5115", "c_call_result": 0}))
	if n := len(f.lookup(service).Report()); n != 4 {
		t.Errorf("%d steps after a repeat", n)
	}
}

func TestCDRLinking(t *testing.T) {
	f := newFeed(t)
	f.cp(cpBody(nil))
	// The integrator set the dialer's custom_call_ref to the OCS attempt.
	f.cdr(cdrBody(map[string]any{"custom_call_ref": strings.ToLower(attempt)}))
	for _, id := range []string{attempt, strings.ToLower(attempt), "d-000123", "D-000123", " d-000123 "} {
		j := f.lookup(id)
		if j.ID != attempt {
			t.Errorf("Lookup(%q) = journey %q", id, j.ID)
		}
	}
	j := f.lookup("d-000123")
	steps := j.Report()
	if len(steps) != 8 {
		t.Fatalf("%d steps", len(steps))
	}
	wantSteps(t, steps[7:], "d-000123|Extension|5001|CDR, disposition ANSWERED, SIP 200, agent extension 5001, client +15551234567|00:00:00|0")
	if !j.Involves("", "5001") || !j.Involves("1001", "") {
		t.Errorf("participants %v %v", j.Agents, j.Exts)
	}
	if got := strings.Join(j.CallIDs, ","); got != attempt+",d-000123" {
		t.Errorf("ids %s", got)
	}

	// A CDR of its own: ids linked, ext null, a duration carried.
	g := newFeed(t)
	g.cdr(cdrBody(map[string]any{"ext": json.RawMessage("null"), "internal_call_ref": "d-9", "custom_call_ref": "crm-9",
		"disposition": "ABANDONED", "duration": 42}))
	k := g.lookup("crm-9")
	if g.lookup("d-9").ID != k.ID || k.Involves("", "5001") {
		t.Errorf("journey %+v", k)
	}
	wantSteps(t, k.Report(), "d-9|Dialer|+15557654321|CDR, disposition ABANDONED, SIP 200, no extension (callee hung up in queue), client +15551234567|00:00:42|42000")
}

func TestMerge(t *testing.T) {
	f := newFeed(t)
	f.cp(cpBody(nil))
	f.cb(cbBody("_cbe_on_service_create", "1700000000", nil))
	f.cb(cbBody("_cbe_on_dial_init", "1700000001", nil))
	if f.kv.count(bucketJourney) != 2 {
		t.Fatalf("%d journeys before the merge", f.kv.count(bucketJourney))
	}
	// One CDR names both: the callback's service and the OCS attempt.
	f.cdr(cdrBody(map[string]any{"internal_call_ref": service, "custom_call_ref": attempt}))
	if n := f.kv.count(bucketJourney); n != 1 {
		t.Fatalf("%d journeys after the merge", n)
	}
	j := f.lookup(attempt)
	for _, id := range []string{service, attempt} {
		if f.lookup(id).ID != j.ID {
			t.Errorf("Lookup(%q) = %q, want %q", id, f.lookup(id).ID, j.ID)
		}
	}
	// 7 contact steps, 1 step from the 2 callback events, the CDR.
	if n := len(j.Report()); n != 7+1+1 {
		t.Errorf("%d steps after the merge", n)
	}
	// Later events of either id land in the merged journey.
	f.cb(cbBody("_cbe_on_service_exit", "1700000400", nil))
	if n := len(f.lookup(service).Report()); n != 10 || f.kv.count(bucketJourney) != 1 {
		t.Errorf("%d steps, %d journeys", n, f.kv.count(bucketJourney))
	}
	// A journey merged twice is still found through the forwarding of its
	// first id.
	f.cp(cpBody(map[string]any{"GSW_CALL_ATTEMPT_GUID": "second-attempt", "GSW_MESSAGE_GUID": "m2"}))
	f.cdr(cdrBody(map[string]any{"internal_call_ref": "second-attempt", "custom_call_ref": service}))
	if f.kv.count(bucketJourney) != 1 || f.lookup("second-attempt").ID != f.lookup(attempt).ID {
		t.Errorf("%d journeys", f.kv.count(bucketJourney))
	}
}

func TestRepeatedNotification(t *testing.T) {
	f := newFeed(t)
	ev := f.event(notify.TopicContactProcessed, cpBody(nil))
	f.project(ev)
	f.project(ev) // the same event again
	// OCS re-processes the attempt: the newer notification replaces the
	// steps of the first.
	f.cp(cpBody(map[string]any{"GSW_MESSAGE_GUID": "other", "GSW_ACW_COMPLETED": "1700000256.000"}))
	steps := f.lookup(attempt).Report()
	if len(steps) != 7 || steps[6].DurationMs != 60000 {
		t.Errorf("steps %v", steps)
	}
}

func TestStepCap(t *testing.T) {
	f := newFeed(t)
	for i := range MaxSteps + 50 {
		f.cb(cbBody("_cbe_on_callback_status_updated", fmt.Sprint(1700000000+i), nil))
	}
	steps := f.lookup(service).Report()
	if len(steps) != MaxSteps-1 { // MaxSteps events kept, N-1 steps
		t.Fatalf("%d steps", len(steps))
	}
	// The oldest went: the first kept event is number 50.
	if steps[0].DurationMs != 1000 || steps[MaxSteps-2].DurationMs != 1000 {
		t.Errorf("first %v last %v", steps[0], steps[MaxSteps-1])
	}
	b := f.kv.Get(bucketJourney, service)
	var r record
	if err := json.Unmarshal(b, &r); err != nil || r.Items[0].Start != (1700000000+50)*1000 {
		t.Errorf("first stored item %+v, %v", r.Items[0], err)
	}
}

func TestCampaignGroups(t *testing.T) {
	f := newFeed(t)
	f.project(f.event(notify.TopicCampaignGroupState, cgsBody("BBB", "1700000100.000", 1)))
	f.project(f.event(notify.TopicCampaignGroupState, cgsBody("aaa", "1700000100.000", 1)))
	f.project(f.event(notify.TopicCampaignGroupState, cgsBody("BBB", "1700000200.000", 2))) // newer: wins
	f.project(f.event(notify.TopicCampaignGroupState, cgsBody("bbb", "1700000150.000", 9))) // older (same GUID, other case): ignored
	f.project(f.event(notify.TopicCampaignGroupState, cgsBody("aaa", "1700000100.000", 3))) // same time: the later commit wins
	got, err := CampaignGroups(f.kv)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, raw := range got {
		var m struct {
			GUID  string      `json:"GSW_CAMPAIGN_GROUP_GUID"`
			State json.Number `json:"GSW_CAMPAIGN_GROUP_STATE"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		states = append(states, m.GUID+"="+m.State.String())
	}
	if s := strings.Join(states, ","); s != "aaa=3,BBB=2" {
		t.Errorf("campaign groups %s", s)
	}
	empty, err := CampaignGroups(newKV())
	if err != nil || len(empty) != 0 {
		t.Errorf("empty store: %v, %v", empty, err)
	}
}

func TestSkipsBadData(t *testing.T) {
	f := newFeed(t)
	for _, ev := range []store.Event{
		{Seq: 1, Name: "agent.state", Data: json.RawMessage(`{"GSW_CALL_ATTEMPT_GUID":"x"}`)},
		{Seq: 2, Name: notify.TopicContactProcessed, Data: json.RawMessage(`not json`)},
		{Seq: 3, Name: notify.TopicContactProcessed, Data: json.RawMessage(`[1]`)},
		{Seq: 4, Name: notify.TopicContactProcessed, Data: json.RawMessage(`{"GSW_AGENT_ID":"1001"}`)},
		{Seq: 5, Name: notify.TopicCallback, Data: json.RawMessage(`{"_service_id":"s","timestamp":"soon"}`)},
		{Seq: 6, Name: notify.TopicCDR, Data: json.RawMessage(`{"ext":"5001"}`)},
		{Seq: 7, Name: notify.TopicCampaignGroupState, Data: json.RawMessage(`{"GSW_CAMPAIGN_GROUP_GUID":{"x":1}}`)},
		{Seq: 8, Name: notify.TopicContactProcessed, Data: json.RawMessage(`{"GSW_CALL_ATTEMPT_GUID":"` + strings.Repeat("x", 300) + `"}`)},
		{Seq: 9, Name: notify.TopicContactProcessed, Data: nil},
	} {
		f.project(ev)
	}
	if f.kv.puts != 0 {
		t.Errorf("%d writes for bad data", f.kv.puts)
	}
	if _, ok := Lookup(f.kv, "x"); ok {
		t.Error("found a journey")
	}
	if _, ok := Lookup(f.kv, ""); ok {
		t.Error("found a journey for no id")
	}
}

func TestWriteFailure(t *testing.T) {
	f := newFeed(t)
	f.kv.failPut = true
	if err := (Projector{}).Project(f.kv, f.event(notify.TopicContactProcessed, cpBody(nil))); err == nil {
		t.Error("a failed write was not reported")
	}
}

func TestPrune(t *testing.T) {
	f := newFeed(t)
	f.cp(cpBody(nil))                                         // seq 1
	f.cb(cbBody("_cbe_on_service_create", "1700000000", nil)) // seq 2
	cut := time.Unix(1700001000+2, 0)                         // the CP's journey is older
	n, err := Prune(f.kv, cut)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if _, ok := Lookup(f.kv, attempt); ok {
		t.Error("pruned journey still found")
	}
	f.lookup(service)
	if f.kv.count(bucketCallID) != 1 {
		t.Errorf("%d call ids left", f.kv.count(bucketCallID))
	}
}

// TestPruneByIndex: once indexed, Prune visits the "updated" index from the
// oldest; a journey updated after an old entry was written is kept, and a
// merged journey's entry goes with it.
func TestPruneByIndex(t *testing.T) {
	f := newFeed(t)
	if n, err := Prune(f.kv, time.Unix(0, 0)); err != nil || n != 0 { // indexes (nothing yet)
		t.Fatalf("first Prune = %d, %v", n, err)
	}
	f.cp(cpBody(nil))                                         // seq 1, updated 1700001001
	f.cb(cbBody("_cbe_on_service_create", "1700000000", nil)) // seq 2, updated 1700001002
	f.cb(cbBody("_cbe_on_dial_init", "1700000001", nil))      // seq 3: the service's journey updated again
	if got := f.kv.count(bucketUpdated); got != 2 {
		t.Fatalf("%d index entries for 2 journeys", got)
	}
	n, err := Prune(f.kv, time.Unix(1700001003, 0)) // after seq 2's update, before seq 3's
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if _, ok := Lookup(f.kv, attempt); ok {
		t.Error("expired journey still found")
	}
	f.lookup(service)
	if n, err := Prune(f.kv, time.Unix(1700001004, 0)); err != nil || n != 1 || f.kv.count(bucketJourney) != 0 || f.kv.count(bucketUpdated) != 0 || f.kv.count(bucketCallID) != 0 {
		t.Fatalf("second Prune = %d, %v; %d journeys, %d index entries, %d call ids left",
			n, err, f.kv.count(bucketJourney), f.kv.count(bucketUpdated), f.kv.count(bucketCallID))
	}
}

func TestFormatDuration(t *testing.T) {
	for ms, want := range map[int64]string{0: "00:00:00", 999: "00:00:00", 1000: "00:00:01", 61_500: "00:01:01",
		3_599_999: "00:59:59", 3_600_000: "01:00:00", 90_061_000: "25:01:01", 400 * 3_600_000: "400:00:00", -5: "00:00:00"} {
		if got := FormatDuration(ms); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", ms, got, want)
		}
	}
}
