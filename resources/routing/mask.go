package routing

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"iproc/reporting/store"
)

// CustomerFields are the fields that hold customer data (SPEC §3.6): their
// values are sent whole only to the agent an event or call belongs to and
// to agents allowed customer data in full; everyone else gets them masked
// to their last four characters.
type CustomerFields struct {
	names  map[string]bool
	quoted [][]byte // `"name"`, to skip data that holds none of them
}

// DefaultCustomerFields are the customer-data fields of the seed formats:
// the customer's phone number in OCS (GSW_PHONE), GMS callbacks
// (_customer_number, _phone_number) and dialer CDRs (client_number,
// dial_number).
var DefaultCustomerFields = []string{"GSW_PHONE", "_customer_number", "_phone_number", "client_number", "dial_number"}

// NewCustomerFields makes the set of names.
func NewCustomerFields(names ...string) CustomerFields {
	c := CustomerFields{names: map[string]bool{}}
	for _, n := range names {
		if n != "" && !c.names[n] {
			c.names[n] = true
			c.quoted = append(c.quoted, []byte(`"`+n+`"`))
		}
	}
	return c
}

// Has reports whether name is a customer-data field.
func (c CustomerFields) Has(name string) bool { return c.names[name] }

// Mask returns data with the value of every customer-data field, at any
// depth, masked (see MaskValue); changed is false, and data returned as it
// is, when there was nothing to mask. Data that is not JSON is returned as
// it is.
func (c CustomerFields) Mask(data json.RawMessage) (masked json.RawMessage, changed bool) {
	if !c.mentioned(data) {
		return data, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return data, false
	}
	if !c.walk(v) {
		return data, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return data, false
	}
	return out, true
}

// mentioned reports whether data may hold a customer-data field.
func (c CustomerFields) mentioned(data []byte) bool {
	for _, q := range c.quoted {
		if bytes.Contains(data, q) {
			return true
		}
	}
	return false
}

// walk masks in place and reports whether anything was masked.
func (c CustomerFields) walk(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if c.names[k] {
				switch s := x.(type) {
				case string:
					t[k] = MaskValue(s)
					changed = true
				case json.Number:
					t[k] = MaskValue(s.String())
					changed = true
				}
				continue
			}
			changed = c.walk(x) || changed
		}
	case []any:
		for _, x := range t {
			changed = c.walk(x) || changed
		}
	}
	return changed
}

// MaskValue keeps the last four characters of s and stars the rest
// ("+15551230001" → "********0001"); four characters or fewer become
// "****".
func MaskValue(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 4 {
		return "****"
	}
	keep := s
	for range n - 4 {
		_, size := utf8.DecodeRuneInString(keep)
		keep = keep[size:]
	}
	return string(bytes.Repeat([]byte("*"), n-4)) + keep
}

// WholeCustomerData reports whether v gets the customer data of the topic
// event ev whole: v is the agent ev belongs to, or may see customer data in
// full.
func WholeCustomerData(v Viewer, ev store.Event) bool {
	if v.FullCustomerData {
		return true
	}
	own, ok := ownerOf(ev)
	if !ok {
		return false
	}
	mine, ok := v.owns(ev.Name)
	return ok && own == mine
}
