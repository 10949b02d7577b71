package notify

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bounds of the timestamps Time accepts.
const (
	// msThreshold: an integer timestamp above it is taken as milliseconds
	// (in seconds it would be after the year 5138).
	msThreshold = 100_000_000_000
	// maxUnixSeconds is 9999-12-31T23:59:59Z.
	maxUnixSeconds = 253402300799
)

// Int returns v as an integer: a JSON number with an integral value
// (json.Number, float64, or a Go integer) or a string of decimal digits with
// an optional leading minus sign. Anything else, fractions included, is not
// an integer.
func Int(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return 0, false
		}
		return floatInt(f)
	case float64:
		return floatInt(x)
	case int:
		return int64(x), true
	case int64:
		return x, true
	case string:
		if !isDigits(strings.TrimPrefix(x, "-")) {
			return 0, false
		}
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, false
		}
		return i, true
	}
	return 0, false
}

// floatInt returns f as an int64 when it is integral and in range.
func floatInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// Time returns v as a UTC time. Accepted: the vendors' "seconds.millis"
// (Unix epoch seconds with an optional fraction of up to 9 digits, as a
// string or a JSON number: OCS GSW_TIMESTAMP and the GSW_* call timestamps,
// GSW_DATE_TIME of seed 000 "UTC time as seconds, with msec precision", GMS
// "timestamp" as whole seconds); integers above 1e11 are read as epoch
// milliseconds; and, leniently, RFC 3339 strings. Negative values, empty
// strings and times after year 9999 are not times.
func Time(v any) (time.Time, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
	case float64:
		if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			return time.Time{}, false
		}
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int:
		s = strconv.Itoa(x)
	case time.Time:
		return x.UTC(), !x.IsZero()
	default:
		return time.Time{}, false
	}
	if s == "" {
		return time.Time{}, false
	}
	if t, ok := epoch(s); ok {
		return t, true
	}
	if strings.ContainsAny(s, "eE") && !strings.ContainsAny(s, "T:") { // a number in exponent form
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || f > maxUnixSeconds {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() > 9999 || t.Unix() < 0 {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// epoch parses "seconds" or "seconds.fraction" exactly (no float rounding).
func epoch(s string) (time.Time, bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !isDigits(whole) || (hasFrac && (!isDigits(frac) || len(frac) > 9)) {
		return time.Time{}, false
	}
	if len(whole) > 15 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if hasFrac {
		nsec, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if !hasFrac && sec > msThreshold {
		nsec = (sec % 1000) * int64(time.Millisecond)
		sec /= 1000
	}
	if sec > maxUnixSeconds {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Text returns v as text: a JSON string as is, a JSON number as its literal
// (so an agent id sent as 1001 reads "1001"). Anything else is not text.
func Text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	}
	return "", false
}
