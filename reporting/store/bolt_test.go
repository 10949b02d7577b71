package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestAppendReadRoundTrip(t *testing.T) {
	clk := newClock(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC))
	var r recorder
	b := open(t, BoltConfig{Now: clk.Now, OnCommit: r.onCommit})

	recs := []Record{
		{Name: "outbound.contactProcessed", Data: json.RawMessage(`{ "b" : 1,  "a":"é\u00e9" ,"n":null}`),
			Meta: Meta{AgentID: "1001", Ext: "5001", Origin: "node-a"}, DedupKey: "guid-1"},
		{Name: "agent.state", Data: json.RawMessage("[1,\n2]\t")},
		{Name: "empty", Data: nil},
		{Name: "binaryish", Data: json.RawMessage("\"\x00\xff\"")},
	}
	res := mustAppend(t, b, recs...)
	for i, r := range res {
		if r.Seq != uint64(i+1) || r.Duplicate {
			t.Errorf("result %d = %+v, want seq %d", i, r, i+1)
		}
	}
	if oldest, head := b.Bounds(); oldest != 1 || head != 4 {
		t.Errorf("Bounds = %d, %d, want 1, 4", oldest, head)
	}

	got := readAll(t, b)
	if len(got) != len(recs) {
		t.Fatalf("Read returned %d events, want %d", len(got), len(recs))
	}
	for i, ev := range got {
		want := recs[i]
		if ev.Seq != uint64(i+1) || ev.Name != want.Name || ev.Meta != want.Meta {
			t.Errorf("event %d = %+v, want %+v", i, ev, want)
		}
		if !bytes.Equal(ev.Data, want.Data) {
			t.Errorf("event %d data = %q, want %q", i, ev.Data, want.Data)
		}
		if !ev.Time.Equal(clk.Now()) {
			t.Errorf("event %d time = %v, want %v", i, ev.Time, clk.Now())
		}
	}

	committed, _ := r.snapshot()
	if len(committed) != len(got) {
		t.Fatalf("OnCommit saw %d events, want %d", len(committed), len(got))
	}
	for i := range got {
		a, c := got[i], committed[i]
		if a.Seq != c.Seq || a.Name != c.Name || !bytes.Equal(a.Data, c.Data) || a.Meta != c.Meta ||
			!a.Time.Equal(c.Time) || a.Time.Location() != c.Time.Location() {
			t.Errorf("OnCommit event %d = %+v, Read gave %+v", i, c, a)
		}
	}

	// The committed events do not alias the caller's records.
	recs[0].Data[0] = 'X'
	if got := readAll(t, b); got[0].Data[0] != '{' {
		t.Errorf("stored data changed with the caller's buffer: %q", got[0].Data)
	}
	if committed[0].Data[0] != '{' {
		t.Errorf("OnCommit data aliases the caller's buffer: %q", committed[0].Data)
	}
	if err := b.Ping(); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

func TestConcurrentAppendersSeqRising(t *testing.T) {
	const workers, perWorker = 16, 200
	var r recorder
	var lastSeen atomic.Uint64
	var outOfOrder atomic.Int64
	b := open(t, BoltConfig{OnCommit: func(evs []Event) {
		for _, ev := range evs {
			if ev.Seq != lastSeen.Load()+1 {
				outOfOrder.Add(1)
			}
			lastSeen.Store(ev.Seq)
		}
		r.onCommit(evs)
	}})

	seqs := make([][]uint64, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				res, err := b.Append(context.Background(), []Record{
					rec("t", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), fmt.Sprintf("k-%d-%d", w, i)),
				})
				if err != nil {
					errs <- err
					return
				}
				if len(res) != 1 || res[0].Duplicate {
					errs <- fmt.Errorf("worker %d append %d: result %+v", w, i, res)
					return
				}
				if n := len(seqs[w]); n > 0 && res[0].Seq <= seqs[w][n-1] {
					errs <- fmt.Errorf("worker %d: seq %d after %d", w, res[0].Seq, seqs[w][n-1])
					return
				}
				seqs[w] = append(seqs[w], res[0].Seq)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const total = workers * perWorker
	seen := make(map[uint64]bool, total)
	for _, s := range seqs {
		for _, q := range s {
			if seen[q] {
				t.Fatalf("seq %d acknowledged twice", q)
			}
			seen[q] = true
		}
	}
	for q := uint64(1); q <= total; q++ {
		if !seen[q] {
			t.Fatalf("seq %d never acknowledged", q)
		}
	}
	if _, head := b.Bounds(); head != total {
		t.Errorf("head = %d, want %d", head, total)
	}

	committed, batches := r.snapshot()
	if len(committed) != total {
		t.Fatalf("OnCommit saw %d events, want %d", len(committed), total)
	}
	for i, ev := range committed {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("OnCommit event %d has seq %d", i, ev.Seq)
		}
	}
	if n := outOfOrder.Load(); n != 0 {
		t.Errorf("%d events reached OnCommit out of order", n)
	}
	t.Logf("%d appends in %d commits", total, batches)

	stored := readAll(t, b)
	if len(stored) != maxReadLimit && len(stored) != total {
		t.Fatalf("Read returned %d events", len(stored))
	}
	for i, ev := range stored {
		if ev.Seq != uint64(i+1) || !bytes.Equal(ev.Data, committed[i].Data) {
			t.Fatalf("stored event %d = seq %d %s, committed %s", i, ev.Seq, ev.Data, committed[i].Data)
		}
	}
}

// gate is a projector that blocks on the first event until released, to
// hold the committer while requests queue up.
type gate struct {
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	released sync.Once
}

// Release lets the held commit go on; it may be called more than once.
func (g *gate) Release() { g.released.Do(func() { close(g.release) }) }

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Project(kv KV, ev Event) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return nil
}

func TestDedup(t *testing.T) {
	var r recorder
	g := newGate()
	b := open(t, BoltConfig{Projector: g, OnCommit: r.onCommit})
	t.Cleanup(g.Release) // runs before Close, even when the test fails

	// Hold the committer on a first append so that the next requests are
	// committed together, in one batch.
	first := make(chan []Result, 1)
	go func() {
		res, _ := b.Append(context.Background(), []Record{rec("t", `1`, "a")})
		first <- res
	}()
	<-g.entered
	type answer struct {
		res []Result
		err error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			res, err := b.Append(context.Background(), []Record{rec("t", `2`, "b")})
			answers <- answer{res, err}
		}()
	}
	checkFor(t, 5*time.Second, func() error {
		if n := len(b.reqs); n != 2 {
			return fmt.Errorf("%d requests queued, want 2", n)
		}
		return nil
	})
	g.Release()
	if res := <-first; len(res) != 1 || res[0] != (Result{Seq: 1}) {
		t.Fatalf("first append = %+v", res)
	}
	a1, a2 := <-answers, <-answers
	if a1.err != nil || a2.err != nil {
		t.Fatalf("appends failed: %v, %v", a1.err, a2.err)
	}
	if a1.res[0].Seq != 2 || a2.res[0].Seq != 2 || a1.res[0].Duplicate == a2.res[0].Duplicate {
		t.Fatalf("same key in one batch: %+v and %+v, want seq 2 once new, once duplicate", a1.res, a2.res)
	}

	// Same key later, and twice within one append.
	res := mustAppend(t, b, rec("t", `3`, "a"), rec("t", `4`, "c"), rec("t", `5`, "c"), rec("t", `6`, ""), rec("t", `7`, ""))
	want := []Result{{1, true}, {3, false}, {3, true}, {4, false}, {5, false}}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("result %d = %+v, want %+v", i, res[i], want[i])
		}
	}
	if _, head := b.Bounds(); head != 5 {
		t.Errorf("head = %d, want 5", head)
	}
	stored := readAll(t, b)
	var datas []string
	for _, ev := range stored {
		datas = append(datas, string(ev.Data))
	}
	if got := strings.Join(datas, ","); got != "1,2,4,6,7" {
		t.Errorf("stored data = %s, want 1,2,4,6,7", got)
	}
	committed, _ := r.snapshot()
	if len(committed) != 5 {
		t.Errorf("OnCommit saw %d events, want 5 (no duplicates)", len(committed))
	}
}

// counter is a projector counting events per name in bucket "count".
type counter struct{}

func (counter) Project(kv KV, ev Event) error {
	var n uint64
	if v := kv.Get("count", ev.Name); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return kv.Put("count", ev.Name, binary.BigEndian.AppendUint64(nil, n+1))
}

func count(t *testing.T, b *Bolt, name string) uint64 {
	t.Helper()
	var n uint64
	err := b.View(func(kv KV) error {
		if v := kv.Get("count", name); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return n
}

func TestReopenRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	clk := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := BoltConfig{Path: path, Projector: counter{}, Now: clk.Now, History: time.Hour, Log: testLogger(t)}

	b, err := OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, rec("x", `1`, "k1"), rec("x", `2`, "k2"), rec("y", `3`, ""))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b, err = OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if oldest, head := b.Bounds(); oldest != 1 || head != 3 {
		t.Errorf("after reopen Bounds = %d, %d, want 1, 3", oldest, head)
	}
	if n := count(t, b, "x"); n != 2 {
		t.Errorf("projection count x = %d, want 2", n)
	}
	res := mustAppend(t, b, rec("x", `4`, "k2"), rec("x", `5`, "k3"))
	if res[0] != (Result{Seq: 2, Duplicate: true}) || res[1] != (Result{Seq: 4}) {
		t.Errorf("after reopen results = %+v", res)
	}

	// Expire everything: the head survives a reopen with an empty log.
	clk.Advance(2 * time.Hour)
	if n, err := b.prune(); err != nil || n != 4 {
		t.Fatalf("prune = %d, %v, want 4", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err = OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if oldest, head := b.Bounds(); oldest != 0 || head != 4 {
		t.Errorf("after expiry and reopen Bounds = %d, %d, want 0, 4", oldest, head)
	}
	if res := mustAppend(t, b, rec("x", `6`, "k2")); res[0] != (Result{Seq: 5}) {
		t.Errorf("append after expiry = %+v, want seq 5 and not duplicate", res)
	}
	if n := count(t, b, "x"); n != 4 {
		t.Errorf("projection count x = %d, want 4", n)
	}
}

// failing fails on events named "bad" and panics on "panic".
type failing struct{ counter }

func (f failing) Project(kv KV, ev Event) error {
	switch ev.Name {
	case "bad":
		return errors.New("bad event")
	case "panic":
		panic("projector bug")
	}
	return f.counter.Project(kv, ev)
}

func TestProjectorErrorAbortsAppend(t *testing.T) {
	var r recorder
	b := open(t, BoltConfig{Projector: failing{}, OnCommit: r.onCommit})
	mustAppend(t, b, rec("ok", `1`, "a"))

	for _, name := range []string{"bad", "panic"} {
		_, err := b.Append(context.Background(), []Record{rec("ok", `2`, "b"), rec(name, `3`, "c")})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: Append error = %v, want ErrUnavailable", name, err)
		}
		if _, head := b.Bounds(); head != 1 {
			t.Errorf("%s: head = %d, want 1", name, head)
		}
	}
	if n := len(readAll(t, b)); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
	if n := count(t, b, "ok"); n != 1 {
		t.Errorf("projection count = %d, want 1 (aborted batch rolled back)", n)
	}
	if committed, _ := r.snapshot(); len(committed) != 1 {
		t.Errorf("OnCommit saw %d events, want 1", len(committed))
	}
	if err := b.Ping(); err != nil {
		t.Errorf("Ping after projector error = %v, want nil", err)
	}

	// The dedup key of the aborted batch was not kept; appends go on.
	res := mustAppend(t, b, rec("ok", `4`, "b"))
	if res[0] != (Result{Seq: 2}) {
		t.Errorf("append after abort = %+v, want seq 2 not duplicate", res)
	}
	if n := count(t, b, "ok"); n != 2 {
		t.Errorf("projection count = %d, want 2", n)
	}
}

func TestReadAfterLimit(t *testing.T) {
	b := open(t, BoltConfig{})
	for i := 1; i <= 50; i++ {
		mustAppend(t, b, rec("t", fmt.Sprint(i), ""))
	}
	ctx := context.Background()
	cases := []struct {
		after      uint64
		limit      int
		first, len int
	}{
		{10, 5, 11, 5},
		{48, 100, 49, 2},
		{50, 10, 0, 0},
		{0, -1, 1, 50},
		{0, 0, 1, 50},
		{1000, 1, 0, 0},
	}
	for _, c := range cases {
		evs, err := b.Read(ctx, c.after, c.limit)
		if err != nil {
			t.Fatalf("Read(%d, %d): %v", c.after, c.limit, err)
		}
		if len(evs) != c.len {
			t.Errorf("Read(%d, %d) returned %d events, want %d", c.after, c.limit, len(evs), c.len)
			continue
		}
		for i, ev := range evs {
			want := uint64(c.first + i)
			if ev.Seq != want || string(ev.Data) != fmt.Sprint(want) {
				t.Errorf("Read(%d, %d)[%d] = seq %d data %s, want %d", c.after, c.limit, i, ev.Seq, ev.Data, want)
			}
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Read(cctx, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with cancelled ctx = %v", err)
	}
}

func TestAppendCancelled(t *testing.T) {
	b := open(t, BoltConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Append(ctx, []Record{rec("t", `1`, "")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled ctx = %v", err)
	}
	mustAppend(t, b, rec("t", `2`, ""))
	if evs := readAll(t, b); len(evs) != 1 || string(evs[0].Data) != "2" || evs[0].Seq != 1 {
		t.Errorf("stored = %+v, want only the second append as seq 1", evs)
	}
	if res, err := b.Append(context.Background(), nil); err != nil || len(res) != 0 {
		t.Errorf("empty Append = %v, %v", res, err)
	}
}

func TestCloseDrainsThenRefuses(t *testing.T) {
	g := newGate()
	path := filepath.Join(t.TempDir(), "events.db")
	b := open(t, BoltConfig{Path: path, Projector: g})
	t.Cleanup(g.Release) // runs before Close, even when the test fails

	const queued = 5
	errs := make(chan error, queued+1)
	go func() {
		_, err := b.Append(context.Background(), []Record{rec("t", `0`, "")})
		errs <- err
	}()
	<-g.entered
	for i := range queued {
		go func() {
			_, err := b.Append(context.Background(), []Record{rec("t", fmt.Sprint(i+1), "")})
			errs <- err
		}()
	}
	checkFor(t, 5*time.Second, func() error {
		if n := len(b.reqs); n != queued {
			return fmt.Errorf("%d requests queued, want %d", n, queued)
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	// Close refuses new appends before the queue is drained.
	checkFor(t, 5*time.Second, func() error {
		if !b.isClosed.Load() {
			return errors.New("Close has not started")
		}
		return nil
	})
	if _, err := b.Append(context.Background(), []Record{rec("t", `late`, "")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append while closing = %v, want ErrClosed", err)
	}
	g.Release()
	for range queued + 1 {
		if err := <-errs; err != nil {
			t.Errorf("queued Append failed: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := b.Append(context.Background(), []Record{rec("t", `x`, "")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if _, err := b.Read(context.Background(), 0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if err := b.View(func(KV) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("View after Close = %v", err)
	}
	if err := b.Ping(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close = %v", err)
	}

	b2 := open(t, BoltConfig{Path: path})
	if _, head := b2.Bounds(); head != queued+1 {
		t.Errorf("head after reopen = %d, want %d (queued appends committed)", head, queued+1)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	open(t, BoltConfig{Path: path})
	start := time.Now()
	b, err := OpenBolt(BoltConfig{Path: path, Log: zerolog.Nop()})
	if err == nil {
		b.Close()
		t.Fatal("second OpenBolt on a held file succeeded")
	}
	if !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %q, want it to name the path and say locked", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("OpenBolt took %v to fail", d)
	}
	if _, err := OpenBolt(BoltConfig{}); err == nil {
		t.Error("OpenBolt with no path succeeded")
	}
}

func TestProjectorErrorIsolatedInBatch(t *testing.T) {
	g := newGate()
	var r recorder
	proj := projectorFunc(func(kv KV, ev Event) error {
		if err := g.Project(kv, ev); err != nil {
			return err
		}
		return failing{}.Project(kv, ev)
	})
	b := open(t, BoltConfig{Projector: proj, OnCommit: r.onCommit})
	t.Cleanup(g.Release)

	first := make(chan error, 1)
	go func() {
		_, err := b.Append(context.Background(), []Record{rec("ok", `0`, "")})
		first <- err
	}()
	<-g.entered
	names := []string{"ok", "bad", "ok"}
	errs := make([]chan error, len(names))
	for i, name := range names {
		errs[i] = make(chan error, 1)
		go func() {
			_, err := b.Append(context.Background(), []Record{rec(name, fmt.Sprint(i+1), fmt.Sprint("k", i))})
			errs[i] <- err
		}()
		// Queue them in order, so that they share the next batch.
		checkFor(t, 5*time.Second, func() error {
			if n := len(b.reqs); n != i+1 {
				return fmt.Errorf("%d requests queued, want %d", n, i+1)
			}
			return nil
		})
	}
	g.Release()
	if err := <-first; err != nil {
		t.Fatalf("first Append: %v", err)
	}
	for i, name := range names {
		err := <-errs[i]
		if name == "bad" && !errors.Is(err, ErrUnavailable) {
			t.Errorf("request %d (%s): error %v, want ErrUnavailable", i, name, err)
		}
		if name != "bad" && err != nil {
			t.Errorf("request %d (%s) failed with its batch: %v", i, name, err)
		}
	}
	var datas []string
	for _, ev := range readAll(t, b) {
		datas = append(datas, fmt.Sprintf("%d:%s", ev.Seq, ev.Data))
	}
	if got := strings.Join(datas, ","); got != "1:0,2:1,3:3" {
		t.Errorf("stored %s, want 1:0,2:1,3:3", got)
	}
	if committed, _ := r.snapshot(); len(committed) != 3 || committed[2].Seq != 3 {
		t.Errorf("OnCommit saw %+v", committed)
	}
	if n := count(t, b, "ok"); n != 3 {
		t.Errorf("projection count = %d, want 3", n)
	}
}
