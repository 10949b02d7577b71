package protocol

import (
	"bytes"
	"encoding/json"
)

// Request is a decoded client request.
type Request struct {
	// Command names what to do; always non-empty after Decode.
	Command string
	// Data is the request's data object; "{}" when the client sent none.
	Data json.RawMessage
	// Resource is the id of the resource addressed, or empty.
	Resource string
	// ID is the client's tag (a JSON string or number), echoed in the
	// response; nil when absent.
	ID json.RawMessage
	// Raw is the frame as received, for the masked original.
	Raw []byte
}

// Original returns the request as received with every password and token
// masked, for the "original" of confirm and failure responses. One longer
// than MaxOriginalBytes is echoed as {"command", "id", "truncated": true}.
func (r *Request) Original() json.RawMessage {
	if len(r.Raw) > MaxOriginalBytes {
		return r.truncated()
	}
	o := MaskPasswords(r.Raw)
	if len(o) > MaxOriginalBytes { // re-encoding escaped it past the limit

		return r.truncated()
	}
	return o
}

// truncated is the original of a request too large to echo: its command
// and id, each left out when it alone would pass MaxOriginalBytes.
func (r *Request) truncated() json.RawMessage {
	t := struct {
		Command   string          `json:"command,omitempty"`
		ID        json.RawMessage `json:"id,omitempty"`
		Truncated bool            `json:"truncated"`
	}{r.Command, r.ID, true}
	if len(t.ID) > MaxOriginalBytes/2 {
		t.ID = nil
	}
	if len(t.Command) > MaxOriginalBytes/4 {
		t.Command = ""
	}
	b, _ := json.Marshal(t)
	return b
}

// Response is a response envelope.
type Response struct {
	Command  string          `json:"command"`
	ID       json.RawMessage `json:"id,omitempty"`
	Result   string          `json:"result"`
	Data     any             `json:"data,omitempty"`
	Resource any             `json:"resource,omitempty"`
	Message  string          `json:"message,omitempty"`
	Failure  *Error          `json:"failure,omitempty"`
	Original json.RawMessage `json:"original,omitempty"`
}

// Success builds a success response carrying data (use struct{}{} or an
// empty map for an empty object).
func Success(r *Request, data any) Response {
	return Response{Command: r.Command, ID: r.ID, Result: ResultSuccess, Data: data}
}

// SuccessResource builds a success response carrying a resource.
func SuccessResource(r *Request, resource any) Response {
	return Response{Command: r.Command, ID: r.ID, Result: ResultSuccess, Resource: resource}
}

// Confirm builds a confirm response.
func Confirm(r *Request, message string) Response {
	return Response{Command: r.Command, ID: r.ID, Result: ResultConfirm, Message: message, Original: r.Original()}
}

// Fail builds a failure response.
func Fail(r *Request, e *Error) Response {
	return Response{Command: r.Command, ID: r.ID, Result: ResultFailure, Failure: e, Original: r.Original()}
}

// Event is a server-sent event envelope. Seq is zero (and omitted) for events
// that are not in the log, such as service.info and session.ended.
type Event struct {
	Name string `json:"name"`
	Seq  uint64 `json:"seq,omitempty"`
	Data any    `json:"data"`
}

// Marshal encodes v as one frame; it never fails for the types of this
// package holding JSON-encodable data, and falls back to an internal failure
// frame otherwise.
func Marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(Response{Result: ResultFailure, Failure: ErrInternal})
	}
	return b
}

// EventFrame encodes an event whose data is already JSON, without
// re-encoding the data: the one encoding is shared by all recipients.
func EventFrame(name string, seq uint64, data json.RawMessage) []byte {
	var b bytes.Buffer
	b.Grow(len(name) + len(data) + 40)
	b.WriteString(`{"name":`)
	nb, _ := json.Marshal(name)
	b.Write(nb)
	if seq != 0 {
		b.WriteString(`,"seq":`)
		b.WriteString(uitoa(seq))
	}
	b.WriteString(`,"data":`)
	if len(data) == 0 {
		b.WriteString("{}")
	} else {
		b.Write(data)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func uitoa(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(buf[i:])
}
