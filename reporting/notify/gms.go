package notify

import (
	"bytes"
	"encoding/json"
	"maps"
	"time"
)

// callback is the checked view of a GMS callback status notification
// (seed 003). Mandatory: event_id (any name starting with _cbe_: the
// Transaction List decides which events are sent and GMS versions add
// names), timestamp and _service_id. c_agent_id and c_agent_extension route
// the event to an agent, so they must be text when present. Every other
// attribute (notify_params, notify_custom) is free-form and kept as is.
type callback struct {
	EventID   *string    `json:"event_id" validate:"required,startswith=_cbe_"`
	Timestamp *time.Time `json:"timestamp" validate:"required"`
	ServiceID *string    `json:"_service_id" validate:"required,min=1,max=256"`
	AgentID   *string    `json:"c_agent_id" validate:"omitempty,max=256"`
	AgentExt  *string    `json:"c_agent_extension" validate:"omitempty,max=256"`
}

// wrapper is the checked view of the GMS {"deviceId", "message"} envelope.
type wrapper struct {
	DeviceID *string `json:"deviceId" validate:"omitempty,max=256"`
}

// DecodeCallback decodes and validates a GMS callback status body (seed 003):
// one _cbe_* notification object, a {"deviceId", "message": {...}} wrapper
// (message may also be a string holding the JSON object), or a non-empty
// array of either (at most MaxBatch). An array is accepted or refused as a
// whole; its problems are named "[i].field" (and "[i].message.field" inside
// a wrapper). isArray reports whether the body was an array, so the caller
// can answer with seqs. Failures are *Error.
func DecodeCallback(body []byte) (ns []Notification, isArray bool, err error) {
	p, perr := parse(body, true)
	if perr != nil {
		return nil, p.array, perr
	}
	if !p.array {
		n, ps, e := decodeCallbackItem(p.obj, p.raws[0], -1)
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
		n, ps, e := decodeCallbackItem(obj, p.raws[i], i)
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
func decodeCallbackItem(obj map[string]any, raw []byte, item int) (Notification, []problem, *Error) {
	msg, hasMsg := obj["message"]
	if _, hasEvent := obj["event_id"]; hasEvent || !hasMsg {
		var v callback
		if ps := check(obj, &v, item); len(ps) > 0 {
			return Notification{}, ps, nil
		}
		return callbackNotification(compact(raw), v), nil, nil
	}

	// A {"deviceId", "message"} wrapper.
	var w wrapper
	ps := check(obj, &w, item)
	var inner map[string]any
	switch m := msg.(type) {
	case map[string]any:
		inner = m
	case string: // GMS may carry the message as JSON text
		ip, perr := parse([]byte(m), false)
		if perr != nil {
			ps = append(ps, problem{item, "message", "must be a JSON object (" + perr.Message + ")"})
		}
		inner = ip.obj
	default:
		ps = append(ps, problem{item, "message", "must be an object"})
	}
	if inner == nil {
		return Notification{}, ps, nil
	}
	var v callback
	for _, p := range check(inner, &v, item) {
		p.field = "message." + p.field
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		return Notification{}, ps, nil
	}
	out := make(map[string]any, len(inner)+1)
	maps.Copy(out, inner)
	if dev, ok := obj["deviceId"]; ok && dev != nil {
		out["deviceId"] = dev
	}
	data, err := marshal(out)
	if err != nil {
		return Notification{}, nil, err
	}
	return callbackNotification(data, v), nil, nil
}

func callbackNotification(data json.RawMessage, v callback) Notification {
	n := Notification{Topic: TopicCallback, Data: data}
	if v.AgentID != nil {
		n.AgentID = *v.AgentID
	}
	return n
}

// marshal encodes a parsed object (json.Number numbers kept exactly) without
// HTML escaping.
func marshal(obj map[string]any) (json.RawMessage, *Error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, malformed("body cannot be re-encoded: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
