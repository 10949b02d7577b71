package journey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"iproc/reporting/notify"
	"iproc/reporting/store"
)

// Projector implements store.Projector: it updates journeys (and the latest
// CampaignGroupState per GSW_CAMPAIGN_GROUP_GUID) from events named with the
// notify topics; other event names are ignored. Bad data is skipped, never
// an error: only a failing KV write is returned.
type Projector struct{}

var (
	_ store.Projector = Projector{}
	_ store.Pruner    = Projector{}
)

// Prune implements store.Pruner: journeys not updated since before go, with
// their call id entries (see the package function Prune).
func (Projector) Prune(kv store.KV, before time.Time) (int, error) {
	return Prune(kv, before)
}

// Project applies one committed event.
func (Projector) Project(kv store.KV, ev store.Event) error {
	switch ev.Name {
	case notify.TopicCampaignGroupState, notify.TopicContactProcessed, notify.TopicCallback, notify.TopicCDR:
	default:
		return nil
	}
	m := fieldsOf(ev)
	if m == nil {
		return nil // not an object: nothing to project
	}
	var obs observation
	switch ev.Name {
	case notify.TopicCampaignGroupState:
		return projectCampaign(kv, m, ev.Data)
	case notify.TopicContactProcessed:
		obs = fromContactProcessed(m, ev)
	case notify.TopicCallback:
		obs = fromCallback(m, ev)
	case notify.TopicCDR:
		obs = fromCDR(m, ev)
	}
	return apply(kv, obs, ev)
}

// observation is what one notification says about a call.
type observation struct {
	ids    []string // the call ids, the primary first
	agents []string
	exts   []string
	key    string // replaces the items a previous copy of the notification left
	items  []item
}

// fields are an event's top-level scalars as text (store.Meta.Fields).
type fields = map[string]string

// fieldsOf returns the scalar fields of ev: those ingest decoded, else (an
// event appended without them) read from its data. Nil when the data is not
// an object.
func fieldsOf(ev store.Event) fields {
	if ev.Fields != nil {
		return ev.Fields
	}
	return store.ScalarFields(ev.Data)
}

// text returns field as text ("" when absent or null), trimmed.
func text(m fields, field string) string {
	s, ok := m[field]
	if !ok || s == "null" {
		return ""
	}
	return strings.TrimSpace(s)
}

// millis returns field as a timestamp in Unix ms; ok is false when absent,
// unparseable or not after the epoch (vendors send 0 for "never").
func millis(m fields, field string) (int64, bool) {
	s, ok := m[field]
	if !ok {
		return 0, false
	}
	t, ok := notify.Time(s)
	if !ok || t.UnixMilli() <= 0 {
		return 0, false
	}
	return t.UnixMilli(), true
}

// first returns the first of fields that is a timestamp.
func first(m fields, fields ...string) (int64, string, bool) {
	for _, f := range fields {
		if t, ok := millis(m, f); ok {
			return t, f, true
		}
	}
	return 0, "", false
}

// fromContactProcessed turns the FTC timestamps of a ContactProcessed into
// steps (SPEC §7.2); a step whose start or end is absent is dropped, and so
// is one that would end before it starts.
func fromContactProcessed(m fields, ev store.Event) observation {
	attempt := text(m, "GSW_CALL_ATTEMPT_GUID")
	agent := text(m, "GSW_AGENT_ID")
	group := text(m, "GSW_CAMPAIGN_GROUP_NAME")
	phone := text(m, "GSW_PHONE")
	// A ContactProcessed gives at most seven steps (one per add below).
	obs := observation{ids: []string{attempt}, key: "cp:" + strings.ToLower(attempt), items: make([]item, 0, 7)}
	if agent != "" {
		obs.agents = []string{agent}
	}
	add := func(start, end int64, device, deviceType, desc string) {
		if end < start {
			return
		}
		obs.items = append(obs.items, item{
			Key: obs.key, Kind: kindContact, Start: start, End: end, Seq: ev.Seq, Ord: len(obs.items),
			CallID: attempt, Device: device, DeviceType: deviceType, Description: desc,
		})
	}
	if dialing, ok := millis(m, "GSW_DIALING"); ok {
		if ringing, ok := millis(m, "GSW_RINGING"); ok {
			add(dialing, ringing, group, "Dialer", "dialing "+phone)
		}
	}
	if ringing, ok := millis(m, "GSW_RINGING"); ok {
		if end, f, ok := first(m, "GSW_ANSWERED", "GSW_RELEASED"); ok {
			desc := "ringing, answered"
			if f == "GSW_RELEASED" {
				desc = "ringing, released without answer"
			}
			add(ringing, end, phone, "Customer", desc)
		}
	}
	if answered, ok := millis(m, "GSW_ANSWERED"); ok {
		if end, f, ok := first(m, "GSW_CPD_COMPLETED", "GSW_DIVERTED"); ok {
			desc := "call progress detection"
			if f == "GSW_DIVERTED" {
				desc = "call progress detection, answering machine diverted"
			}
			add(answered, end, group, "CPD", desc)
		}
	}
	if queued, ok := millis(m, "GSW_QUEUED"); ok {
		if end, f, ok := first(m, "GSW_AGENT_RINGING", "GSW_AGENT_ANSWERED", "GSW_ABANDONED"); ok {
			desc := "queued until an agent was offered the call"
			if f == "GSW_ABANDONED" {
				desc = "queued, abandoned"
			}
			add(queued, end, text(m, "GSW_QUEUE_NAME"), "Queue", desc)
		}
	}
	if ringing, ok := millis(m, "GSW_AGENT_RINGING"); ok {
		if end, f, ok := first(m, "GSW_AGENT_ANSWERED", "GSW_AGENT_RELEASED"); ok {
			desc := "agent ringing, answered"
			if f == "GSW_AGENT_RELEASED" {
				desc = "agent ringing, not answered"
			}
			add(ringing, end, agent, "Agent", desc)
		}
	}
	if answered, ok := millis(m, "GSW_AGENT_ANSWERED"); ok {
		if released, ok := millis(m, "GSW_AGENT_RELEASED"); ok {
			add(answered, released, agent, "Agent", "agent connected")
		}
	}
	if released, ok := millis(m, "GSW_AGENT_RELEASED"); ok {
		if done, ok := millis(m, "GSW_ACW_COMPLETED"); ok {
			add(released, done, agent, "ACW", "after call work")
		}
	}
	return obs
}

// fromCallback records one GMS _cbe_* event; Report turns the events of a
// service into steps from one event to the next.
func fromCallback(m fields, ev store.Event) observation {
	svc := text(m, "_service_id")
	eventID := text(m, "event_id")
	ts, ok := millis(m, "timestamp")
	if svc == "" || !ok {
		return observation{}
	}
	tsText := m["timestamp"]
	obs := observation{ids: []string{svc}}
	agent, ext := text(m, "c_agent_id"), text(m, "c_agent_extension")
	if agent != "" {
		obs.agents = []string{agent}
	}
	if ext != "" {
		obs.exts = []string{ext}
	}
	obs.key = "cb:" + strings.ToLower(svc) + "|" + eventID + "|" + tsText
	device, deviceType := callbackDevice(m)
	obs.items = []item{{
		Key: obs.key, Kind: kindCallback, Start: ts, Seq: ev.Seq, CallID: svc,
		Device: device, DeviceType: deviceType, Description: callbackDescription(m, eventID),
	}}
	return obs
}

// callbackDevice picks what the call was at during a callback event: an
// agent, a queue, the customer, or the callback service itself.
func callbackDevice(m fields) (string, string) {
	if ext := text(m, "c_agent_extension"); ext != "" {
		return ext, "Agent"
	}
	if agent := text(m, "c_agent_id"); agent != "" {
		return agent, "Agent"
	}
	for _, f := range []string{"_vq_for_outbound_calls", "_urs_virtual_queue", "_v_queue"} {
		if q := text(m, f); q != "" {
			return q, "Queue"
		}
	}
	for _, f := range []string{"c_dialed_number", "_customer_number", "_phone_number"} {
		if n := text(m, f); n != "" {
			return n, "Customer"
		}
	}
	return text(m, "_service_name"), "Callback"
}

// callbackDescription names the event ("_cbe_on_dial_done" → "dial done")
// with the outcome fields it carries.
func callbackDescription(m fields, eventID string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(eventID, "_cbe_"), "on_")
	desc := strings.ReplaceAll(name, "_", " ")
	var extra []string
	for _, f := range []string{"c_call_result", "c_termination_type", "_callback_state"} {
		if v := text(m, f); v != "" {
			extra = append(extra, strings.TrimPrefix(strings.TrimLeft(f, "_"), "c_")+" "+v)
		}
	}
	if len(extra) > 0 {
		desc += " (" + strings.Join(extra, ", ") + ")"
	}
	return desc
}

// fromCDR links the dialer's call references and records the CDR as a step:
// seed 004 CDRs carry no timing, so the step sits at the CDR's commit time
// (CDRs are sent at the end of the call) with zero duration, unless the CDR
// also has "duration" (seconds) or "start_time"/"end_time" timestamps.
func fromCDR(m fields, ev store.Event) observation {
	internal, custom := text(m, "internal_call_ref"), text(m, "custom_call_ref")
	if internal == "" && custom == "" {
		return observation{}
	}
	obs := observation{ids: compactIDs(internal, custom)}
	ext := text(m, "ext")
	if ext != "" {
		obs.exts = []string{ext}
	}
	end := ev.Time.UnixMilli()
	if ev.Time.IsZero() {
		end = 0
	}
	if t, ok := millis(m, "end_time"); ok {
		end = t
	}
	start := end
	if secs, ok := notify.Int(m["duration"]); ok && m["duration"] != "" && secs > 0 && secs < 366*24*3600 {
		start = end - secs*1000
	}
	if t, ok := millis(m, "start_time"); ok && t <= end {
		start = t
	}
	obs.key = "cdr:" + strconv.FormatUint(ev.Seq, 10)
	if ev.Seq == 0 {
		obs.key = "cdr:" + strings.ToLower(obs.ids[0]) + "|" + text(m, "dial_number") + "|" + strconv.FormatInt(end, 10)
	}
	device, deviceType := ext, "Extension"
	if ext == "" {
		device, deviceType = text(m, "dial_number"), "Dialer"
	}
	obs.items = []item{{
		Key: obs.key, Kind: kindCDR, Start: start, End: end, Seq: ev.Seq, CallID: obs.ids[0],
		Device: device, DeviceType: deviceType, Description: cdrDescription(m, ext),
	}}
	return obs
}

// cdrDescription summarises a CDR: how it ended and where it went.
func cdrDescription(m fields, ext string) string {
	parts := []string{"CDR"}
	if d := text(m, "disposition"); d != "" {
		parts = append(parts, "disposition "+d)
	}
	if c := text(m, "SIP_termination_code"); c != "" {
		parts = append(parts, "SIP "+c)
	}
	if ext != "" {
		parts = append(parts, "agent extension "+ext)
	} else {
		parts = append(parts, "no extension (callee hung up in queue)")
	}
	if n := text(m, "client_number"); n != "" {
		parts = append(parts, "client "+n)
	}
	return strings.Join(parts, ", ")
}

// compactIDs drops empty ids and repeats.
func compactIDs(ids ...string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, id) }) {
			out = append(out, id)
		}
	}
	return out
}

// apply merges an observation into the journeys: every journey its ids
// already belong to becomes one, the observation's items replace those of
// an earlier copy of the same notification, and every id is indexed.
func apply(kv store.KV, obs observation, ev store.Event) error {
	var ids []string
	for _, id := range compactIDs(obs.ids...) {
		if len(id) <= maxIDLen {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var found []Journey
	indexed := make([]string, len(ids)) // each id's index entry before this event
	for i, id := range ids {
		j, ok, ix := resolveIndexed(kv, id)
		indexed[i] = ix
		if ok && !slices.ContainsFunc(found, func(f Journey) bool { return f.ID == j.ID }) {
			found = append(found, j)
		}
	}
	j := Journey{ID: ids[0]}
	if len(found) > 0 {
		j = found[0]
	}
	wasUpdated := j.Updated // its entry in the "updated" index (none when zero)
	for _, other := range found[min(1, len(found)):] {
		if err := absorb(kv, &j, other); err != nil {
			return err
		}
	}
	j.items = slices.DeleteFunc(j.items, func(it item) bool { return it.Key == obs.key })
	j.items = append(j.items, obs.items...)
	j.CallIDs = unionFold(j.CallIDs, ids, MaxIDs)
	j.Agents = union(j.Agents, obs.agents, MaxParticipants)
	j.Exts = union(j.Exts, obs.exts, MaxParticipants)
	if ev.Time.After(j.Updated) {
		j.Updated = ev.Time
	}
	if err := save(kv, j); err != nil {
		return err
	}
	if !wasUpdated.Equal(j.Updated) || wasUpdated.IsZero() {
		if !wasUpdated.IsZero() {
			if err := kv.Delete(bucketUpdated, updatedKey(wasUpdated, j.ID)); err != nil {
				return fmt.Errorf("index journey: %w", err)
			}
		}
		if err := kv.Put(bucketUpdated, updatedKey(j.Updated, j.ID), []byte{1}); err != nil {
			return fmt.Errorf("index journey: %w", err)
		}
	}
	for i, id := range ids {
		if indexed[i] == j.ID {
			continue // already points there (absorb only ever points ids at j)
		}
		if err := kv.Put(bucketCallID, strings.ToLower(id), []byte(j.ID)); err != nil {
			return fmt.Errorf("index call id: %w", err)
		}
	}
	return nil
}

// absorb merges other into j: its ids are re-pointed at j and its record is
// deleted. Its own id is re-pointed too, so index entries the merge did not
// reach (beyond MaxIDs) still lead to j through it.
func absorb(kv store.KV, j *Journey, other Journey) error {
	have := make(map[string]bool, len(j.items))
	for _, it := range j.items {
		have[it.Key] = true
	}
	for _, it := range other.items {
		if !have[it.Key] {
			j.items = append(j.items, it)
		}
	}
	j.CallIDs = unionFold(j.CallIDs, other.CallIDs, MaxIDs)
	j.Agents = union(j.Agents, other.Agents, MaxParticipants)
	j.Exts = union(j.Exts, other.Exts, MaxParticipants)
	if other.Updated.After(j.Updated) {
		j.Updated = other.Updated
	}
	if err := kv.Delete(bucketJourney, other.ID); err != nil {
		return fmt.Errorf("merge journey %q: %w", other.ID, err)
	}
	if err := kv.Delete(bucketUpdated, updatedKey(other.Updated, other.ID)); err != nil {
		return fmt.Errorf("merge journey %q: %w", other.ID, err)
	}
	for _, id := range append(slices.Clone(other.CallIDs), other.ID) {
		if err := index(kv, id, j.ID); err != nil {
			return err
		}
	}
	return nil
}

// union appends the values of add missing from list, up to limit.
func union(list, add []string, limit int) []string {
	for _, v := range add {
		if v != "" && len(list) < limit && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// unionFold is union for call ids, which compare case-insensitively.
func unionFold(list, add []string, limit int) []string {
	for _, v := range add {
		if v != "" && len(list) < limit && !slices.ContainsFunc(list, func(o string) bool { return strings.EqualFold(o, v) }) {
			list = append(list, v)
		}
	}
	return list
}

// index points the call id at the journey, writing only on change.
func index(kv store.KV, id, journeyID string) error {
	key := strings.ToLower(id)
	if bytes.Equal(kv.Get(bucketCallID, key), []byte(journeyID)) {
		return nil
	}
	if err := kv.Put(bucketCallID, key, []byte(journeyID)); err != nil {
		return fmt.Errorf("index call id: %w", err)
	}
	return nil
}

// save stores j, keeping its newest MaxSteps items.
func save(kv store.KV, j Journey) error {
	if len(j.items) > MaxSteps {
		sortItems(j.items)
		j.items = slices.Clone(j.items[len(j.items)-MaxSteps:])
	}
	r := j.record()
	buf := make([]byte, 0, 256+192*len(r.Items)) // a step takes about 150 bytes
	if err := kv.Put(bucketJourney, j.ID, appendRecord(buf, &r)); err != nil {
		return fmt.Errorf("store journey: %w", err)
	}
	return nil
}

// projectCampaign keeps the latest CampaignGroupState of a campaign group:
// the one with the latest GSW_DATE_TIME, the later commit on a tie or when
// a date is unreadable.
func projectCampaign(kv store.KV, m fields, data json.RawMessage) error {
	guid := text(m, "GSW_CAMPAIGN_GROUP_GUID")
	if guid == "" || len(guid) > maxIDLen {
		return nil
	}
	key := strings.ToLower(guid)
	if old := kv.Get(bucketCampaign, key); old != nil {
		if om := store.ScalarFields(old); om != nil {
			oldT, ok1 := notify.Time(om["GSW_DATE_TIME"])
			newT, ok2 := notify.Time(m["GSW_DATE_TIME"])
			if ok1 && ok2 && oldT.After(newT) {
				return nil
			}
		}
	}
	if err := kv.Put(bucketCampaign, key, slices.Clone(data)); err != nil {
		return fmt.Errorf("store campaign group state: %w", err)
	}
	return nil
}
