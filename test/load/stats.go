package main

import (
	"math"
	"slices"
)

// latencyFigures are percentiles of a latency sample, in milliseconds.
type latencyFigures struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// latencies summarises microsecond samples (sorted in place).
func latencies(us []int32) latencyFigures {
	if len(us) == 0 {
		return latencyFigures{}
	}
	slices.Sort(us)
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(us)))) - 1
		return round(float64(us[max(i, 0)])/1000, 3)
	}
	return latencyFigures{Count: int64(len(us)), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: round(float64(us[len(us)-1])/1000, 3)}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
