// Package notify decodes and validates the notifications iproc ingests: OCS
// CampaignGroupState and ContactProcessed (HTTP POST), GMS callback status
// notifications (HTTP POST) and dialer CDRs (Redis list). Each Decode function
// checks one body against the vendor's field table and returns Notifications
// ready to append to the event log, or an *Error the caller reports (the HTTP
// layer answers 400 with it, the CDR consumer dead-letters the element).
//
// Decoding is pure and safe for concurrent use. A body is read once, with
// the jsontext package of github.com/go-json-experiment/json (which rejects
// invalid UTF-8 and duplicate member names and reports byte offsets), into
// the top-level members of each object; a table of rules per notification
// kind (a view) reads the fields iproc relies on as lenient integers,
// timestamps and text, and checks them. Every field of the body is kept in
// Notification.Data as received, and the text of every top-level scalar in
// Notification.Fields.
package notify

import (
	"encoding/json"
	"strings"

	"iproc/protocol"
)

// Topics, the event names notifications are appended and forwarded under.
const (
	TopicCampaignGroupState = protocol.TopicCampaignGroupState
	TopicContactProcessed   = protocol.TopicContactProcessed
	TopicCallback           = protocol.TopicCallback
	TopicCDR                = protocol.TopicCDR
)

// Error codes of an Error.
const (
	// CodeMalformed: the body is not JSON, or not of the expected shape.
	CodeMalformed = protocol.CodeMalformed
	// CodeInvalid: the body is JSON but fields are missing or wrong.
	CodeInvalid = protocol.CodeInvalid
)

// Limits applied while decoding.
const (
	// MaxBodyBytes is the largest body decoded (the HTTP layer already
	// enforces it with 413; the CDR consumer relies on this one).
	MaxBodyBytes = 1 << 20
	// MaxDepth is how deeply objects and arrays may nest in a body.
	MaxDepth = 64
	// MaxBatch is the largest number of callback notifications in one array.
	MaxBatch = 1000
	// maxProblems bounds how many problems an Error message lists.
	maxProblems = 50
)

// Notification is a validated notification ready to append as an event.
type Notification struct {
	// Topic is the event name (one of the Topic constants).
	Topic string
	// Data is the event data object: every field as received, numbers
	// preserved exactly. For a GMS {"deviceId", "message"} wrapper it is the
	// inner object with "deviceId" added.
	Data json.RawMessage
	// DedupKey is "cp:" + the lower-cased GSW_MESSAGE_GUID for
	// ContactProcessed, "" otherwise.
	DedupKey string
	// AgentID is GSW_AGENT_ID (ContactProcessed) or c_agent_id (callback),
	// "" when absent.
	AgentID string
	// Ext is the agent extension of a CDR (ext), "" when absent or null.
	Ext string
	// Fields holds the text of every top-level scalar field of Data
	// (strings unescaped; numbers, true, false and null as written), read
	// while decoding so that nothing downstream parses Data again.
	Fields map[string]string
}

// Error is a decode or validation failure; the HTTP layer answers 400 with it.
type Error struct {
	// Code is CodeMalformed (not JSON, not an object) or CodeInvalid (field
	// problems).
	Code string
	// Message is human readable and names each bad field and why, for
	// example "GSW_CHAIN_ID: must be an integer; GSW_CONTACT_MEDIA_TYPE: must
	// be one of voice, sms, email".
	Message string
	// Fields are the bad field names, sorted (array items as "[3].event_id",
	// sorted by item then name). Empty for CodeMalformed.
	Fields []string
}

var _ error = (*Error)(nil)

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// problem is one bad field.
type problem struct {
	item  int // array index, -1 when not in an array
	field string
	why   string
}

func (p problem) name() string {
	if p.item < 0 {
		return p.field
	}
	if p.field == "" {
		return "[" + itoa(p.item) + "]"
	}
	return "[" + itoa(p.item) + "]." + p.field
}

// invalid builds the request.invalid Error for problems, sorted by item then
// field name.
func invalid(ps []problem) *Error {
	sortProblems(ps)
	e := &Error{Code: CodeInvalid, Fields: make([]string, 0, len(ps))}
	var b strings.Builder
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		n := p.name()
		if !seen[n] {
			seen[n] = true
			e.Fields = append(e.Fields, n)
		}
		if i == maxProblems {
			b.WriteString("; and " + itoa(len(ps)-i) + " more")
			continue
		}
		if i > maxProblems {
			continue
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(n)
		b.WriteString(": ")
		b.WriteString(p.why)
	}
	e.Message = b.String()
	return e
}

func malformed(msg string) *Error { return &Error{Code: CodeMalformed, Message: msg} }
