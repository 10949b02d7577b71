// Package store is iproc's event log: the one place an event exists once it is
// committed. Appends are durable before they return, events get a strictly
// rising sequence number (seq), dedup keys make retried notifications safe, and
// projections (journeys, campaign group states, agent states) are updated in
// the same commit as the events they are derived from.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Record is an event waiting to be appended.
type Record struct {
	// Name is the event name: a topic such as "outbound.contactProcessed"
	// or an internal name such as "agent.state".
	Name string
	// Data is the event's data object, already JSON-encoded.
	Data json.RawMessage
	// Meta carries routing facts that the hub needs without parsing Data.
	Meta Meta
	// DedupKey, when not empty, makes the append idempotent: a record whose
	// key was already committed (within the retention window) is not stored
	// again and its Result reports the first seq with Duplicate set.
	DedupKey string
	// Fields, when not nil, is the text of Data's top-level scalars (see
	// Event.Fields), as the decoder read them; it becomes the committed
	// Event's Fields.
	Fields map[string]string
}

// Meta holds routing facts about an event.
type Meta struct {
	// AgentID is the agent the event belongs to (GSW_AGENT_ID, c_agent_id,
	// the agent of an agent-state change), empty when none.
	AgentID string `json:"a,omitempty"`
	// Ext is the extension the event belongs to (dialer CDR ext).
	Ext string `json:"x,omitempty"`
	// Origin is the instance that appended the event, for cluster mode.
	Origin string `json:"o,omitempty"`
}

// Event is a committed record.
type Event struct {
	Seq  uint64          `json:"seq"`
	Time time.Time       `json:"time"`
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
	Meta Meta            `json:"meta"`
	// Fields is the text of every top-level scalar member of Data (strings
	// unescaped; numbers, true, false and null as written; objects and
	// arrays left out), for routing filters and projections, so that they
	// need not parse Data again. Append takes it from Record.Fields (ingest
	// fills it while decoding); Read fills it from Data (ScalarFields). It
	// is not stored: Data is the record. It must not be modified: events
	// are shared. Nil when Data is not an object (or, for an appended
	// record, when the appender did not fill it).
	Fields map[string]string `json:"-"`
}

// Result is the outcome of appending one record.
type Result struct {
	Seq       uint64
	Duplicate bool
}

// KV is the projection state visible inside a commit (read-write) or a view
// (read-only). Buckets are created on first Put. Values returned by Get are
// valid only until the callback returns: copy them to keep them.
type KV interface {
	Get(bucket, key string) []byte
	Put(bucket, key string, value []byte) error
	Delete(bucket, key string) error
	// ForEach calls fn for every key of bucket in key order; fn returning an
	// error stops the walk and returns it.
	ForEach(bucket string, fn func(key string, value []byte) error) error
}

// Projector derives state from events. Project is called for every newly
// committed (non-duplicate) event, in seq order, inside the committing
// transaction; it should not fail for bad data (skip it) because an error
// aborts the whole batch.
type Projector interface {
	Project(kv KV, ev Event) error
}

// Log is the event log. The embedded (Pebble; bbolt before) and Redis implementations all
// satisfy it.
type Log interface {
	// Append stores recs durably as one unit (all or nothing) and returns one
	// Result per record. Concurrent callers share commits (group commit).
	Append(ctx context.Context, recs []Record) ([]Result, error)
	// Read returns up to limit events with seq > after, in seq order.
	Read(ctx context.Context, after uint64, limit int) ([]Event, error)
	// Bounds returns the oldest retained seq (0 when empty) and the head (the
	// highest committed seq, 0 when none).
	Bounds() (oldest, head uint64)
	// View runs fn over a read-only snapshot of the projection state.
	View(fn func(kv KV) error) error
	// Close flushes and closes the log.
	Close() error
}

// ErrLocked means another process holds the data folder's store open.
var ErrLocked = errors.New("store: the event log is in use by another process")

// ErrClosed is returned by operations on a closed log.
var ErrClosed = errors.New("store: closed")

// ErrUnavailable wraps failures to write durably (disk full, I/O error); the
// ingest endpoints answer 503 for it.
var ErrUnavailable = errors.New("store: unavailable")
