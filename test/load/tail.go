package main

import (
	"bufio"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// The stages of an event's end-to-end latency, from the server's own
// histograms: POST received → durable commit (iproc_ingest_seconds),
// commit → queued on every subscriber (iproc_delivery_seconds, the hub),
// commit → the frame written to each socket (iproc_commit_to_socket_seconds,
// the writers). What is left of the end-to-end figure is the client's.
var tailStages = map[string]string{
	"ingest":          `iproc_ingest_seconds_bucket{source="ocs_contact_processed",`,
	"hub":             "iproc_delivery_seconds_bucket{",
	"commit_to_write": "iproc_commit_to_socket_seconds_bucket{",
}

// histograms reads the cumulative bucket counts of the tail stages from
// base's /metrics: stage → upper bound → count. Nil when unavailable (the
// naive hub has none).
func histograms(base string) map[string]map[float64]float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string]map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for stage, prefix := range tailStages {
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			i := strings.Index(line, `le="`)
			j := strings.LastIndex(line, " ")
			if i < 0 || j < 0 {
				continue
			}
			le := line[i+4:]
			le = le[:strings.IndexByte(le, '"')]
			bound, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				bound, err = math.Inf(1), nil
			}
			n, err2 := strconv.ParseFloat(line[j+1:], 64)
			if err != nil || err2 != nil {
				continue
			}
			if out[stage] == nil {
				out[stage] = map[float64]float64{}
			}
			out[stage][bound] = n
		}
	}
	return out
}

// tailFigures returns, per stage, the bucket bound (ms) under which 50%
// and 99% of the observations between two readings fall.
func tailFigures(before, after map[string]map[float64]float64) map[string]any {
	if after == nil {
		return nil
	}
	res := map[string]any{}
	for stage, buckets := range after {
		bounds := make([]float64, 0, len(buckets))
		for b := range buckets {
			bounds = append(bounds, b)
		}
		sort.Float64s(bounds)
		total := buckets[math.Inf(1)] - before[stage][math.Inf(1)]
		if total <= 0 {
			continue
		}
		at := func(q float64) float64 {
			for _, b := range bounds {
				if buckets[b]-before[stage][b] >= q*total {
					if math.IsInf(b, 1) {
						return -1 // past the last bucket
					}
					return round(b*1000, 1)
				}
			}
			return -1
		}
		res[stage] = map[string]float64{"count": total, "p50_le_ms": at(0.5), "p99_le_ms": at(0.99)}
	}
	return res
}
