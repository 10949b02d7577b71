package journey

import (
	"encoding/json"
	"testing"
	"time"
)

// appendRecord writes the bytes encoding/json writes, for ordinary records
// and for strings that need escaping (quotes, control characters, HTML
// characters, U+2028, invalid UTF-8), so that stored journeys read back the
// same whichever encoder wrote them.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	odd := "a\"b\\c\nd\re\tf\bg\fh\x01i<j>k&l\u2028m\u2029n\xffo é 😀"
	for _, r := range []record{
		{},
		{ID: "ATT-1", IDs: []string{"ATT-1", "conn-2"}, Updated: time.Date(2026, 12, 2, 17, 0, 0, 123456789, time.UTC),
			Items: []item{{Key: "cp:ATT-1", Kind: kindContact, Start: 1700000000000, End: 1700000001000, Seq: 7, Ord: 2,
				CallID: "ATT-1", Device: "7001", DeviceType: "Queue", Description: "Queued"}, {Key: "k", Kind: kindCDR, CallID: "c"}}},
		{ID: odd, IDs: []string{odd}, Agents: []string{"1001", odd}, Exts: []string{"7001"}, Updated: time.Unix(0, 5).UTC(),
			Items: []item{{Key: odd, Kind: odd, CallID: odd, Device: odd, DeviceType: odd, Description: odd, Start: -3}}},
		{ID: "x", IDs: []string{}, Items: []item{}, Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); string(got) != string(want) {
			t.Errorf("appendRecord:\n got %s\nwant %s", got, want)
		}
	}
}

// BenchmarkAppendRecord encodes a journey of a ContactProcessed's steps.
func BenchmarkAppendRecord(b *testing.B) {
	r := record{ID: "ATT-1", IDs: []string{"ATT-1"}, Agents: []string{"1001"}, Updated: time.Now().UTC()}
	for i := range 8 {
		r.Items = append(r.Items, item{Key: "cp:ATT-1", Kind: kindContact, Start: 1700000000000 + int64(i), End: 1700000001000,
			Seq: 7, CallID: "ATT-1", Device: "7001", DeviceType: "Queue", Description: "Queued in 7001"})
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendRecord(buf[:0], &r)
	}
}
