package routing

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"iproc/protocol"
	"iproc/reporting/store"
)

func TestMaskValue(t *testing.T) {
	for in, want := range map[string]string{
		"+15551230001": "********0001",
		"0123":         "****",
		"12":           "****",
		"":             "****",
		"été-1234":     "****1234",
	} {
		if got := MaskValue(in); got != want {
			t.Errorf("MaskValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskEveryDepth(t *testing.T) {
	c := NewCustomerFields(DefaultCustomerFields...)
	data := json.RawMessage(`{"GSW_PHONE":"+15551230001","n":1.50,"deviceId":"d1","message":{"_customer_number":5551239876,"list":[{"dial_number":"0612345678"}]},"other":"+15551230001x"}`)
	got, changed := c.Mask(data)
	if !changed {
		t.Fatal("nothing masked")
	}
	for _, whole := range []string{"+15551230001\"", "5551239876", "0612345678"} {
		if strings.Contains(string(got), whole) {
			t.Errorf("%s left whole in %s", whole, got)
		}
	}
	for _, kept := range []string{`"GSW_PHONE":"********0001"`, `"_customer_number":"******9876"`, `"dial_number":"******5678"`, `"n":1.50`, `"other":"+15551230001x"`} {
		if !strings.Contains(string(got), kept) {
			t.Errorf("%s missing from %s", kept, got)
		}
	}
	plain := json.RawMessage(`{"GSW_AGENT_ID":"1001"}`)
	if got, changed := c.Mask(plain); changed || string(got) != string(plain) {
		t.Errorf("data without customer fields: %s, %v", got, changed)
	}
}

// Nobody guesses a customer's number by filtering on it: the filter
// matches only for viewers who may see the number whole.
func TestFilterOnCustomerDataOnlyForThoseWhoSeeIt(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	topic := []string{protocol.TopicContactProcessed}
	phone := Filter{"GSW_PHONE": "+15551230001"}
	ix.Subscribe("sup", sup, topic, phone)
	ix.Subscribe("full", Viewer{AgentID: "3001", SeesAll: true, FullCustomerData: true}, topic, phone)
	ix.Subscribe("ann", ann, topic, phone)
	ix.Subscribe("bob", bob, topic, phone)
	data, _ := json.Marshal(map[string]any{"GSW_AGENT_ID": "1001", "GSW_PHONE": "+15551230001"})
	ev := store.Event{Seq: 1, Name: protocol.TopicContactProcessed, Data: data, Meta: store.Meta{AgentID: "1001"}}
	if got := receivers(ix, ev); !slices.Equal(got, []string{"ann", "full"}) {
		t.Fatalf("receivers of a filter on the phone number: %v; want the call's agent and the full-data lead", got)
	}
	for v, want := range map[*Viewer]bool{&sup: false, &ann: true, &bob: false} {
		if got := WholeCustomerData(*v, ev); got != want {
			t.Errorf("WholeCustomerData(%+v) = %v, want %v", *v, got, want)
		}
	}
}

// maskByDecoding is Mask's specification: decode, mask every string or
// number under a customer-data name at any depth, and compare decoded.
func maskByDecoding(c CustomerFields, data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return nil, false
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if c.Has(k) {
					switch s := x.(type) {
					case string:
						t[k] = MaskValue(s)
					case json.Number:
						t[k] = MaskValue(s.String())
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(v)
	return v, true
}

// FuzzMask checks Mask against decoding on every valid JSON text: the same
// value once decoded, and valid JSON out.
func FuzzMask(f *testing.F) {
	f.Add([]byte(`{"GSW_PHONE":"+15551230001","x":[{"dial_number":5551234567}],"GSW_PHONE2":"a"}`))
	f.Add([]byte(`{"message":{"_customer_number":"\u0035\"551","deviceId":"d"},"client_number":null}`))
	f.Add([]byte(`[{"dial_number":{"GSW_PHONE":"1"}}, "GSW_PHONE"]`))
	c := NewCustomerFields(DefaultCustomerFields...)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := maskByDecoding(c, data)
		if !ok {
			c.Mask(data) // must not panic
			return
		}
		got, _ := c.Mask(data)
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.UseNumber()
		var have any
		if err := dec.Decode(&have); err != nil {
			t.Fatalf("Mask(%q) = %q: not JSON: %v", data, got, err)
		}
		if w, h := mustJSON(want), mustJSON(have); w != h {
			t.Fatalf("Mask(%q) = %s; decoding says %s", data, h, w)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
