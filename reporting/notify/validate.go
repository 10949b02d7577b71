package notify

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// kind is the type a view field is read as.
type kind uint8

const (
	kindText kind = iota // a string, or a number taken as its literal
	kindInt              // an integer, as a number or a string of digits
	kindTime             // a timestamp (see Time)
)

// rule is one field of a view: its type and what it must satisfy. The
// checks run in this order and the first failure is reported: required,
// eq, oneof, startswith, minLen, maxLen, min/max.
type rule struct {
	name     string
	kind     kind
	required bool
	eq       string   // must equal
	oneof    []string // must be one of
	prefix   string   // must start with
	minLen   int      // characters, when > 0
	maxLen   int      // characters, when > 0
	hasRange bool     // min..max applies to an integer
	min, max int64
}

// view is the rules of one notification kind, with an index by name.
type view struct {
	rules []rule
	index map[string]int
}

func newView(rules ...rule) *view {
	v := &view{rules: rules, index: make(map[string]int, len(rules))}
	for i, r := range rules {
		v.index[r.name] = i
	}
	return v
}

// value is a field read by a view: absent (ok false), or its text, integer
// or time.
type value struct {
	ok   bool
	text string
	i    int64
	t    time.Time
}

// values are a decoded object's fields, in the order of its view's rules.
type values []value

// check reads obj's fields into a values of v's rules and returns them with
// the problems found: wrong types first, then the first failing rule of each
// field that has the right type. An absent or null field is absent; so is an
// empty string for an integer or a timestamp (the vendors leave unassigned
// fields empty), which then fails "required" as "must not be empty".
func (v *view) check(obj *object, item int) (values, []problem) {
	vals := newValues(len(v.rules))
	var ps []problem
	// Views have fewer than 64 rules: the flags stay on the stack.
	var emptyFlags, badFlags [64]bool
	empty, bad := emptyFlags[:], badFlags[:]
	if n := len(v.rules); n > len(empty) {
		empty, bad = make([]bool, n), make([]bool, n)
	}
	for i := range obj.members {
		mb := &obj.members[i]
		idx, ok := v.index[mb.name]
		if !ok || mb.kind == 'n' {
			continue
		}
		r := &v.rules[idx]
		switch r.kind {
		case kindText:
			if mb.kind != '"' && mb.kind != '0' {
				ps, bad[idx] = append(ps, problem{item, r.name, "must be a string"}), true
				continue
			}
			vals[idx] = value{ok: true, text: mb.text}
		case kindInt:
			if mb.kind == '"' && mb.text == "" {
				empty[idx] = true
				continue
			}
			n, ok := intOf(mb)
			if !ok {
				ps, bad[idx] = append(ps, problem{item, r.name, "must be an integer"}), true
				continue
			}
			vals[idx] = value{ok: true, i: n, text: mb.text}
		case kindTime:
			if mb.kind == '"' && mb.text == "" {
				empty[idx] = true
				continue
			}
			var t time.Time
			ok := mb.kind == '"' || mb.kind == '0'
			if ok {
				t, ok = Time(mb.text)
			}
			if !ok {
				ps, bad[idx] = append(ps, problem{item, r.name, "must be a timestamp (epoch seconds.millis)"}), true
				continue
			}
			vals[idx] = value{ok: true, t: t, text: mb.text}
		}
	}
	for i := range v.rules {
		if bad[i] {
			continue
		}
		if why := v.rules[i].fails(vals[i], empty[i]); why != "" {
			ps = append(ps, problem{item, v.rules[i].name, why})
		}
	}
	return vals, ps
}

// valueLists recycles the values check returns (releaseValues).
var valueLists = sync.Pool{New: func() any { return new(values) }}

// newValues returns n absent values.
func newValues(n int) values {
	vp := valueLists.Get().(*values)
	if cap(*vp) < n {
		return make(values, n)
	}
	vals := (*vp)[:n]
	clear(vals)
	return vals
}

// releaseValues hands vals back for reuse once the decoder has read them;
// values never released are simply collected.
func releaseValues(vals values) {
	clear(vals) // no references to the body are kept
	valueLists.Put(&vals)
}

// intOf reads a member as an integer: a number with an integral value, or a
// string of decimal digits with an optional minus sign.
func intOf(mb *member) (int64, bool) {
	switch mb.kind {
	case '0':
		return Int(json.Number(mb.text))
	case '"':
		return Int(mb.text)
	}
	return 0, false
}

// fails returns why val breaks r, "" when it does not.
func (r *rule) fails(val value, empty bool) string {
	if !val.ok {
		if !r.required {
			return ""
		}
		if empty {
			return "must not be empty"
		}
		return "required"
	}
	switch r.kind {
	case kindText:
		s := val.text
		if !r.required && s == "" { // omitempty
			return ""
		}
		switch {
		case r.eq != "" && s != r.eq:
			return "must be " + r.eq
		case r.oneof != nil && !slices.Contains(r.oneof, s):
			return "must be one of " + strings.Join(r.oneof, ", ")
		case r.prefix != "" && !strings.HasPrefix(s, r.prefix):
			return "must start with " + r.prefix
		case r.minLen == 1 && s == "":
			return "must not be empty"
		case r.maxLen > 0 && utf8.RuneCountInString(s) > r.maxLen:
			return "must be at most " + itoa(r.maxLen) + " characters"
		}
	case kindInt:
		if r.hasRange && (val.i < r.min || val.i > r.max) {
			return "must be an integer from " + itoa(int(r.min)) + " to " + itoa(int(r.max))
		}
	}
	return ""
}

// get returns the text of the field named name ("" when absent).
func (v *view) get(vals values, name string) (string, bool) {
	i, ok := v.index[name]
	if !ok || !vals[i].ok {
		return "", false
	}
	return vals[i].text, true
}
