package notify

import (
	"strings"
)

// Shorthands for the view tables.
func text(name string) rule    { return rule{name: name, kind: kindText} }
func integer(name string) rule { return rule{name: name, kind: kindInt} }
func stamp(name string) rule   { return rule{name: name, kind: kindTime} }
func req(r rule) rule          { r.required = true; return r }

// guid is a required id: not format-checked (OCS GUID spelling varies) but
// non-empty and at most 256 characters.
func guid(name string) rule {
	return rule{name: name, kind: kindText, required: true, minLen: 1, maxLen: 256}
}

// optID is an optional id of at most 256 characters.
func optID(name string) rule { return rule{name: name, kind: kindText, maxLen: 256} }

// campaignGroupState is the view of an OCS CampaignGroupState notification
// (seed 000). Mandatory: the fields the seed marks "Yes" (SPEC §4 table).
// GSW_CAMPAIGN_NAME and GSW_CAMPAIGN_TEMPLATE_NAME are "Yes (if present in
// configuration)" and GSW_DIAL_MODE is defined only for running groups, so
// they are optional but type-checked when sent. GSW_TENANT_CCID is a String
// in the seed that "defaults to Unknown", so any text (or number) is
// accepted; GSW_CAMPAIGN_GROUP_STATE and _ACTION are integers of vendor enums
// the seed does not list, so any integer passes; GSW_CAMPAIGN_GROUP_ACTOR is
// the 0–5 range the seed lists.
var campaignGroupState = newView(
	rule{name: "GSW_USER_EVENT", kind: kindText, required: true, eq: "CampaignGroupState"},
	req(stamp("GSW_DATE_TIME")),
	req(text("GSW_TENANT_NAME")),
	req(text("GSW_TENANT_CCID")),
	req(text("GSW_CAMPAIGN_GROUP_NAME")),
	guid("GSW_CAMPAIGN_GROUP_GUID"),
	req(text("GSW_GROUP_NAME")),
	text("GSW_CAMPAIGN_NAME"),
	text("GSW_CAMPAIGN_TEMPLATE_NAME"),
	req(text("GSW_QUEUE_NAME")),
	integer("GSW_DIAL_MODE"),
	req(integer("GSW_CAMPAIGN_GROUP_STATE")),
	req(integer("GSW_CAMPAIGN_GROUP_ACTION")),
	rule{name: "GSW_CAMPAIGN_GROUP_ACTOR", kind: kindInt, required: true, hasRange: true, min: 0, max: 5},
)

// contactProcessed is the view of an OCS ContactProcessed notification
// (seed 001): every field the seed marks mandatory is required, the optional
// ones are type-checked when sent (an empty string counts as not sent for
// integers and timestamps).
var contactProcessed = newView(
	rule{name: "GSW_MESSAGE", kind: kindText, required: true, eq: "ContactProcessed"},
	guid("GSW_MESSAGE_GUID"),
	req(stamp("GSW_TIMESTAMP")),
	guid("GSW_CALL_ATTEMPT_GUID"),
	req(text("GSW_PHONE")),
	req(integer("GSW_PHONE_TYPE")),
	req(integer("GSW_CHAIN_ID")),
	req(integer("GSW_CHAIN_N")),
	req(integer("GSW_RECORD_HANDLE")),
	req(integer("GSW_REASON")),
	text("GSW_CHAIN_LIFO_GUID"),
	text("GSW_CUSTOMER_ID"),
	req(integer("GSW_CALL_RESULT")),
	text("GSW_DISPOSITION_CODE"),
	req(text("GSW_CAMPAIGN_NAME")),
	text("GSW_CAMPAIGN_TEMPLATE_NAME"),
	rule{name: "GSW_CONTACT_MEDIA_TYPE", kind: kindText, required: true, oneof: []string{"voice", "sms", "email"}},
	req(text("GSW_CALLING_LIST")),
	req(text("GSW_CAMPAIGN_GROUP_NAME")),
	guid("GSW_CAMPAIGN_GROUP_GUID"),
	req(text("GSW_GROUP_NAME")),
	req(text("GSW_QUEUE_NAME")),
	req(integer("GSW_DIAL_MODE")),
	optID("GSW_AGENT_ID"),
	req(integer("GSW_RECORD_TYPE")),
	req(integer("GSW_RECORD_STATUS")),
	integer("GSW_OPTIMIZE_BY"),
	integer("GSW_OPTIMIZE_GOAL"),

	req(stamp("GSW_START_PROCESSING")),
	stamp("GSW_CALL_TIME"),
	stamp("GSW_SCHEDULED_TIME"),
	stamp("GSW_DIALING"),
	stamp("GSW_RINGING"),
	stamp("GSW_RELEASED"),
	stamp("GSW_ANSWERED"),
	stamp("GSW_CPD_COMPLETED"),
	stamp("GSW_QUEUED"),
	stamp("GSW_AGENT_RINGING"),
	stamp("GSW_AGENT_ANSWERED"),
	stamp("GSW_DIVERTED"),
	stamp("GSW_ABANDONED"),
	stamp("GSW_AGENT_RELEASED"),
	stamp("GSW_ACW_COMPLETED"),
	stamp("GSW_COMPLETE_PROCESSING"),
)

// DecodeCampaignGroupState decodes and validates one OCS CampaignGroupState
// body (seed 000). Failures are *Error.
func DecodeCampaignGroupState(body []byte) (Notification, error) {
	obj, err := scanObject(body)
	if err != nil {
		return Notification{}, err
	}
	defer obj.release()
	if _, ps := campaignGroupState.check(obj, -1); len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	return Notification{Topic: TopicCampaignGroupState, Data: compact(obj.raw), Fields: obj.fields()}, nil
}

// DecodeContactProcessed decodes and validates one OCS ContactProcessed body
// (seed 001). etag is the HTTP ETag header or "": when present (surrounding
// quotes and a W/ prefix ignored) it must equal GSW_MESSAGE_GUID, compared
// case-insensitively, else the Error names "ETag". Failures are *Error.
func DecodeContactProcessed(body []byte, etag string) (Notification, error) {
	obj, err := scanObject(body)
	if err != nil {
		return Notification{}, err
	}
	defer obj.release()
	vals, ps := contactProcessed.check(obj, -1)
	defer releaseValues(vals)
	msgGUID, _ := contactProcessed.get(vals, "GSW_MESSAGE_GUID")
	if tag := unquoteETag(etag); tag != "" && msgGUID != "" && !strings.EqualFold(tag, msgGUID) {
		ps = append(ps, problem{-1, "ETag", "must equal GSW_MESSAGE_GUID"})
	}
	if len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	agent, _ := contactProcessed.get(vals, "GSW_AGENT_ID")
	return Notification{
		Topic:    TopicContactProcessed,
		Data:     compact(obj.raw),
		DedupKey: "cp:" + strings.ToLower(msgGUID),
		AgentID:  agent,
		Fields:   obj.fields(),
	}, nil
}

// unquoteETag strips spaces, a weak-validator W/ prefix and one pair of
// surrounding double quotes.
func unquoteETag(etag string) string {
	s := strings.TrimSpace(etag)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return strings.TrimSpace(s)
}
