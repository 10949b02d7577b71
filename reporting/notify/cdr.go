package notify

// cdr is the checked view of a dialer CDR (seed 004). internal_call_ref is
// the only mandatory field: the seed calls it the dialer's own reference,
// "used to disposition the call and download recordings", so every CDR the
// dialer produces carries it and a CDR without it cannot be tied to a call.
// ext is optional because the seed documents "extension is null" (the callee
// hung up in the queue); custom_call_ref exists only when the integrator set
// one; the other fields are type-checked when present (a string or a number;
// null counts as absent) but the seed gives no enumerations to check.
type cdr struct {
	Ext             *string `json:"ext" validate:"omitempty,max=256"`
	InternalCallRef *string `json:"internal_call_ref" validate:"required,min=1,max=256"`
	CustomCallRef   *string `json:"custom_call_ref" validate:"omitempty,max=256"`
	Disposition     *string `json:"disposition"`
	SIPTermination  *string `json:"SIP_termination_code"`
	CampaignRef     *string `json:"campaign_ref"`
	ClientNumber    *string `json:"client_number"`
	DialNumber      *string `json:"dial_number"`
}

// DecodeCDR decodes and validates one dialer CDR (seed 004), as popped from
// the Redis list. Failures are *Error.
func DecodeCDR(body []byte) (Notification, error) {
	p, err := parse(body, false)
	if err != nil {
		return Notification{}, err
	}
	var v cdr
	if ps := check(p.obj, &v, -1); len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	data := compact(p.raws[0])
	n := Notification{Topic: TopicCDR, Data: data}
	if v.Ext != nil {
		n.Ext = *v.Ext
	}
	return n, nil
}
