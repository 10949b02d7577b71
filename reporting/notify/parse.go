package notify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// parsed is a body read by parse: a top-level object or array.
type parsed struct {
	obj   map[string]any   // the top-level object, or nil
	items []map[string]any // the top-level array's items (nil entries: not objects)
	raws  [][]byte         // the raw text of each item, or of the object (raws[0])
	array bool
}

// parse reads body as one JSON object or, when allowArray, one array of
// values. It is a strict RFC 8259 parser that also refuses what
// encoding/json lets through silently: invalid UTF-8, duplicate keys and
// nesting deeper than MaxDepth; and it refuses trailing data. Objects become
// map[string]any, arrays []any, numbers json.Number (kept digit for digit).
// A hand-written parser, because json.Decoder.Token is slow (about 1.5 µs per
// token) and would make large bodies a cheap denial of service.
func parse(body []byte, allowArray bool) (parsed, *Error) {
	var out parsed
	if len(body) > MaxBodyBytes {
		return out, malformed("body: larger than " + itoa(MaxBodyBytes) + " bytes")
	}
	if !utf8.Valid(body) {
		return out, malformed("body is not valid UTF-8 at " + position(body, invalidUTF8At(body)))
	}
	p := parser{b: body}
	p.ws()
	if p.i == len(body) {
		return out, malformed("body is empty: expected a JSON object")
	}
	if c := body[p.i]; c != '{' && (!allowArray || c != '[') {
		if allowArray {
			return out, malformed("body must be a JSON object or an array of objects")
		}
		return out, malformed("body must be a JSON object")
	}
	if body[p.i] == '[' {
		out.array = true
		if err := p.array(&out); err != nil {
			return out, err
		}
	} else {
		start := p.i
		v, err := p.value(0)
		if err != nil {
			return out, err
		}
		out.obj = v.(map[string]any)
		out.raws = [][]byte{body[start:p.i]}
	}
	p.ws()
	if p.i != len(body) {
		return out, malformed("trailing data after the JSON value at " + position(body, p.i))
	}
	return out, nil
}

// ParseObject parses data, one JSON object, with the decoders' strict rules
// (no duplicate keys, valid UTF-8, bounded nesting, nothing after it).
// Numbers come back as json.Number, nested objects as map[string]any and
// arrays as []any. It is meant for reading stored event data (journeys);
// failures are *Error.
func ParseObject(data []byte) (map[string]any, error) {
	p, err := parse(data, false)
	if err != nil {
		return nil, err
	}
	return p.obj, nil
}

// parser is a cursor over a body that is valid UTF-8.
type parser struct {
	b    []byte
	i    int
	path []string // keys and [index]es leading to the value being read
}

// array reads the top-level array, keeping each item's raw text.
func (p *parser) array(out *parsed) *Error {
	p.i++ // [
	p.ws()
	if p.peek() == ']' {
		p.i++
		return &Error{Code: CodeInvalid, Message: "body: the array is empty: send at least one notification"}
	}
	for {
		if len(out.items) == MaxBatch {
			return &Error{Code: CodeInvalid, Message: "body: an array holds at most " + itoa(MaxBatch) + " notifications"}
		}
		p.path = append(p.path[:0], "["+itoa(len(out.items))+"]")
		p.ws()
		start := p.i
		v, err := p.value(1)
		if err != nil {
			return err
		}
		obj, _ := v.(map[string]any)
		out.items = append(out.items, obj)
		out.raws = append(out.raws, p.b[start:p.i])
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.unexpected("after array element (a missing comma?)")
		}
	}
}

// value reads one JSON value at the given nesting depth.
func (p *parser) value(depth int) (any, *Error) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, p.eof()
	}
	switch c := p.b[p.i]; {
	case c == '{':
		if depth >= MaxDepth {
			return nil, p.tooDeep()
		}
		return p.object(depth)
	case c == '[':
		if depth >= MaxDepth {
			return nil, p.tooDeep()
		}
		return p.list(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, p.unexpected("looking for beginning of value")
}

func (p *parser) object(depth int) (any, *Error) {
	p.i++ // {
	var obj map[string]any
	if depth == 0 { // size the top-level map once: count the keys (nested ones too) roughly
		obj = make(map[string]any, min(bytes.Count(p.b[p.i:], []byte(`":`)), 256))
	} else {
		obj = make(map[string]any)
	}
	p.ws()
	if p.peek() == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.ws()
		if p.peek() != '"' {
			if p.i >= len(p.b) {
				return nil, p.eof()
			}
			return nil, p.unexpected("looking for beginning of object key string")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.path = append(p.path, key)
		if _, dup := obj[key]; dup {
			return nil, p.invalidHere("duplicate key")
		}
		p.ws()
		if p.peek() != ':' {
			if p.i >= len(p.b) {
				return nil, p.eof()
			}
			return nil, p.unexpected("after object key")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.path = p.path[:len(p.path)-1]
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj, nil
		default:
			if p.i >= len(p.b) {
				return nil, p.eof()
			}
			return nil, p.unexpected("after object key:value pair (a missing comma?)")
		}
	}
}

func (p *parser) list(depth int) (any, *Error) {
	p.i++ // [
	arr := []any{}
	p.ws()
	if p.peek() == ']' {
		p.i++
		return arr, nil
	}
	for {
		p.path = append(p.path, "["+itoa(len(arr))+"]")
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.path = p.path[:len(p.path)-1]
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr, nil
		default:
			if p.i >= len(p.b) {
				return nil, p.eof()
			}
			return nil, p.unexpected("after array element (a missing comma?)")
		}
	}
}

// str reads a string (the cursor is on its opening quote). Lone surrogate
// escapes become U+FFFD, as encoding/json does.
func (p *parser) str() (string, *Error) {
	p.i++ // "
	start := p.i
	for p.i < len(p.b) { // fast path: no escapes
		c := p.b[p.i]
		if c == '"' {
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.unexpected("in string literal")
		}
		p.i++
	}
	buf := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < 0x20:
			return "", p.unexpected("in string literal")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		p.i++
		switch e := p.b[p.i]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4(p.i + 1)
			if !ok {
				return "", p.unexpected("in \\u hexadecimal character escape")
			}
			p.i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if p.i+2 < len(p.b) && p.b[p.i+1] == '\\' && p.b[p.i+2] == 'u' {
					r2, ok2 = p.hex4(p.i + 3)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					p.i += 6
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.unexpected("in string escape code")
		}
		p.i++
	}
	return "", p.eof()
}

// hex4 reads four hex digits at i.
func (p *parser) hex4(i int) (rune, bool) {
	if i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// number reads a number per the JSON grammar and keeps its text.
func (p *parser) number() (any, *Error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	switch {
	case p.peek() == '0':
		p.i++
	case p.digits() == 0:
		return nil, p.unexpectedOrEOF("in numeric literal")
	}
	if p.peek() == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, p.unexpectedOrEOF("after decimal point in numeric literal")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if p.digits() == 0 {
			return nil, p.unexpectedOrEOF("in exponent of numeric literal")
		}
	}
	return json.Number(p.b[start:p.i]), nil
}

// digits skips ASCII digits and returns how many.
func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func (p *parser) literal(word string) *Error {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		for k := 0; k < len(word); k++ {
			if p.i >= len(p.b) {
				return p.eof()
			}
			if p.b[p.i] != word[k] {
				return p.unexpected("in literal " + word)
			}
			p.i++
		}
	}
	p.i += len(word)
	return nil
}

// ws skips JSON white space.
func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the byte at the cursor, 0 at the end.
func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// unexpected reports the character at the cursor.
func (p *parser) unexpected(context string) *Error {
	if p.i >= len(p.b) {
		return p.eof()
	}
	r, _ := utf8.DecodeRune(p.b[p.i:])
	return malformed("body is not valid JSON: invalid character " + strconv.QuoteRune(r) + " " + context + " at " + position(p.b, p.i))
}

func (p *parser) unexpectedOrEOF(context string) *Error {
	if p.i >= len(p.b) {
		return p.eof()
	}
	return p.unexpected(context)
}

func (p *parser) eof() *Error {
	return malformed("body is not valid JSON: unexpected end of input at " + position(p.b, len(p.b)))
}

func (p *parser) tooDeep() *Error {
	return p.invalidHere("nested deeper than " + itoa(MaxDepth) + " levels")
}

// invalidHere reports a request.invalid problem at the current path.
func (p *parser) invalidHere(why string) *Error {
	field := joinPath(p.path)
	return &Error{Code: CodeInvalid, Message: field + ": " + why, Fields: []string{field}}
}

// joinPath renders a path as a.b[2].c ("body" when empty).
func joinPath(path []string) string {
	var b strings.Builder
	for i, s := range path {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// compact returns raw, valid JSON, without white space outside strings, in a
// new slice. It copies runs rather than bytes: strings are found with
// bytes.IndexByte.
func compact(raw []byte) json.RawMessage {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		j := i
		for j < len(raw) && raw[j] != '"' && raw[j] > ' ' {
			j++
		}
		out = append(out, raw[i:j]...)
		if j == len(raw) {
			break
		}
		if raw[j] != '"' { // white space: in valid JSON the only bytes <= ' ' outside strings
			i = j + 1
			continue
		}
		k := j + 1
		for {
			q := bytes.IndexByte(raw[k:], '"')
			if q < 0 { // unreachable for valid JSON
				k = len(raw)
				break
			}
			end := k + q
			n := 0
			for m := end - 1; m > j && raw[m] == '\\'; m-- {
				n++
			}
			k = end + 1
			if n%2 == 0 {
				break
			}
		}
		out = append(out, raw[j:k]...)
		i = k
	}
	return out
}

// position renders a byte offset as "offset N (line L, column C)".
func position(body []byte, off int) string {
	off = max(0, min(off, len(body)))
	line := 1 + bytes.Count(body[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(body[:off], '\n')
	return "offset " + itoa(off) + " (line " + itoa(line) + ", column " + itoa(col) + ")"
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func itoa(i int) string { return strconv.Itoa(i) }

// sortProblems orders problems by array item, then field name.
func sortProblems(ps []problem) {
	slices.SortStableFunc(ps, func(a, b problem) int {
		if a.item != b.item {
			return a.item - b.item
		}
		return strings.Compare(a.field, b.field)
	})
}
