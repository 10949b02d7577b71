// Package sources keeps the health of the notification sources (SPEC §3.7):
// for each of OCS campaign group states, OCS contact-processed, GMS callbacks
// and the dialer's CDRs, a status (unknown, ok, quiet, down), when it was
// last seen, and what it sent in the last minute (accepted, rejected,
// duplicates); for the dialer also its Redis list's length, how long the
// list has been non-empty and the dead-letter count.
//
// What is seen comes from the event log (Committed, fed by the log's
// OnCommit), so every instance of a domain sees the same sources; what is
// refused (Rejected, Duplicates) and the dialer's list (Probed) are this
// instance's observations. A change of status becomes a system.sourceHealth
// event in the log, stored once for the whole domain: its dedup key names
// the source, the seq of the source's previous status event and the new
// status, so that every instance that sees the same change appends the same
// key.
//
// Concurrency: a Tracker is safe for concurrent use; one goroutine (Run)
// probes the dialer, notices quiet sources and stores the changes.
package sources

import (
	"encoding/json"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// The sources.
const (
	CampaignGroupState = "ocs.campaignGroupState"
	ContactProcessed   = "ocs.contactProcessed"
	Callback           = "gms.callback"
	DialerCDR          = "dialer.cdr"
)

// The statuses of a source.
const (
	// Unknown: nothing received from the source yet.
	Unknown = "unknown"
	// OK: the source sent within the quiet period.
	OK = "ok"
	// Quiet: the source sent before and has been silent for the quiet period.
	Quiet = "quiet"
	// Down: the dialer's Redis cannot be reached.
	Down = "down"
)

// Statuses lists every status, for metrics.
func Statuses() []string { return []string{Unknown, OK, Quiet, Down} }

// DefaultQuiet is the silence after which a source is quiet (--source-quiet).
const DefaultQuiet = 5 * time.Minute

// Of returns the source of the events of topic; ok is false for events that
// come from no source (agent states, session records, health events).
func Of(topic string) (source string, ok bool) {
	switch topic {
	case protocol.TopicCampaignGroupState:
		return CampaignGroupState, true
	case protocol.TopicContactProcessed:
		return ContactProcessed, true
	case protocol.TopicCallback:
		return Callback, true
	case protocol.TopicCDR:
		return DialerCDR, true
	}
	return "", false
}

// Status is what the server knows of one source: an element of
// report.sources and the data of a system.sourceHealth event.
type Status struct {
	Source string `json:"source"`
	Status string `json:"status"`
	// Since is when the status began (RFC 3339, UTC, milliseconds); empty
	// for a source unknown since start-up.
	Since string `json:"since,omitempty"`
	// LastSeen is when the source's latest notification was stored; null
	// when never.
	LastSeen *string `json:"lastSeen"`
	// PerMinute, RejectedPerMinute and DuplicatesPerMinute count the
	// notifications of the last 60 seconds: accepted and stored, refused
	// as invalid (HTTP 400, 413, 415; dead-lettered CDRs), and answered as
	// duplicates (retries).
	PerMinute           int `json:"perMinute"`
	RejectedPerMinute   int `json:"rejectedPerMinute"`
	DuplicatesPerMinute int `json:"duplicatesPerMinute"`
	// ListLength, ListNonEmptySeconds and DeadLetters are the dialer's: the
	// CDRs waiting in its Redis list, how long the list has been non-empty
	// without a break (0 when empty), and the elements of its dead-letter
	// list. While Redis is down they are the last figures read.
	ListLength          *int64 `json:"listLength,omitempty"`
	ListNonEmptySeconds *int64 `json:"listNonEmptySeconds,omitempty"`
	DeadLetters         *int64 `json:"deadLetters,omitempty"`
	// Reason says why a source is down.
	Reason string `json:"reason,omitempty"`

	lastSeen time.Time // LastSeen as a time; zero when never
}

// LastSeenTime is when the source's latest notification was stored; zero
// when never.
func (s Status) LastSeenTime() time.Time { return s.lastSeen }

// formatTime formats t as the protocol's timestamps are.
func formatTime(t time.Time) string { return t.UTC().Format(protocol.TimeLayout) }

// healthFields returns the source and status of a system.sourceHealth event.
func healthFields(ev store.Event) (source, status string, since time.Time) {
	if ev.Fields != nil && ev.Fields["source"] != "" {
		since, _ = time.Parse(protocol.TimeLayout, ev.Fields["since"])
		return ev.Fields["source"], ev.Fields["status"], since
	}
	var st Status
	if json.Unmarshal(ev.Data, &st) != nil {
		return "", "", time.Time{}
	}
	since, _ = time.Parse(protocol.TimeLayout, st.Since)
	return st.Source, st.Status, since
}
