package session

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"iproc/protocol"
	"iproc/reporting/directory"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
)

// nopLog is a store.Log that stores nothing, for benchmarks of the routing
// alone.
type nopLog struct{ seq atomic.Uint64 }

func (l *nopLog) Append(_ context.Context, recs []store.Record) ([]store.Result, error) {
	res := make([]store.Result, len(recs))
	for i := range res {
		res[i].Seq = l.seq.Add(1)
	}
	return res, nil
}
func (l *nopLog) Read(context.Context, uint64, int) ([]store.Event, error) { return nil, nil }
func (l *nopLog) Bounds() (uint64, uint64)                                 { return 0, l.seq.Load() }
func (l *nopLog) View(func(store.KV) error) error                          { return nil }
func (l *nopLog) Close() error                                             { return nil }

// countConn is a Conn that counts the frames it is given.
type countConn struct{ n atomic.Int64 }

func (c *countConn) Send([]byte) bool                      { c.n.Add(1); return true }
func (c *countConn) SendWait(context.Context, []byte) bool { c.n.Add(1); return true }

// benchRegistry makes a registry with agents and supervisors, each with an
// attached session subscribed to ContactProcessed.
func benchRegistry(b *testing.B, agents, supervisors int) (*Registry, *countConn) {
	b.Helper()
	type entry struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Type         string `json:"type"`
		PasswordHash string `json:"passwordHash"`
	}
	hash, err := directory.HashPassword("pw", 4)
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Agents []entry `json:"agents"`
		Teams  []any   `json:"teams"`
	}
	for i := range agents {
		doc.Agents = append(doc.Agents, entry{fmt.Sprintf("a%d", i), "A", "Agent", hash})
	}
	for i := range supervisors {
		doc.Agents = append(doc.Agents, entry{fmt.Sprintf("s%d", i), "S", "Supervisor", hash})
	}
	doc.Teams = []any{}
	raw, _ := json.Marshal(doc)
	dir, err := directory.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Config{Log: &nopLog{}, Directory: dir})
	if err != nil {
		b.Fatal(err)
	}
	conn := &countConn{}
	ctx := context.Background()
	for _, e := range doc.Agents {
		a, _ := dir.Agent(e.ID)
		s := &Session{ID: "sess-" + e.ID, Agent: a, conn: conn}
		r.byID[s.ID], r.byAgent[a.ID] = s, s
		if err := r.Subscribe(ctx, s, SubscribeRequest{Topics: []string{protocol.TopicContactProcessed}}); err != nil {
			b.Fatal(err)
		}
	}
	return r, conn
}

func benchDispatch(b *testing.B, agents, supervisors int) {
	r, conn := benchRegistry(b, agents, supervisors)
	data := json.RawMessage(`{"GSW_MESSAGE":"ContactProcessed","pad":"` + strings.Repeat("x", 600) + `"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		agent := ""
		if agents > 0 {
			agent = fmt.Sprintf("a%d", i%agents)
		}
		r.Dispatch(store.Event{Seq: uint64(i + 1), Name: protocol.TopicContactProcessed, Data: data, Meta: store.Meta{AgentID: agent}})
	}
	b.StopTimer()
	if n := conn.n.Load(); n < int64(b.N) {
		b.Fatalf("%d frames for %d events", n, b.N)
	}
	b.ReportMetric(float64(conn.n.Load())/float64(b.N), "frames/event")
}

// BenchmarkDispatchFanout: one event to 5,000 subscribed supervisors.
func BenchmarkDispatchFanout(b *testing.B) { benchDispatch(b, 0, 5000) }

// BenchmarkDispatchOwn: an event for one of 1,000 subscribed agents, with 10
// supervisors subscribed too (the ingest scenario).
func BenchmarkDispatchOwn(b *testing.B) { benchDispatch(b, 1000, 10) }

// BenchmarkDispatchBatchFanout: commits of 16 events to 5,000 subscribed
// supervisors, per event.
func BenchmarkDispatchBatchFanout(b *testing.B) {
	r, conn := benchRegistry(b, 0, 5000)
	data := json.RawMessage(`{"GSW_MESSAGE":"ContactProcessed","pad":"` + strings.Repeat("x", 600) + `"}`)
	batch := make([]store.Event, 16)
	b.ReportAllocs()
	b.ResetTimer()
	seq := uint64(0)
	for i := 0; i < b.N; i += len(batch) {
		for k := range batch {
			seq++
			batch[k] = store.Event{Seq: seq, Name: protocol.TopicContactProcessed, Data: data}
		}
		r.DispatchBatch(batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(conn.n.Load())/float64(seq), "frames/event")
}

// BenchmarkDispatchTeamStatus: an agent's state change in a team of 50
// agents watched by 5 supervisors (the teamstatus scenario's shape).
func BenchmarkDispatchTeamStatus(b *testing.B) {
	hash, err := directory.HashPassword("pw", 4)
	if err != nil {
		b.Fatal(err)
	}
	type entry struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Type         string `json:"type"`
		PasswordHash string `json:"passwordHash"`
	}
	type team struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Members     []string `json:"members"`
		Supervisors []string `json:"supervisors"`
	}
	var doc struct {
		Agents []entry `json:"agents"`
		Teams  []team  `json:"teams"`
	}
	t := team{ID: "t1", Name: "Sales", Members: []string{}, Supervisors: []string{}}
	for i := range 50 {
		id := fmt.Sprintf("a%d", i)
		doc.Agents = append(doc.Agents, entry{id, "A", "Agent", hash})
		t.Members = append(t.Members, id)
	}
	for i := range 5 {
		id := fmt.Sprintf("s%d", i)
		doc.Agents = append(doc.Agents, entry{id, "S", "Supervisor", hash})
		t.Supervisors = append(t.Supervisors, id)
	}
	doc.Teams = []team{t}
	raw, _ := json.Marshal(doc)
	dir, err := directory.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Config{Log: &nopLog{}, Directory: dir})
	if err != nil {
		b.Fatal(err)
	}
	conn := &countConn{}
	for _, e := range doc.Agents {
		a, _ := dir.Agent(e.ID)
		s := &Session{ID: "sess-" + e.ID, Agent: a, conn: conn}
		r.byID[s.ID], r.byAgent[a.ID] = s, s
		if a.Type.SeesAllTopics() {
			r.team.Watch(s, a.ID)
		}
	}
	data := make([]json.RawMessage, 50)
	for i := range data {
		data[i] = json.RawMessage(fmt.Sprintf(`{"agentId":"a%d","state":"ready","reason":"7","since":"2026-12-01T10:00:00Z"}`, i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Dispatch(store.Event{Seq: uint64(i + 1), Name: teamstatus.EventAgentState, Data: data[i%50], Meta: store.Meta{AgentID: fmt.Sprintf("a%d", i%50)}})
	}
	b.StopTimer()
	b.ReportMetric(float64(conn.n.Load())/float64(b.N), "frames/event")
}

// benchFiltered routes ContactProcessed events among n of 10,000 logged-in
// supervisors, each of the n subscribed with a filter on its own campaign;
// every event is for one of them. Both sizes hold the same sessions, so the
// heap (and with it the cost of garbage collection) is the same, and what
// differs is only the number of subscriptions. SPEC §9: the cost per event
// must not grow with n.
func benchFiltered(b *testing.B, n int) {
	r, conn := benchRegistry(b, 0, 10000)
	ctx := context.Background()
	i := 0
	for _, s := range r.byID {
		if i >= n {
			if err := r.Unsubscribe(ctx, s, SubscribeRequest{Topics: []string{protocol.TopicContactProcessed}}); err != nil {
				b.Fatal(err)
			}
			continue
		}
		raw := json.RawMessage(fmt.Sprintf("%q", fmt.Sprintf("CAMPAIGN-%d", i)))
		if err := r.Subscribe(ctx, s, SubscribeRequest{Topics: []string{protocol.TopicContactProcessed}, Filter: map[string]json.RawMessage{"GSW_CAMPAIGN_GROUP_GUID": raw}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	events := make([]store.Event, 64)
	for k := range events {
		data := fmt.Sprintf(`{"GSW_MESSAGE":"ContactProcessed","GSW_AGENT_ID":"1001","GSW_CAMPAIGN_GROUP_GUID":"CAMPAIGN-%d","pad":%q}`, (k*7919)%n, strings.Repeat("x", 600))
		events[k] = store.Event{Name: protocol.TopicContactProcessed, Data: json.RawMessage(data), Meta: store.Meta{AgentID: "1001"}}
	}
	runtime.GC()
	conn.n.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := events[i%len(events)]
		ev.Seq = uint64(i + 1)
		r.Dispatch(ev)
	}
	b.StopTimer()
	if got := conn.n.Load(); got != int64(b.N) {
		b.Fatalf("%d frames for %d events, want one each", got, b.N)
	}
}

// BenchmarkDispatchFiltered10 and BenchmarkDispatchFiltered10000: one
// event among 10 and among 10,000 sessions each filtered to its own
// campaign; the per-event times should be within 2× of each other.
func BenchmarkDispatchFiltered10(b *testing.B)    { benchFiltered(b, 10) }
func BenchmarkDispatchFiltered10000(b *testing.B) { benchFiltered(b, 10000) }

// benchMasked routes ContactProcessed events holding a customer number to
// n supervisors (who get it masked) and the event's agent (who gets it
// whole). The bytes allocated per event show how often it is encoded: once
// whole and once masked, whatever n.
func benchMasked(b *testing.B, n int) {
	r, conn := benchRegistry(b, 1, n)
	data := json.RawMessage(`{"GSW_MESSAGE":"ContactProcessed","GSW_AGENT_ID":"a0","GSW_PHONE":"+15551230001","pad":"` + strings.Repeat("x", 600) + `"}`)
	conn.n.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Dispatch(store.Event{Seq: uint64(i + 1), Name: protocol.TopicContactProcessed, Data: data, Meta: store.Meta{AgentID: "a0"}})
	}
	b.StopTimer()
	if got := conn.n.Load(); got != int64(b.N*(n+1)) {
		b.Fatalf("%d frames for %d events to %d sessions", got, b.N, n+1)
	}
}

// BenchmarkDispatchMasked10 and BenchmarkDispatchMasked1000: the same
// bytes per event (two encodings) for 10 and 1,000 masked receivers.
func BenchmarkDispatchMasked10(b *testing.B)   { benchMasked(b, 10) }
func BenchmarkDispatchMasked1000(b *testing.B) { benchMasked(b, 1000) }
