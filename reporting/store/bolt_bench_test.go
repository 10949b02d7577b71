package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// benchAppenders is the ingest target's number of concurrent posters.
const benchAppenders = 16

// The same benchmark for both embedded logs, to choose between them: bbolt
// (a copy-on-write B+tree, two fsyncs per commit) and Pebble (an LSM: one
// write-ahead-log append and one fsync per commit).
func BenchmarkAppendGroupCommit(b *testing.B)         { benchAppend(b, "bolt", false) }
func BenchmarkAppendNoGroupCommit(b *testing.B)       { benchAppend(b, "bolt", true) }
func BenchmarkAppendPebbleGroupCommit(b *testing.B)   { benchAppend(b, "pebble", false) }
func BenchmarkAppendPebbleNoGroupCommit(b *testing.B) { benchAppend(b, "pebble", true) }

// benchAppend runs b.N single-record appends of a ~600-byte ContactProcessed
// from 16 goroutines to the named log and reports durable acknowledgements
// per second and the acknowledgement latency.
func benchAppend(b *testing.B, kind string, noGroup bool) {
	var commits atomic.Int64
	onCommit := func([]Event) { commits.Add(1) }
	var log Log
	var err error
	if kind == "pebble" {
		log, err = OpenPebble(PebbleConfig{Dir: filepath.Join(b.TempDir(), "events"), NoGroupCommit: noGroup, OnCommit: onCommit, Log: zerolog.Nop()})
	} else {
		log, err = OpenBolt(BoltConfig{Path: filepath.Join(b.TempDir(), "events.db"), NoGroupCommit: noGroup, OnCommit: onCommit, Log: zerolog.Nop()})
	}
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()

	pad := strings.Repeat("x", 380)
	data := json.RawMessage(fmt.Sprintf(`{"GSW_USER_EVENT":"ContactProcessed","GSW_TENANT_NAME":"Environment",`+
		`"GSW_CAMPAIGN_NAME":"Sales","GSW_AGENT_ID":"1001","GSW_CALL_RESULT":33,"pad":%q}`, pad))

	var next atomic.Int64
	lat := make([][]time.Duration, benchAppenders)
	errs := make(chan error, benchAppenders)
	var wg sync.WaitGroup
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range benchAppenders {
		wg.Go(func() {
			ctx := context.Background()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				_, err := log.Append(ctx, []Record{{
					Name:     "outbound.contactProcessed",
					Data:     data,
					Meta:     Meta{AgentID: "1001"},
					DedupKey: fmt.Sprintf("guid-%d", i),
				}})
				if err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if c := commits.Load(); c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "recs/commit")
	}
}
