package notify

import (
	"encoding/json"
	"testing"
	"time"
)

func TestInt(t *testing.T) {
	cases := []struct {
		in   any
		want int64
		ok   bool
	}{
		{json.Number("42"), 42, true},
		{json.Number("-7"), -7, true},
		{json.Number("1e3"), 1000, true},
		{json.Number("4.0"), 4, true},
		{json.Number("4.5"), 0, false},
		{json.Number("1e400"), 0, false},
		{json.Number("99999999999999999999"), 0, false},
		{float64(12), 12, true},
		{12.25, 0, false},
		{"17", 17, true},
		{"-17", -17, true},
		{"", 0, false},
		{"-", 0, false},
		{"+5", 0, false},
		{" 5", 0, false},
		{"5.0", 0, false},
		{"0x10", 0, false},
		{"99999999999999999999", 0, false},
		{true, 0, false},
		{nil, 0, false},
		{int64(3), 3, true},
	}
	for _, tc := range cases {
		got, ok := Int(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Int(%#v) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTime(t *testing.T) {
	base := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC) // 1700000000
	cases := []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{"1700000000.250", base.Add(250 * time.Millisecond), true},
		{"1700000000.25", base.Add(250 * time.Millisecond), true},
		{"1700000000", base, true},
		{"1700000000.123456789", base.Add(123456789), true},
		{json.Number("1700000000.5"), base.Add(500 * time.Millisecond), true},
		{json.Number("1700000000"), base, true},
		{json.Number("1.7e9"), base, true},
		{float64(1700000000.5), base.Add(500 * time.Millisecond), true},
		{"1700000000250", base.Add(250 * time.Millisecond), true}, // epoch milliseconds
		{"2023-11-14T22:13:20.250Z", base.Add(250 * time.Millisecond), true},
		{"2023-11-14T23:13:20+01:00", base, true},
		{" 1700000000 ", base, true},
		{"0", time.Unix(0, 0).UTC(), true},
		{"", time.Time{}, false},
		{"-1", time.Time{}, false},
		{"1700000000.", time.Time{}, false},
		{".5", time.Time{}, false},
		{"1700000000.1234567890", time.Time{}, false},
		{"1700000000,5", time.Time{}, false},
		{"99999999999999999999", time.Time{}, false},
		{"1e400", time.Time{}, false},
		{json.Number("-1e3"), time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{true, time.Time{}, false},
		{nil, time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := Time(tc.in)
		if !got.Equal(tc.want) || ok != tc.ok {
			t.Errorf("Time(%#v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("Time(%#v) not UTC", tc.in)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[any]string{"a": "a", json.Number("1001"): "1001", 5.5: "5.5"} {
		if got, ok := Text(in); !ok || got != want {
			t.Errorf("Text(%#v) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []any{nil, true, map[string]any{}, []any{}} {
		if _, ok := Text(in); ok {
			t.Errorf("Text(%#v) ok", in)
		}
	}
}
