package test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"iproc/server"
)

// BenchmarkCDRConsumer measures CDRs per second through the consumer: b.N
// CDRs pushed at once, timed until the last is stored and delivered to a
// subscribed supervisor. "shared" is the Redis event log (--redis),
// "local" the embedded one with Redis feeding only the consumer.
func BenchmarkCDRConsumer(b *testing.B) {
	for _, mode := range []string{"shared", "local"} {
		b.Run(mode, func(b *testing.B) {
			r := startRedis(b, redisOptions{})
			rdb := r.Client()
			key := "bench:" + mode
			ts := startServer(b, func(c *server.Config) {
				c.RedisURL, c.CDRKey, c.LocalStore = r.URL, key, mode == "local"
			})
			sup := benchSubscriber(b, ts, "2001")
			b.ResetTimer()
			start := time.Now()
			if err := pushCDRs(b, rdb, key, "B", b.N, ext5001); err != nil {
				b.Fatal(err)
			}
			got := 0
			deadline := time.After(5 * time.Minute)
			for got < b.N {
				select {
				case m := <-sup.frames:
					if m["name"] == "dialer.cdr" {
						got++
					}
				case <-deadline:
					b.Fatalf("%d of %d delivered", got, b.N)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "CDRs/s")
		})
	}
}

// BenchmarkCrossInstanceDelivery measures the latency from a
// ContactProcessed POST on instance A to its frame at a supervisor on
// instance B (same Redis, same domain); it reports p50 and p99.
func BenchmarkCrossInstanceDelivery(b *testing.B) {
	r := startRedis(b, redisOptions{})
	a := startServer(b, func(c *server.Config) { c.RedisURL = r.URL })
	bb := startServer(b, func(c *server.Config) { c.RedisURL = r.URL })
	sup := benchSubscriber(b, bb, "2001")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		guid := fmt.Sprintf("XI-%d-%d", b.N, i)
		t0 := time.Now()
		if status, _ := post(b, a.URL+pathCP, jsonOf(contactProcessed(guid, "ATT-"+guid, "1001")), nil); status != 200 {
			b.Fatalf("post: %d", status)
		}
		sup.next("cross-instance event", func(m map[string]any) bool {
			d, _ := m["data"].(map[string]any)
			return m["name"] == "outbound.contactProcessed" && d["GSW_MESSAGE_GUID"] == guid
		})
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

// benchSubscriber logs id in and subscribes it to every topic.
func benchSubscriber(b *testing.B, ts *testServer, id string) *client {
	c := dial(b, ts.WS)
	sid, _ := c.login(id)
	success(b, c.request("subscribe", map[string]any{"topics": allTopics}, sid))
	return c
}
