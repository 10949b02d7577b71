package notify

import "testing"

// BenchmarkDecodeContactProcessed measures the ingest cost of the seed 001
// sample (about 1.5 KB).
func BenchmarkDecodeContactProcessed(b *testing.B) {
	body := []byte(sampleCP)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeContactProcessed(body, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCallbackArray measures a 100-event callback batch.
func BenchmarkDecodeCallbackArray(b *testing.B) {
	body := []byte("[" + sampleTargetFound)
	for range 99 {
		body = append(body, ","+sampleCallback...)
	}
	body = append(body, ']')
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeCallback(body); err != nil {
			b.Fatal(err)
		}
	}
}
