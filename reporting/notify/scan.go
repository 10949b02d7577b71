package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// member is one top-level member of a decoded object.
type member struct {
	name string
	// kind is the value's kind: '"' string, '0' number, 't', 'f', 'n',
	// '{' object or '[' array.
	kind jsontext.Kind
	// text is a string's unescaped text, or a number, true, false or null
	// as written; empty for objects and arrays.
	text string
	// raw is the value's JSON text, a slice of the body.
	raw []byte
}

// object is a decoded JSON object: its text and its top-level members, in
// the order sent.
type object struct {
	raw     []byte
	members []member
	list    *[]member // where members came from (release)
}

// memberLists recycles objects' member lists (release), so that a decoded
// body's members cost no allocation once the pool is warm.
var memberLists = sync.Pool{New: func() any { return new([]member) }}

// newObject returns an object whose member list has room for size members.
func newObject(size int) *object {
	ms := memberLists.Get().(*[]member)
	if cap(*ms) < size {
		*ms = make([]member, 0, size)
	}
	return &object{members: (*ms)[:0], list: ms}
}

// release hands o's member list back for reuse; o must not be used after.
// Objects that are never released are simply collected.
func (o *object) release() {
	if o == nil || o.list == nil {
		return
	}
	clear(o.members) // no references to the body are kept
	*o.list = o.members[:0]
	memberLists.Put(o.list)
	o.members, o.raw, o.list = nil, nil, nil
}

// get returns the member called name, nil when absent.
func (o *object) get(name string) *member {
	for i := range o.members {
		if o.members[i].name == name {
			return &o.members[i]
		}
	}
	return nil
}

// fields returns the text of every scalar top-level member (strings
// unescaped, numbers, true, false and null as written), for store.Meta.
func (o *object) fields() map[string]string {
	m := make(map[string]string, len(o.members))
	for _, mb := range o.members {
		if mb.kind != '{' && mb.kind != '[' {
			m[mb.name] = mb.text
		}
	}
	return m
}

// parsed is a body read by scan: one object, or the items of an array.
type parsed struct {
	obj   *object   // the top-level object, or nil
	items []*object // the top-level array's items (nil entries: not objects)
	array bool
}

// release hands the member lists of p's objects back for reuse.
func (p parsed) release() {
	p.obj.release()
	for _, it := range p.items {
		it.release()
	}
}

// scanner reads one body with a jsontext.Decoder, which rejects invalid
// UTF-8 and duplicate member names, and reports byte offsets and JSON
// pointers. Scanners are pooled.
type scanner struct {
	body []byte
	// text is body as a string, made once: member texts without escapes are
	// slices of it, so a body costs one string however many fields it has.
	text string
	buf  bytes.Buffer
	dec  jsontext.Decoder
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

// scan reads body as one JSON object or, when allowArray, one array of
// values, keeping the top-level members of each object. Besides the JSON
// grammar (jsontext), it refuses invalid UTF-8, duplicate member names at
// any depth, nesting deeper than MaxDepth and trailing data.
func scan(body []byte, allowArray bool) (parsed, *Error) {
	var out parsed
	if len(body) > MaxBodyBytes {
		return out, malformed("body: larger than " + itoa(MaxBodyBytes) + " bytes")
	}
	if !utf8.Valid(body) {
		return out, malformed("body is not valid UTF-8 at " + position(body, invalidUTF8At(body)))
	}
	start := skipSpace(body, 0)
	if start == len(body) {
		return out, malformed("body is empty: expected a JSON object")
	}
	if c := body[start]; c != '{' && (!allowArray || c != '[') {
		if allowArray {
			return out, malformed("body must be a JSON object or an array of objects")
		}
		return out, malformed("body must be a JSON object")
	}
	s := scanners.Get().(*scanner)
	defer func() {
		s.body, s.text = nil, ""
		s.buf = bytes.Buffer{}
		s.dec.Reset(&s.buf) // drop the decoder's references to body
		scanners.Put(s)
	}()
	s.body, s.text = body, string(body)
	s.buf = *bytes.NewBuffer(body)
	s.dec.Reset(&s.buf)
	var err *Error
	if body[start] == '[' {
		out.array = true
		out.items, err = s.array()
	} else {
		out.obj, err = s.object(0, nil)
	}
	if err != nil {
		return out, err
	}
	if end := skipSpace(body, int(s.dec.InputOffset())); end != len(body) {
		return out, malformed("trailing data after the JSON value at " + position(body, end))
	}
	return out, nil
}

// scanObject reads data, one JSON object, with scan's rules.
func scanObject(data []byte) (*object, *Error) {
	p, err := scan(data, false)
	if err != nil {
		return nil, err
	}
	return p.obj, nil
}

// array reads the top-level array; each object item's members are kept.
func (s *scanner) array() ([]*object, *Error) {
	if _, err := s.dec.ReadToken(); err != nil { // [
		return nil, s.syntax(err)
	}
	if s.dec.PeekKind() == ']' {
		return nil, &Error{Code: CodeInvalid, Message: "body: the array is empty: send at least one notification"}
	}
	var items []*object
	for s.dec.PeekKind() != ']' {
		if len(items) == MaxBatch {
			return nil, &Error{Code: CodeInvalid, Message: "body: an array holds at most " + itoa(MaxBatch) + " notifications"}
		}
		path := []string{"[" + itoa(len(items)) + "]"}
		if s.dec.PeekKind() == '{' {
			obj, err := s.object(1, path)
			if err != nil {
				return nil, err
			}
			items = append(items, obj)
			continue
		}
		v, err := s.dec.ReadValue()
		if err != nil {
			return nil, s.syntax(err)
		}
		if e := checkDepth(v, 1, path); e != nil {
			return nil, e
		}
		items = append(items, nil)
	}
	if _, err := s.dec.ReadToken(); err != nil { // ]
		return nil, s.syntax(err)
	}
	return items, nil
}

// object reads an object at the given nesting depth (0: the body itself)
// whose path (for error messages) is path.
func (s *scanner) object(depth int, path []string) (*object, *Error) {
	if _, err := s.dec.ReadToken(); err != nil { // {
		return nil, s.syntax(err)
	}
	start := s.dec.InputOffset() - 1 // the offset of {
	// A body has room for a ContactProcessed (about 40 members) without
	// growing; the events of an array are callbacks (about 20).
	size := 32
	if depth == 0 {
		size = 48
	}
	obj := newObject(size)
	for s.dec.PeekKind() != '}' {
		name, err := s.dec.ReadValue()
		if err != nil {
			return nil, s.syntax(err)
		}
		mb := member{name: s.unquote(name)}
		v, err := s.dec.ReadValue()
		if err != nil {
			return nil, s.syntax(err)
		}
		mb.kind, mb.raw = v.Kind(), v
		switch mb.kind {
		case '{', '[':
			if e := checkDepth(v, depth+1, append(path, mb.name)); e != nil {
				return nil, e
			}
		case '"':
			mb.text = s.unquote(v)
		default:
			mb.text = s.slice(v)
		}
		obj.members = append(obj.members, mb)
	}
	if _, err := s.dec.ReadToken(); err != nil { // }
		return nil, s.syntax(err)
	}
	obj.raw = s.body[start:s.dec.InputOffset()]
	return obj, nil
}

// slice returns v, the value the decoder read last, as a slice of s.text
// (no copy): it ends at the decoder's input offset.
func (s *scanner) slice(v []byte) string {
	end := int(s.dec.InputOffset())
	off := end - len(v)
	if off < 0 || end > len(s.text) || s.text[off:end] != string(v) {
		return string(v) // unreachable: v is the body's
	}
	return s.text[off:end]
}

// unquote returns the text of the JSON string v, the value the decoder read
// last: a slice of s.text when it has no escapes.
func (s *scanner) unquote(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		end := int(s.dec.InputOffset()) - 1
		off := end - (len(v) - 2)
		if off < 1 || end > len(s.text) || s.text[off:end] != string(v[1:len(v)-1]) {
			return string(v[1 : len(v)-1])
		}
		return s.text[off:end]
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil { // unreachable: the decoder checked the string
		return ""
	}
	return string(b)
}

// syntax turns a decoder error into the request.malformed (or, for a
// duplicate name, request.invalid) Error naming where it is.
func (s *scanner) syntax(err error) *Error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return malformed("body is not valid JSON: unexpected end of input at " + position(s.body, len(s.body)))
	}
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return malformed("body is not valid JSON: " + err.Error())
	}
	if se.Err == jsontext.ErrDuplicateName {
		// The last token is the repeated name (never an array index).
		field := joinPath(append(pointerPath(se.JSONPointer.Parent()), se.JSONPointer.LastToken()))
		return &Error{Code: CodeInvalid, Message: field + ": duplicate key", Fields: []string{field}}
	}
	if errors.Is(se.Err, io.ErrUnexpectedEOF) {
		return malformed("body is not valid JSON: unexpected end of input at " + position(s.body, len(s.body)))
	}
	msg := "body is not valid JSON: " + se.Err.Error()
	if strings.Contains(msg, "expecting ',' or") {
		msg += " (a missing comma?)"
	}
	return malformed(msg + " at " + position(s.body, int(se.ByteOffset)))
}

// checkDepth refuses v, a valid value at the given depth whose path is
// path, when a container in it is at depth MaxDepth or deeper, naming the
// first such container.
func checkDepth(v []byte, depth int, path []string) *Error {
	if depth+maxNesting(v)-1 < MaxDepth {
		return nil
	}
	// Rare: walk the tokens to name the place.
	d := jsontext.NewDecoder(bytes.NewReader(v))
	for {
		tok, err := d.ReadToken()
		if err != nil {
			return nil
		}
		if k := tok.Kind(); k != '{' && k != '[' {
			continue
		}
		if depth+d.StackDepth()-1 < MaxDepth {
			continue
		}
		p := append([]string(nil), path...)
		i := 1
		for tok := range d.StackPointer().Tokens() { // one per level below v
			if kind, _ := d.StackIndex(i); kind == '[' {
				tok = "[" + tok + "]"
			}
			p = append(p, tok)
			i++
		}
		field := joinPath(p)
		return &Error{Code: CodeInvalid, Message: field + ": nested deeper than " + itoa(MaxDepth) + " levels", Fields: []string{field}}
	}
}

// maxNesting returns how deeply containers nest in v, a valid JSON value
// (1 for a flat object or array, 0 for a scalar).
func maxNesting(v []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// pointerPath returns the path of a JSON pointer (for joinPath): numeric tokens are taken
// as array indexes (an object member named with digits above the last token
// is rendered as an index too).
func pointerPath(p jsontext.Pointer) []string {
	var path []string
	for tok := range p.Tokens() {
		if isDigits(tok) {
			path = append(path, "["+tok+"]")
		} else {
			path = append(path, tok)
		}
	}
	return path
}

// skipSpace returns the offset of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
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
