package sources

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

func TestWindowCountsTheLastMinute(t *testing.T) {
	var w window
	t0 := time.Unix(1_000_000, 0)
	w.add(t0, 2)
	w.add(t0.Add(30*time.Second), 3)
	w.add(t0.Add(59*time.Second), 1)
	if got := w.sum(t0.Add(59 * time.Second)); got != 6 {
		t.Fatalf("sum over the minute = %d, want 6", got)
	}
	if got := w.sum(t0.Add(60 * time.Second)); got != 4 {
		t.Fatalf("sum one minute on = %d, want 4 (the first second has left the window)", got)
	}
	// A bucket reused a minute later starts again from zero.
	w.add(t0.Add(120*time.Second), 5)
	if got := w.sum(t0.Add(120 * time.Second)); got != 5 {
		t.Fatalf("sum after reuse = %d, want 5", got)
	}
	if got := w.sum(t0.Add(10 * time.Minute)); got != 0 {
		t.Fatalf("sum long after = %d, want 0", got)
	}
}

// byName returns the statuses keyed by source.
func byName(sts []Status) map[string]Status {
	m := map[string]Status{}
	for _, s := range sts {
		m[s.Source] = s
	}
	return m
}

func event(seq uint64, topic string, at time.Time) store.Event {
	return store.Event{Seq: seq, Name: topic, Time: at, Data: json.RawMessage(`{}`)}
}

// pendingStatuses lists the changes of source name waiting to be stored.
func pendingStatuses(tr *Tracker, name string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, c := range tr.find(name).pending {
		out = append(out, c.status)
	}
	return out
}

func TestStatusUnknownOkQuietOk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTracker(Config{Quiet: 2 * time.Second})
		for _, s := range tr.Report() {
			if s.Status != Unknown || s.LastSeen != nil || s.Since != "" {
				t.Fatalf("before any notification: %+v, want unknown, no lastSeen, no since", s)
			}
		}
		if len(tr.Report()) != 3 {
			t.Fatalf("without the dialer there are 3 sources, got %d", len(tr.Report()))
		}
		t0 := time.Now()
		tr.Committed([]store.Event{event(1, protocol.TopicContactProcessed, t0), event(2, protocol.TopicContactProcessed, t0)})
		got := byName(tr.Report())
		cp := got[ContactProcessed]
		if cp.Status != OK || cp.PerMinute != 2 || cp.LastSeen == nil || *cp.LastSeen != formatTime(t0) || cp.Since != formatTime(t0) {
			t.Fatalf("after two notifications: %+v", cp)
		}
		if got[Callback].Status != Unknown || got[CampaignGroupState].Status != Unknown {
			t.Fatalf("the other sources changed: %+v", got)
		}
		time.Sleep(1999 * time.Millisecond)
		if s := byName(tr.Report())[ContactProcessed].Status; s != OK {
			t.Fatalf("just before the quiet period ends: %s, want ok", s)
		}
		time.Sleep(time.Millisecond)
		cp = byName(tr.Report())[ContactProcessed]
		if cp.Status != Quiet || cp.Since != formatTime(t0.Add(2*time.Second)) {
			t.Fatalf("after 2 s of silence: %+v, want quiet since lastSeen + 2 s", cp)
		}
		t1 := time.Now()
		tr.Committed([]store.Event{event(3, protocol.TopicContactProcessed, t1)})
		if cp = byName(tr.Report())[ContactProcessed]; cp.Status != OK || cp.Since != formatTime(t1) {
			t.Fatalf("after a notification again: %+v, want ok since it", cp)
		}
		if got, want := pendingStatuses(tr, ContactProcessed), []string{OK, Quiet, OK}; !equal(got, want) {
			t.Fatalf("changes waiting to be stored = %v, want %v", got, want)
		}
		time.Sleep(time.Minute)
		if cp = byName(tr.Report())[ContactProcessed]; cp.PerMinute != 0 {
			t.Fatalf("a minute later perMinute = %d, want 0", cp.PerMinute)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRejectedAndDuplicatesCount(t *testing.T) {
	tr := NewTracker(Config{})
	tr.Rejected(Callback, 2)
	tr.Duplicates(Callback, 3)
	tr.Rejected("no.such.source", 1) // ignored
	cb := byName(tr.Report())[Callback]
	if cb.RejectedPerMinute != 2 || cb.DuplicatesPerMinute != 3 || cb.PerMinute != 0 || cb.Status != Unknown {
		t.Fatalf("callback source: %+v, want 2 rejected, 3 duplicates, still unknown", cb)
	}
}

func TestDialerDownAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTracker(Config{Dialer: true})
		d := byName(tr.Report())[DialerCDR]
		if d.Status != Unknown || d.ListLength != nil {
			t.Fatalf("dialer before any probe: %+v", d)
		}
		tr.Probed(Probe{ListLength: 3, DeadLetters: 1})
		time.Sleep(5 * time.Second)
		tr.Probed(Probe{ListLength: 7, DeadLetters: 1})
		d = byName(tr.Report())[DialerCDR]
		if d.Status != Unknown || *d.ListLength != 7 || *d.DeadLetters != 1 || *d.ListNonEmptySeconds != 5 {
			t.Fatalf("dialer with a list non-empty for 5 s: %+v", d)
		}
		tr.Committed([]store.Event{event(1, protocol.TopicCDR, time.Now())})
		tr.Probed(Probe{Err: errors.New("connection refused")})
		d = byName(tr.Report())[DialerCDR]
		if d.Status != Down || d.Reason == "" || *d.ListLength != 7 {
			t.Fatalf("dialer with Redis unreachable: %+v, want down with the last figures", d)
		}
		tr.Probed(Probe{})
		d = byName(tr.Report())[DialerCDR]
		if d.Status != OK || *d.ListLength != 0 || *d.ListNonEmptySeconds != 0 {
			t.Fatalf("dialer back: %+v, want ok with an empty list", d)
		}
		if got, want := pendingStatuses(tr, DialerCDR), []string{OK, Down, OK}; !equal(got, want) {
			t.Fatalf("changes waiting = %v, want %v", got, want)
		}
	})
}

// testLog opens a Pebble log with the sources projector; every committed
// event is handed to the trackers in *to and sent on the returned channel.
func testLog(t *testing.T, dir string, to *[]*Tracker) (store.Log, <-chan store.Event) {
	t.Helper()
	var mu sync.Mutex
	ch := make(chan store.Event, 64)
	log, err := store.OpenPebble(store.PebbleConfig{
		Dir: dir, Projector: Projector{},
		OnCommit: func(evs []store.Event) {
			mu.Lock()
			for _, tr := range *to {
				tr.Committed(evs)
			}
			mu.Unlock()
			for _, ev := range evs {
				ch <- ev
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return log, ch
}

// next returns the next committed event of topic.
func next(t *testing.T, ch <-chan store.Event, topic string) store.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Name == topic {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", topic)
		}
	}
}

func TestChangesStoredOnceForTwoInstances(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "log")
	a, b := NewTracker(Config{}), NewTracker(Config{})
	trackers := []*Tracker{a, b}
	log, ch := testLog(t, dir, &trackers)
	res, err := log.Append(ctx, []store.Record{{Name: protocol.TopicCallback, Data: json.RawMessage(`{"event_id":"_cbe_x"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch, protocol.TopicCallback)
	// Both instances saw the callback and both store the change: one event.
	if err := a.Publish(ctx, log); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, log); err != nil {
		t.Fatal(err)
	}
	ev := next(t, ch, protocol.TopicSourceHealth)
	var st Status
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Source != Callback || st.Status != OK || st.PerMinute != 1 || st.LastSeen == nil || ev.Seq != res[0].Seq+1 {
		t.Fatalf("stored change: seq %d %+v", ev.Seq, st)
	}
	evs, err := log.Read(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("the log holds %d events, want the callback and one status change", len(evs))
	}
	if p := pendingStatuses(b, Callback); len(p) != 0 {
		t.Fatalf("instance b still waits to store %v", p)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	// A restarted instance remembers lastSeen and the stored status: no
	// second "ok" is stored.
	c := NewTracker(Config{})
	trackers = []*Tracker{c}
	log, _ = testLog(t, dir, &trackers)
	defer log.Close()
	if err := log.View(func(kv store.KV) error { c.Restore(kv); return nil }); err != nil {
		t.Fatal(err)
	}
	cb := byName(c.Report())[Callback]
	if cb.Status != OK || cb.LastSeen == nil || *cb.LastSeen != *st.LastSeen || cb.Since != st.Since {
		t.Fatalf("after restart: %+v, want ok as stored (%+v)", cb, st)
	}
	if err := c.Publish(ctx, log); err != nil {
		t.Fatal(err)
	}
	if _, head := log.Bounds(); head != ev.Seq {
		t.Fatalf("head %d after restart, want %d: nothing new stored", head, ev.Seq)
	}
	// A source silent for the quiet period while the instance was
	// stopped is quiet at once, since lastSeen + the period.
	d := NewTracker(Config{Quiet: time.Millisecond})
	if err := log.View(func(kv store.KV) error { d.Restore(kv); return nil }); err != nil {
		t.Fatal(err)
	}
	seen, _ := time.Parse(protocol.TimeLayout, *st.LastSeen)
	if cb := byName(d.Report())[Callback]; cb.Status != Quiet || cb.Since != formatTime(seen.Add(time.Millisecond)) {
		t.Fatalf("restarted after a silence: %+v, want quiet since lastSeen + 1 ms", cb)
	}
}

func TestRunStoresQuietAndDialerChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tr := NewTracker(Config{Quiet: 300 * time.Millisecond, Dialer: true})
	trackers := []*Tracker{tr}
	log, ch := testLog(t, filepath.Join(t.TempDir(), "log"), &trackers)
	defer log.Close()
	var mu sync.Mutex
	redisErr := error(nil)
	probe := func(context.Context) Probe {
		mu.Lock()
		defer mu.Unlock()
		return Probe{ListLength: 2, Err: redisErr}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Run(ctx, log, probe)
	}()
	defer func() { cancel(); <-done }()

	if _, err := log.Append(ctx, []store.Record{{Name: protocol.TopicCampaignGroupState, Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	want := func(source, status string) Status {
		t.Helper()
		ev := next(t, ch, protocol.TopicSourceHealth)
		var st Status
		if err := json.Unmarshal(ev.Data, &st); err != nil {
			t.Fatal(err)
		}
		if st.Source != source || st.Status != status {
			t.Fatalf("status event %+v, want %s %s", st, source, status)
		}
		return st
	}
	ok := want(CampaignGroupState, OK)
	quiet := want(CampaignGroupState, Quiet)
	okAt, _ := time.Parse(protocol.TimeLayout, ok.Since)
	quietAt, _ := time.Parse(protocol.TimeLayout, quiet.Since)
	if quietAt.Sub(okAt) != 300*time.Millisecond {
		t.Fatalf("quiet since %s, ok since %s: want exactly the quiet period apart", quiet.Since, ok.Since)
	}
	mu.Lock()
	redisErr = errors.New("connection refused")
	mu.Unlock()
	down := want(DialerCDR, Down)
	if down.Reason == "" || down.ListLength == nil || *down.ListLength != 2 {
		t.Fatalf("down event: %+v", down)
	}
	mu.Lock()
	redisErr = nil
	mu.Unlock()
	want(DialerCDR, Unknown) // Redis back, and no CDR was ever seen
}

// BenchmarkCommitted is the tracker's cost on the commit path: one batch of
// 16 notifications from the log's OnCommit.
func BenchmarkCommitted(b *testing.B) {
	tr := NewTracker(Config{})
	evs := make([]store.Event, 16)
	for i := range evs {
		evs[i] = event(uint64(i+1), protocol.TopicContactProcessed, time.Now())
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Committed(evs)
	}
}
