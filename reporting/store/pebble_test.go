package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"
)

// countProjector counts events per name in bucket "count" and remembers the
// Fields it was given; it prunes every key of "count" whose value is older
// than the cutoff (its value is the event's commit time).
type countProjector struct {
	fields atomic.Pointer[map[string]string]
}

func (c *countProjector) Project(kv KV, ev Event) error {
	if ev.Fields != nil {
		c.fields.Store(&ev.Fields)
	}
	return kv.Put("count", ev.Name+fmt.Sprint(ev.Seq), []byte(ev.Time.Format(time.RFC3339Nano)))
}

func (c *countProjector) Prune(kv KV, before time.Time) (int, error) {
	var old []string
	err := kv.ForEach("count", func(k string, v []byte) error {
		if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil && t.Before(before) {
			old = append(old, k)
		}
		return nil
	})
	for _, k := range old {
		if err := kv.Delete("count", k); err != nil {
			return 0, err
		}
	}
	return len(old), err
}

func openTestPebble(t *testing.T, dir string, cfg PebbleConfig) *Pebble {
	t.Helper()
	cfg.Dir = dir
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	p, err := OpenPebble(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func prec(name, data, dedup string) Record {
	return Record{Name: name, Data: json.RawMessage(data), DedupKey: dedup, Meta: Meta{AgentID: "1001"},
		Fields: map[string]string{"k": "v"}}
}

func TestPebbleAppendReadRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	proj := &countProjector{}
	var delivered atomic.Int64
	p := openTestPebble(t, dir, PebbleConfig{Projector: proj, OnCommit: func(evs []Event) { delivered.Add(int64(len(evs))) }})
	ctx := context.Background()
	res, err := p.Append(ctx, []Record{prec("a", `{"x":1}`, "g1"), prec("b", `{"y":"z"}`, "g2"), prec("c", `{}`, "g1")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Seq != 1 || res[1].Seq != 2 || !res[2].Duplicate || res[2].Seq != 1 {
		t.Fatalf("results %+v", res)
	}
	if f := proj.fields.Load(); f == nil || (*f)["k"] != "v" {
		t.Fatalf("the projector did not get the record's Fields: %v", f)
	}
	evs, err := p.Read(ctx, 0, 0)
	if err != nil || len(evs) != 2 || string(evs[1].Data) != `{"y":"z"}` || evs[1].Meta.AgentID != "1001" || evs[1].Fields["y"] != "z" {
		t.Fatalf("read %+v, %v", evs, err)
	}
	checkFor(t, 5*time.Second, func() error {
		if delivered.Load() != 2 {
			return fmt.Errorf("%d delivered", delivered.Load())
		}
		return nil
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir, PebbleConfig{Projector: proj})
	defer p.Close()
	if oldest, head := p.Bounds(); oldest != 1 || head != 2 {
		t.Fatalf("bounds after restart %d %d", oldest, head)
	}
	res, err = p.Append(ctx, []Record{prec("d", `{}`, "g2"), prec("e", `{}`, "")})
	if err != nil || !res[0].Duplicate || res[0].Seq != 2 || res[1].Seq != 3 {
		t.Fatalf("after restart %+v %v", res, err)
	}
	n := 0
	if err := p.View(func(kv KV) error {
		return kv.ForEach("count", func(string, []byte) error { n++; return nil })
	}); err != nil || n != 3 {
		t.Fatalf("projection: %d keys, %v", n, err)
	}
}

func TestPebbleRetention(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p := openTestPebble(t, filepath.Join(t.TempDir(), "events"), PebbleConfig{History: time.Second, Now: clock, Projector: &countProjector{}})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Append(ctx, []Record{prec("old", `{}`, "g-old")}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Second))
	if _, err := p.Append(ctx, []Record{prec("new", `{}`, "g-new")}); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Prune(); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	evs, _ := p.Read(ctx, 0, 0)
	if len(evs) != 1 || evs[0].Name != "new" {
		t.Fatalf("events after pruning %+v", evs)
	}
	if oldest, head := p.Bounds(); oldest != 2 || head != 2 {
		t.Fatalf("bounds %d %d", oldest, head)
	}
	// The dedup key went with its event: the GUID is new again.
	res, err := p.Append(ctx, []Record{prec("again", `{}`, "g-old"), prec("dup", `{}`, "g-new")})
	if err != nil || res[0].Duplicate || !res[1].Duplicate {
		t.Fatalf("after pruning %+v %v", res, err)
	}
	var keys []string
	_ = p.View(func(kv KV) error {
		return kv.ForEach("count", func(k string, _ []byte) error { keys = append(keys, k); return nil })
	})
	if strings.Join(keys, ",") != "again3,new2" {
		t.Fatalf("projection keys after pruning %v", keys)
	}
}

// damage applies one kind of damage to the store in dir.
type damage struct {
	name  string
	apply func(t *testing.T, dir string)
	want  string
}

// fileOf returns the store's file whose name has prefix or suffix affix.
func fileOf(t *testing.T, dir, affix string) string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), affix) || strings.HasSuffix(e.Name(), affix) {
			return filepath.Join(dir, e.Name())
		}
	}
	t.Fatalf("no %s file in %s", affix, dir)
	return ""
}

func truncateHalf(t *testing.T, path string) {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func flipBytes(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 4; i < len(b)/2; i += 7 {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPebbleDamageRefused(t *testing.T) {
	cases := []damage{
		{"table truncated to half", func(t *testing.T, dir string) { truncateHalf(t, fileOf(t, dir, ".sst")) }, ".sst"},
		{"table emptied", func(t *testing.T, dir string) { _ = os.Truncate(fileOf(t, dir, ".sst"), 0) }, "is empty (0 bytes)"},
		{"table bytes flipped", func(t *testing.T, dir string) { flipBytes(t, fileOf(t, dir, ".sst")) }, "damaged"},
		// Pebble may recover from this one (the manifest's tail is a torn
		// write to it): then nothing may be missing.
		{"manifest truncated to half", func(t *testing.T, dir string) { truncateHalf(t, fileOf(t, dir, "MANIFEST-")) }, ""},
		{"manifest bytes flipped", func(t *testing.T, dir string) { flipBytes(t, fileOf(t, dir, "MANIFEST-")) }, ""},
		{"manifest emptied", func(t *testing.T, dir string) { _ = os.Truncate(fileOf(t, dir, "MANIFEST-"), 0) }, "is empty (0 bytes)"},
		{"every file emptied", func(t *testing.T, dir string) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				_ = os.Truncate(filepath.Join(dir, e.Name()), 0)
			}
		}, "is empty (0 bytes)"},
		{"database files deleted", func(t *testing.T, dir string) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != markerFile {
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}, "database files are missing"},
		{"edited event", func(t *testing.T, dir string) { editEvent(t, dir) }, "event 2: event record fails its checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "events")
			p := openTestPebble(t, dir, PebbleConfig{})
			for i := range 200 {
				if _, err := p.Append(context.Background(), []Record{prec("ev", fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", 200)), fmt.Sprint("g", i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			tc.apply(t, dir)
			p, err := OpenPebble(PebbleConfig{Dir: dir, Log: zerolog.Nop()})
			if err == nil && tc.want == "" {
				// Pebble recovered from this damage: every event is there.
				defer p.Close()
				evs, rerr := p.Read(context.Background(), 0, 0)
				if _, head := p.Bounds(); rerr != nil || head != 200 || len(evs) != 200 {
					t.Fatalf("opened after damage with head %d, %d events, %v", head, len(evs), rerr)
				}
				return
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open after damage: %v (want ErrDamaged naming %s and %q)", err, dir, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// editEvent changes the data of event 2 in place, keeping Pebble's own
// checksums valid (as an editing tool would).
func editEvent(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log: zerolog.Nop()}})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(eventKey(2))
	if err != nil {
		t.Fatal(err)
	}
	edited := append([]byte(nil), v...)
	_ = closer.Close()
	edited[len(edited)-3] = '!'
	if err := db.Set(eventKey(2), edited, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPebbleCorruptionWhileRunning: an event damaged after start-up is an
// ErrUnavailable error for readers, never an event.
func TestPebbleCorruptionWhileRunning(t *testing.T) {
	p := openTestPebble(t, filepath.Join(t.TempDir(), "events"), PebbleConfig{})
	defer p.Close()
	if _, err := p.Append(context.Background(), []Record{prec("a", `{"a":1}`, ""), prec("b", `{"b":2}`, "")}); err != nil {
		t.Fatal(err)
	}
	v, closer, err := p.db.Get(eventKey(2))
	if err != nil {
		t.Fatal(err)
	}
	edited := append([]byte(nil), v...)
	_ = closer.Close()
	edited[len(edited)-2] = '3'
	if err := p.db.Set(eventKey(2), edited, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	evs, err := p.Read(context.Background(), 0, 0)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrDamaged) || evs != nil {
		t.Fatalf("read of an edited event: %v, %v", evs, err)
	}
}

func TestConvertBolt(t *testing.T) {
	data := t.TempDir()
	b, err := OpenBolt(BoltConfig{Path: filepath.Join(data, BoltFile), Projector: &countProjector{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(context.Background(), []Record{prec("a", `{"a":1}`, "g1"), prec("b", `{"b":2}`, "")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := CheckFormat(data); !errors.Is(err, ErrNeedsConversion) || !strings.Contains(err.Error(), "iproc convert-store --data "+data) {
		t.Fatalf("CheckFormat before converting: %v", err)
	}
	if n, err := ConvertBolt(data, zerolog.Nop()); err != nil || n != 2 {
		t.Fatalf("converted %d, %v", n, err)
	}
	if err := CheckFormat(data); err != nil {
		t.Fatalf("CheckFormat after converting: %v", err)
	}
	p := openTestPebble(t, filepath.Join(data, PebbleDir), PebbleConfig{})
	defer p.Close()
	evs, err := p.Read(context.Background(), 0, 0)
	if err != nil || len(evs) != 2 || string(evs[0].Data) != `{"a":1}` || evs[0].Meta.AgentID != "1001" {
		t.Fatalf("after conversion %+v %v", evs, err)
	}
	res, err := p.Append(context.Background(), []Record{prec("c", `{}`, "g1")})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("dedup key not converted: %+v %v", res, err)
	}
	n := 0
	_ = p.View(func(kv KV) error { return kv.ForEach("count", func(string, []byte) error { n++; return nil }) })
	if n != 2 {
		t.Fatalf("%d projection keys converted", n)
	}
}
