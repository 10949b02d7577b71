package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are the sample payloads and broken variants every fuzzer starts
// from.
func fuzzSeeds(f *testing.F, samples ...string) {
	for _, s := range samples {
		f.Add([]byte(s))
	}
	for _, s := range []string{seedCallbackVerbatim, `{}`, `[]`, `{"a":{"a":1,"a":2}}`, "{\"x\":\"\xff\"}",
		`{"x":1} {}`, `[[[[[[[[[[[[[[]]]]]]]]]]]]]]`, `{"deviceId":"d","message":"{\"event_id\":\"_cbe_a\"}"}`} {
		f.Add([]byte(s))
	}
}

// checkOutcome asserts the contract every decoder keeps for any input.
func checkOutcome(t *testing.T, ns []Notification, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is %T, not *Error", err, err)
		}
		if e.Code != CodeMalformed && e.Code != CodeInvalid || e.Message == "" {
			t.Fatalf("error = %+v", e)
		}
		if ns != nil {
			t.Fatalf("notifications %v with error %v", ns, err)
		}
		return
	}
	if len(ns) == 0 {
		t.Fatal("no notification and no error")
	}
	for _, n := range ns {
		if m := objectOf(n.Data); !json.Valid(n.Data) || m == nil {
			t.Fatalf("data %q is not a JSON object", n.Data)
		}
		if n.Topic == "" {
			t.Fatal("no topic")
		}
	}
}

// objectOf decodes data as a JSON object with exact numbers, nil if it is
// not one.
func objectOf(data []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || dec.More() {
		return nil
	}
	return m
}

func FuzzDecodeContactProcessed(f *testing.F) {
	fuzzSeeds(f, sampleCP, sampleCGS)
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := DecodeContactProcessed(body, "")
		if err != nil {
			checkOutcome(t, nil, err)
			return
		}
		checkOutcome(t, []Notification{n}, nil)
		if len(n.DedupKey) <= len("cp:") {
			t.Fatalf("dedup key %q", n.DedupKey)
		}
		// The GUID itself is always an acceptable ETag.
		guid, _ := Text(objectOf(n.Data)["GSW_MESSAGE_GUID"])
		if _, err := DecodeContactProcessed(body, `"`+guid+`"`); err != nil {
			t.Fatalf("own GUID as ETag refused: %v", err)
		}
	})
}

func FuzzDecodeCampaignGroupState(f *testing.F) {
	fuzzSeeds(f, sampleCGS, sampleCP)
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := DecodeCampaignGroupState(body)
		if err != nil {
			checkOutcome(t, nil, err)
			return
		}
		checkOutcome(t, []Notification{n}, nil)
	})
}

func FuzzDecodeCallback(f *testing.F) {
	fuzzSeeds(f, sampleCallback, sampleTargetFound, sampleWrapper,
		"["+sampleCallback+","+sampleWrapper+"]")
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, isArray, err := DecodeCallback(body)
		checkOutcome(t, ns, err)
		if err == nil && !isArray && len(ns) != 1 {
			t.Fatalf("%d notifications from one object", len(ns))
		}
		var e *Error
		if errors.As(err, &e) && e.Code == CodeInvalid && !isArray && !slices.IsSorted(e.Fields) {
			t.Fatalf("fields %q not sorted", e.Fields)
		}
	})
}

func FuzzDecodeCDR(f *testing.F) {
	fuzzSeeds(f, sampleCDR, sampleCDRQueueHangup)
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := DecodeCDR(body)
		if err != nil {
			checkOutcome(t, nil, err)
			return
		}
		checkOutcome(t, []Notification{n}, nil)
	})
}

// surrogateEscape matches a \u escape of a UTF-16 surrogate, which jsontext
// refuses when it is not part of a valid pair (encoding/json turns it into
// U+FFFD).
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// FuzzScan checks the jsontext-based scanner against encoding/json: whatever
// it accepts, encoding/json accepts and reads the same (every top-level
// scalar's text, and compact keeps the value); whatever it refuses as
// malformed, encoding/json refuses too, or it is not an object, or it holds
// a lone surrogate escape.
func FuzzScan(f *testing.F) {
	fuzzSeeds(f, sampleCP, sampleCGS, sampleCallback, sampleWrapper, sampleCDR,
		`{"a":"\u00e9\ud83d\ude00x\\\"\/\b\f\n\r\t","b":[-0.5e+3,0,1E-2,true,false,null,{}],"c":{"d":[]}}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := scan(body, true)
		if err != nil {
			if err.Code == CodeMalformed && json.Valid(body) && utf8.Valid(body) && len(body) <= MaxBodyBytes && !surrogateEscape.Match(body) {
				if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
					t.Fatalf("valid JSON refused as malformed: %v", err)
				}
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var want any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if p.array {
			arr := want.([]any)
			for i, item := range p.items {
				if item != nil {
					sameObject(t, item, arr[i])
				}
			}
			return
		}
		sameObject(t, p.obj, want)
	})
}

// sameObject checks that obj's scalar texts and compacted text agree with
// want, what encoding/json read.
func sameObject(t *testing.T, obj *object, want any) {
	t.Helper()
	m, ok := want.(map[string]any)
	if !ok {
		t.Fatalf("object %q read as %T by encoding/json", obj.raw, want)
	}
	if len(obj.members) != len(m) {
		t.Fatalf("%d members, encoding/json %d", len(obj.members), len(m))
	}
	for k, text := range obj.fields() {
		var w string
		switch v := m[k].(type) {
		case string:
			w = v
		case json.Number:
			w = string(v)
		case bool:
			w = strconv.FormatBool(v)
		case nil:
			w = "null"
		default:
			t.Fatalf("%s: scalar %q, encoding/json %T", k, text, v)
		}
		if text != w {
			t.Fatalf("%s = %q, encoding/json %q", k, text, w)
		}
	}
	c := compact(obj.raw)
	if !json.Valid(c) || !reflect.DeepEqual(objectOrNil(c), want) {
		t.Fatalf("compact(%q) = %q", obj.raw, c)
	}
}

// objectOrNil decodes raw into any with exact numbers (nil on error).
func objectOrNil(raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}
