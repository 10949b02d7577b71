package notify

// cdr is the view of a dialer CDR (seed 004). internal_call_ref is the only
// mandatory field: the seed calls it the dialer's own reference, "used to
// disposition the call and download recordings", so every CDR the dialer
// produces carries it and a CDR without it cannot be tied to a call. ext is
// optional because the seed documents "extension is null" (the callee hung up
// in the queue); custom_call_ref exists only when the integrator set one; the
// other fields are type-checked when present (a string or a number; null
// counts as absent) but the seed gives no enumerations to check.
var cdr = newView(
	optID("ext"),
	guid("internal_call_ref"),
	optID("custom_call_ref"),
	text("disposition"),
	text("SIP_termination_code"),
	text("campaign_ref"),
	text("client_number"),
	text("dial_number"),
)

// DecodeCDR decodes and validates one dialer CDR (seed 004), as popped from
// the Redis list. Failures are *Error.
func DecodeCDR(body []byte) (Notification, error) {
	obj, err := scanObject(body)
	if err != nil {
		return Notification{}, err
	}
	defer obj.release()
	vals, ps := cdr.check(obj, -1)
	defer releaseValues(vals)
	if len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	ext, _ := cdr.get(vals, "ext")
	return Notification{Topic: TopicCDR, Data: compact(obj.raw), Ext: ext, Fields: obj.fields()}, nil
}
