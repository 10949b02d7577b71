package session

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"iproc/protocol"
	"iproc/reporting/directory"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
)

const testPassword = "pw-for-tests"

// testDirectory has agents 1001 and 1002 (extensions 5001, 5002),
// supervisor 2001, all in team t1, hashed at the lowest bcrypt cost.
func testDirectory(t testing.TB) *directory.Directory {
	t.Helper()
	hash, err := directory.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"agents":[
		{"id":"1001","name":"Ann","type":"Agent","extension":"5001","passwordHash":%[1]q},
		{"id":"1002","name":"Bob","type":"Agent","extension":"5002","passwordHash":%[1]q},
		{"id":"2001","name":"Sue","type":"Supervisor","passwordHash":%[1]q}],
		"teams":[{"id":"t1","name":"Sales","members":["1001","1002"],"supervisors":["2001"]}]}`, hash)
	d, err := directory.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openLog opens an embedded log in a temporary folder, with the
// projections the registry relies on; commits go to *dispatch once set.
// It is the bbolt log, whose OnCommit runs before the appenders are
// answered: when Append returns, the registry has dispatched the events,
// so tests need not wait for them (the server's Pebble log answers first
// and dispatches after, through the hub).
func openLog(t testing.TB, dispatch *func([]store.Event)) store.Log {
	t.Helper()
	var mu sync.Mutex
	log, err := store.OpenBolt(store.BoltConfig{
		Path:      filepath.Join(t.TempDir(), "iproc.db"),
		Projector: projectors{teamstatus.Projector{}, Projector{}},
		OnCommit: func(evs []store.Event) {
			mu.Lock()
			defer mu.Unlock()
			if *dispatch != nil {
				(*dispatch)(evs)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

type projectors []store.Projector

func (ps projectors) Project(kv store.KV, ev store.Event) error {
	for _, p := range ps {
		if err := p.Project(kv, ev); err != nil {
			return err
		}
	}
	return nil
}

// newTestRegistry makes a registry over a real embedded log whose commits
// are dispatched to it, as the server's hub does.
func newTestRegistry(t testing.TB, cfg Config) *Registry {
	t.Helper()
	var dispatch func([]store.Event)
	if cfg.Log == nil {
		cfg.Log = openLog(t, &dispatch)
	}
	if cfg.Directory == nil {
		cfg.Directory = testDirectory(t)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dispatch = r.DispatchBatch
	return r
}

// fakeConn records the frames a session sends; it is the registry's seam
// to a WebSocket connection.
type fakeConn struct {
	mu     sync.Mutex
	frames []map[string]any
	full   bool // Send refuses, as an overflowing queue does
}

func (c *fakeConn) Send(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return false
	}
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil {
		panic(fmt.Sprintf("frame is not JSON: %q", frame))
	}
	c.frames = append(c.frames, m)
	return true
}

func (c *fakeConn) SendWait(_ context.Context, frame []byte) bool { return c.Send(frame) }

// names returns the names of the frames so far (the reply as "reply"),
// with their seqs, and forgets them.
func (c *fakeConn) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.frames {
		name, _ := m["name"].(string)
		if name == "" {
			name = "reply"
		}
		if seq, ok := m["seq"].(float64); ok {
			name += fmt.Sprintf("#%d", int(seq))
		}
		out = append(out, name)
	}
	c.frames = nil
	return out
}

// login prepares and attaches a session of agent on c.
func login(t testing.TB, r *Registry, agent string, c Conn) (*Session, string) {
	t.Helper()
	var req PrepareRequest
	req.Agent.ID, req.Agent.Password = agent, testPassword
	p, err := r.Prepare(context.Background(), req, "192.0.2.1:4000")
	if err != nil || p.Session == nil {
		t.Fatalf("login %s: %v %+v", agent, err, p)
	}
	r.Attach(context.Background(), p.Session, c, p.From, []byte(`{"result":"success"}`))
	return p.Session, p.ResumeToken
}

func subscribe(t testing.TB, r *Registry, s *Session, filter string, topics ...string) {
	t.Helper()
	req := SubscribeRequest{Topics: topics}
	if filter != "" {
		if err := json.Unmarshal([]byte(filter), &req.Filter); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Subscribe(context.Background(), s, req); err != nil {
		t.Fatal(err)
	}
}

// post appends a ContactProcessed for agent, as ingest does.
func post(t testing.TB, r *Registry, agent string) uint64 {
	t.Helper()
	data := fmt.Sprintf(`{"GSW_AGENT_ID":%q,"GSW_CAMPAIGN_GROUP_GUID":"G1"}`, agent)
	res, err := r.log.Append(context.Background(), []store.Record{{Name: protocol.TopicContactProcessed, Data: json.RawMessage(data), Meta: store.Meta{AgentID: agent}}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Seq
}

func joined(names []string) string { return strings.Join(names, " ") }
