package notify

import (
	"strings"
	"time"
)

// campaignGroupState is the checked view of an OCS CampaignGroupState
// notification (seed 000). Mandatory: the fields the seed marks "Yes"
// (SPEC §4 table). GSW_CAMPAIGN_NAME and GSW_CAMPAIGN_TEMPLATE_NAME are
// "Yes (if present in configuration)" and GSW_DIAL_MODE is defined only for
// running groups, so they are optional but type-checked when sent.
// GSW_TENANT_CCID is a String in the seed that "defaults to Unknown", so any
// text (or number) is accepted; GSW_CAMPAIGN_GROUP_STATE and _ACTION are
// integers of vendor enums the seed does not list, so any integer passes;
// GSW_CAMPAIGN_GROUP_ACTOR is the 0–5 range the seed lists.
type campaignGroupState struct {
	UserEvent  *string    `json:"GSW_USER_EVENT" validate:"required,eq=CampaignGroupState"`
	DateTime   *time.Time `json:"GSW_DATE_TIME" validate:"required"`
	TenantName *string    `json:"GSW_TENANT_NAME" validate:"required"`
	TenantCCID *string    `json:"GSW_TENANT_CCID" validate:"required"`
	GroupName  *string    `json:"GSW_CAMPAIGN_GROUP_NAME" validate:"required"`
	GroupGUID  *string    `json:"GSW_CAMPAIGN_GROUP_GUID" validate:"required,min=1,max=256"`
	AgentGroup *string    `json:"GSW_GROUP_NAME" validate:"required"`
	Campaign   *string    `json:"GSW_CAMPAIGN_NAME"`
	Template   *string    `json:"GSW_CAMPAIGN_TEMPLATE_NAME"`
	Queue      *string    `json:"GSW_QUEUE_NAME" validate:"required"`
	DialMode   *int64     `json:"GSW_DIAL_MODE"`
	State      *int64     `json:"GSW_CAMPAIGN_GROUP_STATE" validate:"required"`
	Action     *int64     `json:"GSW_CAMPAIGN_GROUP_ACTION" validate:"required"`
	Actor      *int64     `json:"GSW_CAMPAIGN_GROUP_ACTOR" validate:"required,actor"`
}

// contactProcessed is the checked view of an OCS ContactProcessed
// notification (seed 001): every field the seed marks mandatory is required,
// the optional ones are type-checked when sent (an empty string counts as
// not sent for integers and timestamps). GUIDs are not format-checked (OCS
// GUID spelling varies) but must be non-empty and at most 256 characters.
type contactProcessed struct {
	Message         *string    `json:"GSW_MESSAGE" validate:"required,eq=ContactProcessed"`
	MessageGUID     *string    `json:"GSW_MESSAGE_GUID" validate:"required,min=1,max=256"`
	Timestamp       *time.Time `json:"GSW_TIMESTAMP" validate:"required"`
	CallAttemptGUID *string    `json:"GSW_CALL_ATTEMPT_GUID" validate:"required,min=1,max=256"`
	Phone           *string    `json:"GSW_PHONE" validate:"required"`
	PhoneType       *int64     `json:"GSW_PHONE_TYPE" validate:"required"`
	ChainID         *int64     `json:"GSW_CHAIN_ID" validate:"required"`
	ChainN          *int64     `json:"GSW_CHAIN_N" validate:"required"`
	RecordHandle    *int64     `json:"GSW_RECORD_HANDLE" validate:"required"`
	Reason          *int64     `json:"GSW_REASON" validate:"required"`
	ChainLIFOGUID   *string    `json:"GSW_CHAIN_LIFO_GUID"`
	CustomerID      *string    `json:"GSW_CUSTOMER_ID"`
	CallResult      *int64     `json:"GSW_CALL_RESULT" validate:"required"`
	Disposition     *string    `json:"GSW_DISPOSITION_CODE"`
	Campaign        *string    `json:"GSW_CAMPAIGN_NAME" validate:"required"`
	Template        *string    `json:"GSW_CAMPAIGN_TEMPLATE_NAME"`
	MediaType       *string    `json:"GSW_CONTACT_MEDIA_TYPE" validate:"required,oneof=voice sms email"`
	CallingList     *string    `json:"GSW_CALLING_LIST" validate:"required"`
	GroupName       *string    `json:"GSW_CAMPAIGN_GROUP_NAME" validate:"required"`
	GroupGUID       *string    `json:"GSW_CAMPAIGN_GROUP_GUID" validate:"required,min=1,max=256"`
	AgentGroup      *string    `json:"GSW_GROUP_NAME" validate:"required"`
	Queue           *string    `json:"GSW_QUEUE_NAME" validate:"required"`
	DialMode        *int64     `json:"GSW_DIAL_MODE" validate:"required"`
	AgentID         *string    `json:"GSW_AGENT_ID" validate:"omitempty,max=256"`
	RecordType      *int64     `json:"GSW_RECORD_TYPE" validate:"required"`
	RecordStatus    *int64     `json:"GSW_RECORD_STATUS" validate:"required"`
	OptimizeBy      *int64     `json:"GSW_OPTIMIZE_BY"`
	OptimizeGoal    *int64     `json:"GSW_OPTIMIZE_GOAL"`

	StartProcessing    *time.Time `json:"GSW_START_PROCESSING" validate:"required"`
	CallTime           *time.Time `json:"GSW_CALL_TIME"`
	ScheduledTime      *time.Time `json:"GSW_SCHEDULED_TIME"`
	Dialing            *time.Time `json:"GSW_DIALING"`
	Ringing            *time.Time `json:"GSW_RINGING"`
	Released           *time.Time `json:"GSW_RELEASED"`
	Answered           *time.Time `json:"GSW_ANSWERED"`
	CPDCompleted       *time.Time `json:"GSW_CPD_COMPLETED"`
	Queued             *time.Time `json:"GSW_QUEUED"`
	AgentRinging       *time.Time `json:"GSW_AGENT_RINGING"`
	AgentAnswered      *time.Time `json:"GSW_AGENT_ANSWERED"`
	Diverted           *time.Time `json:"GSW_DIVERTED"`
	Abandoned          *time.Time `json:"GSW_ABANDONED"`
	AgentReleased      *time.Time `json:"GSW_AGENT_RELEASED"`
	ACWCompleted       *time.Time `json:"GSW_ACW_COMPLETED"`
	CompleteProcessing *time.Time `json:"GSW_COMPLETE_PROCESSING"`
}

// DecodeCampaignGroupState decodes and validates one OCS CampaignGroupState
// body (seed 000). Failures are *Error.
func DecodeCampaignGroupState(body []byte) (Notification, error) {
	p, err := parse(body, false)
	if err != nil {
		return Notification{}, err
	}
	var v campaignGroupState
	if ps := check(p.obj, &v, -1); len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	data := compact(p.raws[0])
	return Notification{Topic: TopicCampaignGroupState, Data: data}, nil
}

// DecodeContactProcessed decodes and validates one OCS ContactProcessed body
// (seed 001). etag is the HTTP ETag header or "": when present (surrounding
// quotes and a W/ prefix ignored) it must equal GSW_MESSAGE_GUID, compared
// case-insensitively, else the Error names "ETag". Failures are *Error.
func DecodeContactProcessed(body []byte, etag string) (Notification, error) {
	p, err := parse(body, false)
	if err != nil {
		return Notification{}, err
	}
	var v contactProcessed
	ps := check(p.obj, &v, -1)
	if tag := unquoteETag(etag); tag != "" && v.MessageGUID != nil && *v.MessageGUID != "" &&
		!strings.EqualFold(tag, *v.MessageGUID) {
		ps = append(ps, problem{-1, "ETag", "must equal GSW_MESSAGE_GUID"})
	}
	if len(ps) > 0 {
		return Notification{}, invalid(ps)
	}
	data := compact(p.raws[0])
	n := Notification{
		Topic:    TopicContactProcessed,
		Data:     data,
		DedupKey: "cp:" + strings.ToLower(*v.MessageGUID),
	}
	if v.AgentID != nil {
		n.AgentID = *v.AgentID
	}
	return n, nil
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
