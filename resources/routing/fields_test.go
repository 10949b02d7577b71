package routing

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestFieldText(t *testing.T) {
	data := []byte(` { "a" : "x\"y" , "n": -1.50e3, "t":true, "f": false, "z": null, "o": {"a": "inner"}, "l": [1, "}"], "e\u0073c": "ok", "dup": 1, "dup": 2 } `)
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"a", `x"y`, true},
		{"n", "-1.50e3", true},
		{"t", "true", true},
		{"f", "false", true},
		{"z", "null", true},
		{"o", "", false},
		{"l", "", false},
		{"esc", "ok", true},
		{"dup", "2", true},
		{"missing", "", false},
		{"inner", "", false},
	} {
		got, ok := FieldText(data, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FieldText(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{``, `[]`, `{`, `{"a"`, `{"a":`, `{"a":"x`, `{"a":1`, `{"a":{`, `"a"`} {
		if got, ok := FieldText([]byte(bad), "a"); ok {
			t.Errorf("FieldText(%q) = %q, true; want not found", bad, got)
		}
	}
}

// FuzzFieldText checks the scanner against encoding/json on every valid
// object: the same text for every top-level scalar field, nothing for the
// rest.
func FuzzFieldText(f *testing.F) {
	f.Add([]byte(`{"GSW_CAMPAIGN_GROUP_GUID":"G1","GSW_CALL_RESULT":33,"x":{"y":[1,2]}}`), "GSW_CALL_RESULT")
	f.Add([]byte(`{"a":"\u00e9\n","b":true,"c":null,"d":-0.5e-3}`), "a")
	f.Add([]byte(`{"a":1,"a":"two"}`), "a")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		got, ok := FieldText(data, name)
		if !utf8.Valid(data) {
			return // stored events are valid UTF-8 (ingest refuses the rest)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil || dec.More() || m == nil {
			return // not one valid object: any answer but a panic will do
		}
		want, wantOK := "", false
		switch v := m[name].(type) {
		case string:
			want, wantOK = v, true
		case json.Number:
			want, wantOK = v.String(), true
		case bool:
			want, wantOK = "false", true
			if v {
				want = "true"
			}
		case nil:
			if _, present := m[name]; present {
				want, wantOK = "null", true
			}
		}
		if got != want || ok != wantOK {
			t.Fatalf("FieldText(%q, %q) = %q, %v; encoding/json says %q, %v", data, name, got, ok, want, wantOK)
		}
	})
}
