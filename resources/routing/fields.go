package routing

import (
	"bytes"
	"encoding/json"
)

// FieldText returns the text of the top-level scalar field name of the JSON
// object data, as filters compare it (SPEC §3.3): a string as it is, a
// number as written, true, false and null by name. ok is false when the
// field is absent, is an object or an array, or data is not an object.
// When a name occurs more than once the last one counts, as with
// encoding/json.
//
// It scans data without decoding the fields it passes over, so that
// matching a filter does not cost a decode of the whole notification. Data
// is expected to be valid UTF-8, as stored events are (ingest refuses the
// rest); invalid bytes are passed through as they are.
func FieldText(data []byte, name string) (text string, ok bool) {
	s := scanner{b: data}
	s.ws()
	if !s.eat('{') {
		return "", false
	}
	for {
		s.ws()
		if s.eat('}') {
			return text, ok
		}
		ks, ke, kesc, good := s.str()
		if !good {
			return "", false
		}
		s.ws()
		if !s.eat(':') {
			return "", false
		}
		s.ws()
		vs := s.i
		kind := s.value()
		if kind == kindBad {
			return "", false
		}
		if keyIs(data[ks:ke], kesc, name) {
			text, ok = scalar(data[vs:s.i], kind)
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return text, ok
		}
		return "", false
	}
}

// keyIs reports whether the raw (unquoted, possibly escaped) key equals name.
func keyIs(raw []byte, escaped bool, name string) bool {
	if !escaped {
		return string(raw) == name
	}
	var k string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	return json.Unmarshal(q, &k) == nil && k == name
}

// scalar returns the filter text of a value of kind.
func scalar(raw []byte, kind valueKind) (string, bool) {
	switch kind {
	case kindString:
		inner := raw[1 : len(raw)-1]
		for _, c := range inner {
			if c == '\\' {
				var v string
				if json.Unmarshal(raw, &v) != nil {
					return "", false
				}
				return v, true
			}
		}
		return string(inner), true
	case kindLiteral:
		return string(raw), true
	}
	return "", false
}

type valueKind int

const (
	kindBad valueKind = iota
	kindString
	kindLiteral // number, true, false, null
	kindComposite
)

// scanner walks JSON text that is already known to be valid (stored
// events were validated at ingest); on text that is not, it reports
// failure rather than reading past the end.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string and returns the bounds of its contents and whether it
// holds an escape.
func (s *scanner) str() (start, end int, escaped, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	start = s.i
	for s.i < len(s.b) {
		q := bytes.IndexByte(s.b[s.i:], '"')
		if q < 0 {
			break
		}
		if bs := bytes.IndexByte(s.b[s.i:s.i+q], '\\'); bs >= 0 {
			escaped = true
			s.i += bs + 2 // the escaped character may be a quote
			continue
		}
		end = s.i + q
		s.i = end + 1
		return start, end, escaped, true
	}
	return 0, 0, false, false
}

// value skips one value and says what kind it was.
func (s *scanner) value() valueKind {
	if s.i >= len(s.b) {
		return kindBad
	}
	switch s.b[s.i] {
	case '"':
		if _, _, _, ok := s.str(); !ok {
			return kindBad
		}
		return kindString
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, _, ok := s.str(); !ok {
					return kindBad
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return kindComposite
				}
			}
			s.i++
		}
		return kindBad
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if s.i == start {
				return kindBad
			}
			return kindLiteral
		}
		s.i++
	}
	return kindBad
}
