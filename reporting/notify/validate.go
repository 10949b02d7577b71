package notify

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
)

// validate is the one validator instance, built on first use (building it
// has no side effects; sync.OnceValue makes it safe for concurrent use).
var validate = sync.OnceValue(newValidator)

// newValidator builds the validator: field names come from the json tags of
// the view structs, and "actor" is the 0–5 range of GSW_CAMPAIGN_GROUP_ACTOR.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	v.RegisterAlias("actor", "min=0,max=5")
	return v
}

// The field types of the view structs; check converts map values into them.
var (
	textType = reflect.TypeFor[*string]()
	intType  = reflect.TypeFor[*int64]()
	timeType = reflect.TypeFor[*time.Time]()
)

// field is a view struct field: its JSON name, index and type.
type field struct {
	name  string
	index int
	typ   reflect.Type
}

// viewFields caches the fields of each view struct type (reflect.Type →
// []field); the zero sync.Map is ready to use.
var viewFields sync.Map

// fieldsOf returns the fields of a view struct type.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := viewFields.Load(t); ok {
		return fs.([]field)
	}
	fs := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fs = append(fs, field{name: name, index: i, typ: f.Type})
	}
	viewFields.Store(t, fs)
	return fs
}

// check fills view (a pointer to a struct of *string, *int64 and *time.Time
// fields tagged with the JSON names) from m, then runs the struct's validate
// rules, and returns the problems of both steps. An absent or null field
// leaves its pointer nil; so does an empty string for an integer or timestamp
// field (the vendors leave unassigned fields empty), which then fails
// "required" when the field is mandatory.
func check(m map[string]any, view any, item int) []problem {
	var ps []problem
	rv := reflect.ValueOf(view).Elem()
	for _, f := range fieldsOf(rv.Type()) {
		name, i := f.name, f.index
		raw, ok := m[name]
		if !ok || raw == nil {
			continue
		}
		switch f.typ {
		case textType:
			s, ok := Text(raw)
			if !ok {
				ps = append(ps, problem{item, name, "must be a string"})
				continue
			}
			rv.Field(i).Set(reflect.ValueOf(&s))
		case intType:
			if s, isStr := raw.(string); isStr && s == "" {
				continue
			}
			n, ok := Int(raw)
			if !ok {
				ps = append(ps, problem{item, name, "must be an integer"})
				continue
			}
			rv.Field(i).Set(reflect.ValueOf(&n))
		case timeType:
			if s, isStr := raw.(string); isStr && s == "" {
				continue
			}
			t, ok := Time(raw)
			if !ok {
				ps = append(ps, problem{item, name, "must be a timestamp (epoch seconds.millis)"})
				continue
			}
			rv.Field(i).Set(reflect.ValueOf(&t))
		}
	}
	bad := make(map[string]bool, len(ps))
	for _, p := range ps {
		bad[p.field] = true
	}
	err := validate().Struct(view)
	var ves validator.ValidationErrors
	if errors.As(err, &ves) {
		for _, fe := range ves {
			if bad[fe.Field()] { // already reported as the wrong type
				continue
			}
			ps = append(ps, problem{item, fe.Field(), explain(fe, m)})
		}
	} else if err != nil {
		ps = append(ps, problem{item, "body", "cannot be validated"})
	}
	return ps
}

// explain turns a validator failure into the reason shown to the sender.
func explain(fe validator.FieldError, m map[string]any) string {
	switch fe.Tag() {
	case "required":
		if s, ok := m[fe.Field()].(string); ok && s == "" {
			return "must not be empty"
		}
		return "required"
	case "eq":
		return "must be " + fe.Param()
	case "oneof":
		return "must be one of " + strings.Join(strings.Fields(fe.Param()), ", ")
	case "actor":
		return "must be an integer from 0 to 5"
	case "startswith":
		return "must start with " + fe.Param()
	case "min":
		if fe.Kind() == reflect.String {
			if fe.Param() == "1" {
				return "must not be empty"
			}
			return "must be at least " + fe.Param() + " characters"
		}
		return "must be at least " + fe.Param()
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must be at most " + fe.Param()
	}
	return "is invalid (" + fe.Tag() + ")"
}
