// Package journey projects committed notifications into call journeys and
// the latest campaign group states, and reads them back for the
// report.calljourney and report.campaigngroups commands.
//
// Projector runs inside the store's commit, in seq order, so the state it
// keeps in the store's KV is always exactly as up to date as the event log
// and survives restarts with it; Lookup and CampaignGroups read it in a
// view. Nothing here holds state in memory or starts goroutines.
//
// A journey is keyed by every id seen for the call (SPEC §7.2):
// GSW_CALL_ATTEMPT_GUID (ContactProcessed), _service_id (callback),
// internal_call_ref and custom_call_ref (CDR). Buckets: "journey" (journey id
// → JSON), "callid" (lower-cased call id → journey id) and "campaign"
// (lower-cased GSW_CAMPAIGN_GROUP_GUID → the latest CampaignGroupState data).
package journey

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"iproc/reporting/store"
)

// KV buckets.
const (
	bucketJourney  = "journey"
	bucketCallID   = "callid"
	bucketCampaign = "campaign"
	// bucketUpdated indexes journeys by update time (updatedKey → 1),
	// so that Prune visits only what expires.
	bucketUpdated = "updated"
	// bucketMeta keyIndexed is set once every journey is in bucketUpdated.
	bucketMeta = "journeymeta"
	keyIndexed = "updated-index"
)

// Bounds of a stored journey.
const (
	// MaxSteps is how many steps (and callback events) a journey keeps; the
	// oldest go first.
	MaxSteps = 200
	// MaxIDs is how many call ids a journey lists (every id stays in the
	// call id index, so Lookup finds the journey by any of them).
	MaxIDs = 200
	// MaxParticipants bounds the agent ids and the extensions kept.
	MaxParticipants = 64
	// maxIDLen: longer ids are not indexed.
	maxIDLen = 256
	// maxHops bounds how far a merged journey's forwarding is followed.
	maxHops = 8
)

// Journey is a stored call journey.
type Journey struct {
	// ID is the journey's key: the first call id it was seen under.
	ID string
	// CallIDs are the call ids seen for the call, in the order first seen.
	CallIDs []string
	// Agents are the agent ids that took part (GSW_AGENT_ID, c_agent_id).
	Agents []string
	// Exts are the extensions that took part (CDR ext, c_agent_extension).
	Exts []string
	// Updated is the commit time of the last event that changed it.
	Updated time.Time

	items []item
}

// Step is one line of the call journey report (seed 002 report.calljourney).
// The field names are the report's, CallId included.
type Step struct {
	CallId      string `json:"CallId"`
	Device      string `json:"Device"`
	DeviceType  string `json:"DeviceType"`
	Description string `json:"Description"`
	// Duration is HH:MM:SS (hours may exceed 24).
	Duration string `json:"Duration"`
	// DurationMs is the exact duration in milliseconds.
	DurationMs int64 `json:"DurationMs"`
}

// item is a stored step, or a callback event whose step ends at the next
// event of the same service.
type item struct {
	// Key groups the items of one source notification: a notification seen
	// again replaces its items instead of adding more.
	Key         string `json:"k"`
	Kind        string `json:"t"` // kindContact, kindCallback or kindCDR
	Start       int64  `json:"s"` // Unix ms
	End         int64  `json:"e,omitempty"`
	Seq         uint64 `json:"q,omitempty"`
	Ord         int    `json:"o,omitempty"`
	CallID      string `json:"c"`
	Device      string `json:"d,omitempty"`
	DeviceType  string `json:"dt,omitempty"`
	Description string `json:"x,omitempty"`
}

const (
	kindContact  = "cp"
	kindCallback = "cb"
	kindCDR      = "cdr"
)

// record is a Journey as stored.
type record struct {
	ID      string    `json:"id"`
	IDs     []string  `json:"ids"`
	Agents  []string  `json:"agents,omitempty"`
	Exts    []string  `json:"exts,omitempty"`
	Updated time.Time `json:"updated"`
	Items   []item    `json:"items"`
}

func (j Journey) record() record {
	return record{ID: j.ID, IDs: j.CallIDs, Agents: j.Agents, Exts: j.Exts, Updated: j.Updated, Items: j.items}
}

func fromRecord(r record) Journey {
	return Journey{ID: r.ID, CallIDs: r.IDs, Agents: r.Agents, Exts: r.Exts, Updated: r.Updated, items: r.Items}
}

// Lookup returns the journey of the call known by callID, any id seen for
// it (compared case-insensitively).
func Lookup(kv store.KV, callID string) (Journey, bool) {
	id := strings.TrimSpace(callID)
	if id == "" || len(id) > maxIDLen {
		return Journey{}, false
	}
	return resolve(kv, id)
}

// resolve finds the journey indexed under id. A journey merged into another
// leaves its id in the index pointing at the survivor, so stale entries are
// followed a few hops.
func resolve(kv store.KV, id string) (Journey, bool) {
	j, ok, _ := resolveIndexed(kv, id)
	return j, ok
}

// resolveIndexed is resolve that also returns id's own index entry (the
// journey id it points at, "" when none), so that apply need not read it
// again. A key already read is not read again (a new id's lookup is two
// reads: its index entry and the journey named like it).
func resolveIndexed(kv store.KV, id string) (_ Journey, ok bool, indexed string) {
	jid := id
	lastKey := strings.ToLower(id)
	var lastVal []byte
	if b := kv.Get(bucketCallID, lastKey); b != nil {
		jid = string(b)
		indexed = jid
		lastVal = b
	}
	for range maxHops {
		if b := kv.Get(bucketJourney, jid); b != nil {
			var r record
			if err := json.Unmarshal(b, &r); err != nil {
				return Journey{}, false, indexed
			}
			return fromRecord(r), true, indexed
		}
		key := strings.ToLower(jid)
		next := lastVal
		if key != lastKey {
			next = kv.Get(bucketCallID, key)
			lastKey, lastVal = key, next
		}
		if next == nil || string(next) == jid {
			return Journey{}, false, indexed
		}
		jid = string(next)
	}
	return Journey{}, false, indexed
}

// Involves reports whether the agent (by id) or its extension took part in
// the call, for SPEC §3.6: agents may see only the journeys of calls they
// took part in. Empty arguments match nothing.
func (j Journey) Involves(agentID, ext string) bool {
	return (agentID != "" && slices.Contains(j.Agents, agentID)) ||
		(ext != "" && slices.Contains(j.Exts, ext))
}

// Report returns the journey's steps in time order (ties in commit order).
// Callback events become steps from one event of a service to the next: N
// events make N-1 steps, and the last event, which ends the last step, is
// not a step of its own: its description (the event and its outcome, such
// as termination_type and callback_state) is added to that step's, as
// "…, ended by service exit (termination_type …)".
func (j Journey) Report() []Step {
	items := slices.Clone(j.items)
	sortItems(items)
	next := make(map[string]int) // callback service → index of its following event
	drop := make([]bool, len(items))
	for i := len(items) - 1; i >= 0; i-- {
		it := &items[i]
		if it.Kind != kindCallback {
			continue
		}
		if n, ok := next[it.CallID]; ok {
			it.End = items[n].Start
			if drop[n] { // n is the service's last event: it ends this step
				it.Description += ", ended by " + items[n].Description
			}
		} else {
			drop[i] = true
		}
		next[it.CallID] = i
	}
	steps := make([]Step, 0, len(items))
	for i, it := range items {
		if drop[i] {
			continue
		}
		ms := max(0, it.End-it.Start)
		steps = append(steps, Step{
			CallId:      it.CallID,
			Device:      it.Device,
			DeviceType:  it.DeviceType,
			Description: it.Description,
			Duration:    FormatDuration(ms),
			DurationMs:  ms,
		})
	}
	return steps
}

// sortItems orders items by start time, then commit order, then their order
// within the notification.
func sortItems(items []item) {
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Ord, b.Ord))
	})
}

// FormatDuration renders milliseconds as HH:MM:SS, truncating to the second;
// hours may exceed 24 (and 99).
func FormatDuration(ms int64) string {
	s := max(0, ms) / 1000
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// CampaignGroups returns the latest CampaignGroupState data of every
// campaign group, sorted by GSW_CAMPAIGN_GROUP_GUID (case-insensitively).
func CampaignGroups(kv store.KV) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := kv.ForEach(bucketCampaign, func(_ string, v []byte) error {
		out = append(out, json.RawMessage(slices.Clone(v)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read campaign groups: %w", err)
	}
	return out, nil
}

// Prune deletes the journeys not updated since before, with their call id
// entries, and returns how many went. It walks the "updated" index from the
// oldest, so its cost is that of what expires; the first Prune of a store
// whose journeys predate the index walks them all once and indexes the
// survivors. Projector.Prune (store.Pruner) calls it with the --history
// cutoff.
func Prune(kv store.KV, before time.Time) (int, error) {
	if kv.Get(bucketMeta, keyIndexed) == nil {
		return pruneAll(kv, before)
	}
	stop := errors.New("stop")
	cut := updatedKey(before, "")
	var expired []string
	err := kv.ForEach(bucketUpdated, func(k string, _ []byte) error {
		if k >= cut {
			return stop
		}
		expired = append(expired, k)
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return 0, fmt.Errorf("prune journeys: %w", err)
	}
	n := 0
	for _, k := range expired {
		if err := kv.Delete(bucketUpdated, k); err != nil {
			return n, fmt.Errorf("prune journeys: %w", err)
		}
		_, id, _ := strings.Cut(k, "\x00")
		b := kv.Get(bucketJourney, id)
		var r record
		if b == nil || json.Unmarshal(b, &r) != nil || !r.Updated.Before(before) {
			continue // merged away, or updated since (a newer entry indexes it)
		}
		if err := deleteJourney(kv, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// OrderedBuckets implements store.OrderedBuckets: Prune walks the
// "updated" index from its oldest key and stops at the cutoff.
func (Projector) OrderedBuckets() []string { return []string{bucketUpdated} }

// pruneAll is Prune for journeys stored before the "updated" index: one
// walk over every journey, deleting the expired and indexing the others.
func pruneAll(kv store.KV, before time.Time) (int, error) {
	var old, kept []record
	err := kv.ForEach(bucketJourney, func(_ string, v []byte) error {
		var r record
		if json.Unmarshal(v, &r) != nil {
			return nil
		}
		if r.Updated.Before(before) {
			old = append(old, record{ID: r.ID, IDs: r.IDs})
		} else {
			kept = append(kept, record{ID: r.ID, Updated: r.Updated})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune journeys: %w", err)
	}
	for _, r := range old {
		if err := deleteJourney(kv, r); err != nil {
			return 0, err
		}
	}
	for _, r := range kept {
		if err := kv.Put(bucketUpdated, updatedKey(r.Updated, r.ID), []byte{1}); err != nil {
			return 0, fmt.Errorf("prune journeys: %w", err)
		}
	}
	if err := kv.Put(bucketMeta, keyIndexed, []byte("1")); err != nil {
		return 0, fmt.Errorf("prune journeys: %w", err)
	}
	return len(old), nil
}

// deleteJourney deletes r's record and the call id entries that point at it.
func deleteJourney(kv store.KV, r record) error {
	for _, id := range append(r.IDs, r.ID) {
		key := strings.ToLower(id)
		if string(kv.Get(bucketCallID, key)) == r.ID {
			if err := kv.Delete(bucketCallID, key); err != nil {
				return fmt.Errorf("prune journeys: %w", err)
			}
		}
	}
	if err := kv.Delete(bucketJourney, r.ID); err != nil {
		return fmt.Errorf("prune journeys: %w", err)
	}
	return nil
}

// updatedKey is the "updated" index key of a journey: its update time as 16
// hex digits (so that key order is time order), 0x00, its id.
func updatedKey(t time.Time, id string) string {
	return fmt.Sprintf("%016x", uint64(max(0, t.UnixNano()))) + "\x00" + id
}
