package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Decode parses one inbound frame. On failure it returns the Request as far
// as it could be read (Command may be empty) together with the Error to send:
// request.malformed when the frame is not a JSON object, request.invalid when
// a known envelope field has the wrong type.
func Decode(frame []byte) (Request, *Error) {
	if !utf8.Valid(frame) {
		// A binary frame may hold anything: what is echoed from it (id,
		// original) must still be valid UTF-8 in a text frame.
		frame = bytes.ToValidUTF8(frame, []byte("\uFFFD"))
	}
	req := Request{Raw: frame}
	var env struct {
		Command  json.RawMessage `json:"command"`
		Data     json.RawMessage `json:"data"`
		Resource json.RawMessage `json:"resource"`
		ID       json.RawMessage `json:"id"`
	}
	trimmed := bytes.TrimSpace(frame)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		req.Raw = nil
		return req, Errorf(CodeMalformed, "the frame is not a JSON object")
	}
	// Unmarshal checks the whole frame is valid JSON before decoding, so
	// one pass over a large frame is saved by not calling json.Valid too.
	if err := json.Unmarshal(trimmed, &env); err != nil {
		req.Raw = nil
		return req, Errorf(CodeMalformed, "the frame is not a JSON object")
	}
	var bad []string
	if cmd, ok := jsonString(env.Command); ok {
		req.Command = cmd
	} else if !isNull(env.Command) {
		bad = append(bad, "command: must be a string")
	}
	if id := bytes.TrimSpace(env.ID); len(id) > 0 && !isNull(id) {
		switch {
		case id[0] == '"' || id[0] == '-' || (id[0] >= '0' && id[0] <= '9'):
			req.ID = id
		default:
			bad = append(bad, "id: must be a string or a number")
		}
	}
	if res, ok := jsonString(env.Resource); ok {
		req.Resource = res
	} else if !isNull(env.Resource) {
		bad = append(bad, "resource: must be a string")
	}
	switch d := bytes.TrimSpace(env.Data); {
	case len(d) == 0 || isNull(d):
		req.Data = json.RawMessage("{}")
	case d[0] == '{':
		req.Data = d
	default:
		bad = append(bad, "data: must be an object")
	}
	if req.Command == "" && len(bad) == 0 {
		bad = append(bad, "command: required")
	}
	if len(bad) > 0 {
		return req, &Error{Code: CodeInvalid, Message: strings.Join(bad, "; ")}
	}
	return req, nil
}

// FailMalformed builds the failure response for a frame Decode refused.
func FailMalformed(req *Request, e *Error, frame []byte) Response {
	resp := Fail(req, e)
	if req.Raw == nil {
		resp.Original = RawOriginal(frame)
	}
	return resp
}

// DecodeData unmarshals a request's data into v, refusing unknown types with
// a request.invalid Error that names the field.
func DecodeData(r *Request, v any) *Error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok && te.Field != "" {
			return Errorf(CodeInvalid, "data.%s: must be %s", te.Field, kindName(te.Type.Kind().String()))
		}
		return Errorf(CodeInvalid, "data: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}

func kindName(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "uint64", "float64":
		return "a number"
	}
	return fmt.Sprintf("of type %s", k)
}

func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// containsFold reports whether s contains the ASCII word sub, ignoring case.
func containsFold(s []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(string(s[i:i+len(sub)]), sub) {
			return true
		}
	}
	return false
}
