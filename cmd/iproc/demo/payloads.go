package demo

import (
	"fmt"
	"strconv"
	"time"
)

// campaignGroup is one simulated OCS campaign group.
type campaignGroup struct {
	guid, name, campaign, group, queue string
}

// demoGroups returns the campaign groups the simulator runs: one per demo
// team.
func demoGroups() []campaignGroup {
	return []campaignGroup{
		{"6C3B8F7A-0D3E-4C2B-9C55-DE30000000A1", "Renewals@Sales", "Renewals", "Sales", "7001"},
		{"6C3B8F7A-0D3E-4C2B-9C55-DE30000000B2", "Winback@Support", "Winback", "Support", "7002"},
	}
}

// groupState returns the n-th state of the cycle a simulated group goes
// through: GSW_CAMPAIGN_GROUP_STATE integers (OCS's CM_GrpCampState enum;
// the notification's description does not list its values, and iproc
// accepts any integer).
func groupState(n int) int {
	return [...]int{2, 3, 3, 3, 4}[n%5]
}

// stamp formats t as OCS does: Unix seconds with milliseconds, as text.
func stamp(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// campaignGroupState builds an OCS CampaignGroupState notification.
func campaignGroupState(g campaignGroup, state int, now time.Time) map[string]any {
	return map[string]any{
		"GSW_USER_EVENT":            "CampaignGroupState",
		"GSW_DATE_TIME":             stamp(now),
		"GSW_TENANT_NAME":           "Environment",
		"GSW_TENANT_CCID":           "101",
		"GSW_CAMPAIGN_GROUP_NAME":   g.name,
		"GSW_CAMPAIGN_GROUP_GUID":   g.guid,
		"GSW_GROUP_NAME":            g.group,
		"GSW_CAMPAIGN_NAME":         g.campaign,
		"GSW_QUEUE_NAME":            g.queue,
		"GSW_DIAL_MODE":             3,
		"GSW_CAMPAIGN_GROUP_STATE":  state,
		"GSW_CAMPAIGN_GROUP_ACTION": 5,
		"GSW_CAMPAIGN_GROUP_ACTOR":  3, // the group's own logic
	}
}

// contactProcessed builds an OCS ContactProcessed notification for one
// outbound call attempt n of run, handled by agent, that ended just now: the
// timestamps walk the call through dialing, CPD, queue, agent and ACW, so
// its call journey has every step.
func contactProcessed(g campaignGroup, run string, n int, agent string, now time.Time) map[string]any {
	talk := time.Duration(20+n%40) * time.Second
	start := now.Add(-talk - 45*time.Second)
	at := func(d time.Duration) string { return stamp(start.Add(d)) }
	id := fmt.Sprintf("%s-%06d", run, n)
	return map[string]any{
		"GSW_MESSAGE":             "ContactProcessed",
		"GSW_MESSAGE_GUID":        "DEMO-MSG-" + id,
		"GSW_TIMESTAMP":           stamp(now),
		"GSW_CALL_ATTEMPT_GUID":   "DEMO-CALL-" + id,
		"GSW_PHONE":               "+1555010" + strconv.Itoa(1000+n%9000),
		"GSW_PHONE_TYPE":          1,
		"GSW_CHAIN_ID":            n,
		"GSW_CHAIN_N":             0,
		"GSW_RECORD_HANDLE":       n,
		"GSW_REASON":              4,
		"GSW_CALL_RESULT":         33, // answered
		"GSW_CAMPAIGN_NAME":       g.campaign,
		"GSW_CONTACT_MEDIA_TYPE":  "voice",
		"GSW_CALLING_LIST":        "CL_" + g.campaign,
		"GSW_CAMPAIGN_GROUP_NAME": g.name,
		"GSW_CAMPAIGN_GROUP_GUID": g.guid,
		"GSW_GROUP_NAME":          g.group,
		"GSW_QUEUE_NAME":          g.queue,
		"GSW_DIAL_MODE":           3,
		"GSW_AGENT_ID":            agent,
		"GSW_RECORD_TYPE":         2,
		"GSW_RECORD_STATUS":       3,
		"GSW_START_PROCESSING":    at(0),
		"GSW_DIALING":             at(1 * time.Second),
		"GSW_RINGING":             at(3 * time.Second),
		"GSW_ANSWERED":            at(9 * time.Second),
		"GSW_CPD_COMPLETED":       at(10 * time.Second),
		"GSW_QUEUED":              at(10 * time.Second),
		"GSW_AGENT_RINGING":       at(13 * time.Second),
		"GSW_AGENT_ANSWERED":      at(15 * time.Second),
		"GSW_AGENT_RELEASED":      at(15*time.Second + talk),
		"GSW_ACW_COMPLETED":       at(45*time.Second + talk),
		"DemoCustomerTier":        []string{"gold", "silver", "bronze"}[n%3],
	}
}

// callbackSteps are the GMS callback status events of one simulated
// callback, in order.
func callbackSteps() []string {
	return []string{"on_service_create", "on_callback_scheduled", "on_dial_init", "on_dial_done",
		"on_customer_queued", "on_target_found", "on_route_to_agent", "on_service_exit"}
}

// callbackEvent builds step of the GMS callback service n of run, routed to
// agent (with its extension) from on_target_found on.
func callbackEvent(run string, n, step int, agent, ext string, now time.Time) map[string]any {
	steps := callbackSteps()
	name := steps[step%len(steps)]
	m := map[string]any{
		"event_id":           "_cbe_" + name,
		"timestamp":          stamp(now),
		"_service_id":        fmt.Sprintf("DEMO-CB-%s-%06d", run, n),
		"_service_name":      "Callback_Demo",
		"_customer_number":   "5550199" + strconv.Itoa(100+n%900),
		"_urs_virtual_queue": "VQ_Callbacks",
		"c_dialed_number":    "5550199" + strconv.Itoa(100+n%900),
	}
	switch name {
	case "on_callback_scheduled":
		m["_desired_time"] = now.Add(2 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
		m["_callback_state"] = "SCHEDULED"
	case "on_dial_done":
		m["c_call_result"] = "ANSWERED"
		m["c_call_num_attempt"] = 1
	case "on_target_found", "on_route_to_agent":
		m["c_agent_id"] = agent
		m["c_agent_extension"] = ext
	case "on_service_exit":
		m["c_agent_id"] = agent
		m["c_termination_type"] = "COMPLETED"
	}
	return m
}
