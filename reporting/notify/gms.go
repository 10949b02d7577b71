package notify

import (
	"encoding/json"

	"github.com/go-json-experiment/json/jsontext"
)

// callback is the view of a GMS callback status notification (seed 003).
// Mandatory: event_id (any name starting with _cbe_: the Transaction List
// decides which events are sent and GMS versions add names), timestamp and
// _service_id. c_agent_id and c_agent_extension route the event to an agent,
// so they must be text when present. Every other attribute (notify_params,
// notify_custom) is free-form and kept as is.
var callback = newView(
	rule{name: "event_id", kind: kindText, required: true, prefix: "_cbe_"},
	req(stamp("timestamp")),
	guid("_service_id"),
	optID("c_agent_id"),
	optID("c_agent_extension"),
)

// wrapper is the view of the GMS {"deviceId", "message"} envelope.
var wrapper = newView(optID("deviceId"))

// DecodeCallback decodes and validates a GMS callback status body (seed 003):
// one _cbe_* notification object, a {"deviceId", "message": {...}} wrapper
// (message may also be a string holding the JSON object), or a non-empty
// array of either (at most MaxBatch). An array is accepted or refused as a
// whole; its problems are named "[i].field" (and "[i].message.field" inside
// a wrapper). isArray reports whether the body was an array, so the caller
// can answer with seqs. Failures are *Error.
func DecodeCallback(body []byte) (ns []Notification, isArray bool, err error) {
	p, perr := scan(body, true)
	if perr != nil {
		return nil, p.array, perr
	}
	defer p.release()
	if !p.array {
		n, ps, e := decodeCallbackItem(p.obj, -1)
		if e != nil {
			return nil, false, e
		}
		if len(ps) > 0 {
			return nil, false, invalid(ps)
		}
		return []Notification{n}, false, nil
	}
	ns = make([]Notification, 0, len(p.items))
	var all []problem
	for i, obj := range p.items {
		if obj == nil {
			all = append(all, problem{i, "", "must be an object"})
			continue
		}
		n, ps, e := decodeCallbackItem(obj, i)
		if e != nil {
			return nil, true, e
		}
		all = append(all, ps...)
		ns = append(ns, n)
	}
	if len(all) > 0 {
		return nil, true, invalid(all)
	}
	return ns, true, nil
}

// decodeCallbackItem checks one notification or wrapper; item is its array
// index or -1.
func decodeCallbackItem(obj *object, item int) (Notification, []problem, *Error) {
	msg := obj.get("message")
	if obj.get("event_id") != nil || msg == nil {
		vals, ps := callback.check(obj, item)
		defer releaseValues(vals)
		if len(ps) > 0 {
			return Notification{}, ps, nil
		}
		return callbackNotification(compact(obj.raw), obj.fields(), vals), nil, nil
	}

	// A {"deviceId", "message"} wrapper.
	_, ps := wrapper.check(obj, item)
	var inner *object
	switch msg.kind {
	case '{':
		var e *Error
		if inner, e = scanObject(msg.raw); e != nil { // cannot fail: checked as part of the body
			return Notification{}, nil, e
		}
	case '"': // GMS may carry the message as JSON text
		var e *Error
		if inner, e = scanObject([]byte(msg.text)); e != nil {
			ps = append(ps, problem{item, "message", "must be a JSON object (" + e.Message + ")"})
		}
	default:
		ps = append(ps, problem{item, "message", "must be an object"})
	}
	if inner == nil {
		return Notification{}, ps, nil
	}
	defer inner.release()
	vals, ips := callback.check(inner, item)
	defer releaseValues(vals)
	for _, p := range ips {
		p.field = "message." + p.field
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		return Notification{}, ps, nil
	}
	// The data is the inner object with deviceId added (replacing one the
	// message may carry); a null deviceId is not added.
	out := &object{members: make([]member, 0, len(inner.members)+1)}
	for _, mb := range inner.members {
		if mb.name != "deviceId" {
			out.members = append(out.members, mb)
		}
	}
	if dev := obj.get("deviceId"); dev != nil && dev.kind != 'n' {
		out.members = append(out.members, *dev)
	} else if dev := inner.get("deviceId"); dev != nil {
		out.members = append(out.members, *dev)
	}
	return callbackNotification(encodeObject(out), out.fields(), vals), nil, nil
}

func callbackNotification(data json.RawMessage, fields map[string]string, vals values) Notification {
	agent, _ := callback.get(vals, "c_agent_id")
	return Notification{Topic: TopicCallback, Data: data, AgentID: agent, Fields: fields}
}

// encodeObject writes the members of obj as one compact JSON object.
func encodeObject(obj *object) json.RawMessage {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for i, mb := range obj.members {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = jsontext.AppendQuote(b, mb.name) // names are valid UTF-8: checked by scan
		b = append(b, ':')
		b = append(b, compact(mb.raw)...)
	}
	return append(b, '}')
}
