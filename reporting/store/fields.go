package store

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"
)

// ScalarFields returns the text of every top-level scalar member of data, a
// JSON object: strings unescaped; numbers, true, false and null as written.
// It returns nil when data is not a valid object. Ingest fills Event.Fields
// while decoding; the logs' Read fills it with this, so replayed events carry
// it too.
func ScalarFields(data []byte) map[string]string {
	d := jsontext.NewDecoder(bytes.NewBuffer(data))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	m := make(map[string]string)
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil
		}
		name := tok.String() // before the next read voids tok
		v, err := d.ReadValue()
		if err != nil {
			return nil
		}
		switch v.Kind() {
		case '{', '[':
		case '"':
			b, err := jsontext.AppendUnquote(nil, v)
			if err != nil {
				return nil
			}
			m[name] = string(b)
		default:
			m[name] = string(v)
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return nil
	}
	return m
}
