package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	clk := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := open(t, BoltConfig{Now: clk.Now, History: time.Hour})

	mustAppend(t, b, rec("t", `1`, "k1"), rec("t", `2`, "k2"), rec("t", `3`, ""))
	clk.Advance(40 * time.Minute)
	mustAppend(t, b, rec("t", `4`, "k4"), rec("t", `5`, ""))

	clk.Advance(30 * time.Minute) // first three are 70 min old, the rest 30
	n, err := b.prune()
	if err != nil || n != 3 {
		t.Fatalf("prune = %d, %v, want 3", n, err)
	}
	if oldest, head := b.Bounds(); oldest != 4 || head != 5 {
		t.Errorf("Bounds = %d, %d, want 4, 5", oldest, head)
	}
	got := readAll(t, b)
	if len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 5 {
		t.Errorf("Read after prune = %+v", got)
	}
	if evs, err := b.Read(context.Background(), 1, 10); err != nil || len(evs) != 2 || evs[0].Seq != 4 {
		t.Errorf("Read(1) after prune = %+v, %v", evs, err)
	}

	res := mustAppend(t, b, rec("t", `6`, "k1"), rec("t", `7`, "k4"))
	if res[0] != (Result{Seq: 6}) || res[1] != (Result{Seq: 4, Duplicate: true}) {
		t.Errorf("dedup after prune = %+v, want k1 new (6), k4 duplicate (4)", res)
	}

	// Nothing left to expire.
	if n, err := b.prune(); err != nil || n != 0 {
		t.Errorf("second prune = %d, %v, want 0", n, err)
	}
}

func TestRetentionChunks(t *testing.T) {
	clk := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := open(t, BoltConfig{Now: clk.Now, History: time.Minute})
	const total = 2*pruneChunk + 500
	for i := 0; i < total; i += 500 {
		recs := make([]Record, 500)
		for j := range recs {
			recs[j] = rec("t", `{}`, fmt.Sprintf("k%d", i+j))
		}
		mustAppend(t, b, recs...)
	}
	clk.Advance(2 * time.Minute)
	n, err := b.prune()
	if err != nil || n != total {
		t.Fatalf("prune = %d, %v, want %d", n, err, total)
	}
	if oldest, head := b.Bounds(); oldest != 0 || head != total {
		t.Errorf("Bounds = %d, %d, want 0, %d", oldest, head, total)
	}
	if evs := readAll(t, b); len(evs) != 0 {
		t.Errorf("Read returned %d events after full expiry", len(evs))
	}
	res := mustAppend(t, b, rec("t", `{}`, "k0"))
	if res[0] != (Result{Seq: total + 1}) {
		t.Errorf("append after expiry = %+v", res)
	}
	if oldest, _ := b.Bounds(); oldest != total+1 {
		t.Errorf("oldest = %d, want %d", oldest, total+1)
	}
}
