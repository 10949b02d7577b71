package test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"iproc/server"
)

// benchPosters is the ingest target's number of concurrent posters (SPEC §9).
const benchPosters = 16

func BenchmarkIngestGroupCommit(b *testing.B)   { benchIngest(b, false) }
func BenchmarkIngestNoGroupCommit(b *testing.B) { benchIngest(b, true) }

// benchIngest posts b.N distinct ContactProcessed notifications over real
// HTTP from 16 goroutines to an in-process server, with one subscribed
// supervisor, and reports durable acknowledgements per second, the
// acknowledgement latency (p50, p99) and how many events the subscriber
// missed (must be 0).
func benchIngest(b *testing.B, noGroup bool) {
	ts := startServer(b, func(c *server.Config) {
		c.NoGroupCommit = noGroup
		c.SendQueueSize = 1 << 16
	})
	sup := dial(b, ts.WS)
	sid, _ := sup.login("2001")
	success(b, sup.request("subscribe", map[string]any{"topics": []string{"outbound.contactProcessed"}}, sid))
	var delivered atomic.Int64
	sup.countEvents("outbound.contactProcessed", &delivered)

	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = []byte(jsonOf(contactProcessed(fmt.Sprintf("BENCH-%d-%d", time.Now().UnixNano(), i), fmt.Sprintf("ATT-%d", i), "1001")))
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchPosters}}
	var next atomic.Int64
	lat := make([][]time.Duration, benchPosters)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range benchPosters {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				resp, err := httpc.Post(ts.URL+"/ingest/ocs/contact-processed", "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d posts were not acknowledged", n, b.N)
	}
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(int64(b.N)-delivered.Load()), "lost")
}

// countEvents makes the client count the frames named name into n instead
// of keeping them; it replaces the client's reader for benchmarks that
// receive more frames than the client buffers.
func (c *client) countEvents(name string, n *atomic.Int64) {
	go func() {
		for {
			select {
			case m := <-c.frames:
				if m["name"] == name {
					n.Add(1)
				}
			case <-c.closed:
				return
			}
		}
	}()
}
