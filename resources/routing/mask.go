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

// Mask returns data with the value of every customer-data field (a string
// or a number), at any depth, masked (see MaskValue); changed is false, and
// data returned as it is, when there was nothing to mask. The rest of data
// is copied as it is, key order and spacing included. Data that is not
// JSON is returned as it is.
func (c CustomerFields) Mask(data json.RawMessage) (masked json.RawMessage, changed bool) {
	if !c.mentioned(data) {
		return data, false
	}
	// Masking keeps the length of most values: room for data and a little.
	m := masker{c: c, s: scanner{b: data}, out: make([]byte, 0, len(data)+len(data)/8)}
	if !m.value(0) || !m.changed {
		return data, false
	}
	return append(m.out, data[m.last:]...), true
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

// maxMaskDepth bounds the nesting Mask walks (stored events were checked at
// ingest to nest far less).
const maxMaskDepth = 128

// masker copies JSON text, masking the values of customer-data fields as it
// passes them: out holds what was copied, up to last in the input.
type masker struct {
	c       CustomerFields
	s       scanner
	out     []byte
	last    int
	changed bool
}

// value walks one value; it reports false for text that is not JSON.
func (m *masker) value(depth int) bool {
	s := &m.s
	s.ws()
	if s.i >= len(s.b) || depth > maxMaskDepth {
		return false
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		for first := true; ; first = false {
			s.ws()
			if first && s.eat('}') {
				return true
			}
			ks, ke, esc, ok := s.str()
			if !ok {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if m.c.hasRaw(s.b[ks:ke], esc) {
				if !m.maskValue() {
					return false
				}
			} else if !m.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			if !m.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	}
	return s.value() != kindBad
}

// maskValue passes the value of a customer-data field, masking it when it
// is a string or a number (anything else is left as it is).
func (m *masker) maskValue() bool {
	s := &m.s
	start := s.i
	kind := s.value()
	raw := s.b[start:s.i]
	switch {
	case kind == kindBad:
		return false
	case kind == kindString, kind == kindLiteral && raw[0] != 't' && raw[0] != 'f' && raw[0] != 'n':
		text, ok := scalar(raw, kind)
		if !ok {
			return false
		}
		quoted, _ := json.Marshal(MaskValue(text))
		m.out = append(append(m.out, s.b[m.last:start]...), quoted...)
		m.last = s.i
		m.changed = true
	}
	return true
}

// hasRaw reports whether the raw (unquoted, possibly escaped) key is a
// customer-data field.
func (c CustomerFields) hasRaw(raw []byte, escaped bool) bool {
	if !escaped {
		return c.names[string(raw)]
	}
	var k string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	return json.Unmarshal(q, &k) == nil && c.names[k]
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
	return v.FullCustomerData || v.isOwner(ev)
}
