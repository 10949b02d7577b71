package test

import (
	"encoding/json"
	"fmt"
)

// contactProcessed returns a seed-001-shaped ContactProcessed notification
// for guid, call attempt and agent (empty agent: the field is left out).
func contactProcessed(guid, attempt, agent string) map[string]any {
	m := map[string]any{
		"GSW_MESSAGE":             "ContactProcessed",
		"GSW_MESSAGE_GUID":        guid,
		"GSW_TIMESTAMP":           "1700000100.250",
		"GSW_CALL_ATTEMPT_GUID":   attempt,
		"GSW_PHONE":               "+15551230001",
		"GSW_PHONE_TYPE":          1,
		"GSW_CHAIN_ID":            "42",
		"GSW_CHAIN_N":             0,
		"GSW_RECORD_HANDLE":       17,
		"GSW_REASON":              4,
		"GSW_CALL_RESULT":         33,
		"GSW_CAMPAIGN_NAME":       "Renewals",
		"GSW_CONTACT_MEDIA_TYPE":  "voice",
		"GSW_CALLING_LIST":        "CL_Renewals",
		"GSW_CAMPAIGN_GROUP_NAME": "Renewals@Sales",
		"GSW_CAMPAIGN_GROUP_GUID": "6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F",
		"GSW_GROUP_NAME":          "Sales",
		"GSW_QUEUE_NAME":          "7001",
		"GSW_DIAL_MODE":           3,
		"GSW_RECORD_TYPE":         2,
		"GSW_RECORD_STATUS":       3,
		"GSW_START_PROCESSING":    "1700000000.000",
		"GSW_DIALING":             "1700000001.000",
		"GSW_RINGING":             "1700000003.500",
		"GSW_ANSWERED":            "1700000010.000",
		"GSW_CPD_COMPLETED":       "1700000011.000",
		"GSW_QUEUED":              "1700000011.000",
		"GSW_AGENT_RINGING":       "1700000014.000",
		"GSW_AGENT_ANSWERED":      "1700000016.000",
		"GSW_AGENT_RELEASED":      "1700000076.000",
		"GSW_ACW_COMPLETED":       "1700000096.000",
		"Other1":                  "custom value",
		"CustomerTier":            map[string]any{"level": "gold", "score": 9.5},
	}
	if agent != "" {
		m["GSW_AGENT_ID"] = agent
	}
	return m
}

// campaignGroupState returns a seed-000-shaped CampaignGroupState.
func campaignGroupState(guid string, state int) map[string]any {
	return map[string]any{
		"GSW_USER_EVENT":             "CampaignGroupState",
		"GSW_DATE_TIME":              "1700000200.125",
		"GSW_TENANT_NAME":            "Environment",
		"GSW_TENANT_CCID":            "101",
		"GSW_CAMPAIGN_GROUP_NAME":    "Renewals@Sales",
		"GSW_CAMPAIGN_GROUP_GUID":    guid,
		"GSW_GROUP_NAME":             "Sales",
		"GSW_CAMPAIGN_NAME":          "Renewals",
		"GSW_CAMPAIGN_TEMPLATE_NAME": "",
		"GSW_QUEUE_NAME":             "7001",
		"GSW_DIAL_MODE":              3,
		"GSW_CAMPAIGN_GROUP_STATE":   state,
		"GSW_CAMPAIGN_GROUP_ACTION":  "5",
		"GSW_CAMPAIGN_GROUP_ACTOR":   1,
	}
}

// callbackEvent returns a seed-003-shaped GMS callback notification.
func callbackEvent(serviceID, event, agent string, ts float64) map[string]any {
	m := map[string]any{
		"event_id":           "_cbe_" + event,
		"timestamp":          fmt.Sprintf("%.3f", ts),
		"_service_id":        serviceID,
		"_customer_number":   "5551230002",
		"_callback_state":    "SCHEDULED",
		"notify_custom":      map[string]any{"crm": "x-1"},
		"_desired_time":      "2026-11-22T10:00:00.000Z",
		"_callback_reason":   "renewal",
		"_urs_virtual_queue": "VQ_Callbacks",
	}
	if agent != "" {
		m["c_agent_id"] = agent
	}
	return m
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
