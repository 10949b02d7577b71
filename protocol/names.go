// Package protocol holds iproc's wire types: the request / response / event
// envelopes of the WebSocket protocol, the command, event and topic names, the
// stable failure codes, and decoding with limits and password masking. It is
// pure: no I/O and no goroutines.
package protocol

// MaxMessageBytes is the largest inbound WebSocket frame accepted (64 KiB);
// larger frames close the connection with 1009.
const MaxMessageBytes = 64 << 10

// Service commands: no session needed.
const (
	CmdGetCapabilities = "getCapabilities"
	CmdPing            = "ping"
	CmdPrepareSession  = "prepareSession"
	CmdResumeSession   = "resumeSession"
)

// Session resource commands (sent with resource = the session id).
const (
	CmdGetState     = "getState"
	CmdSetState     = "setState"
	CmdSubscribe    = "subscribe"
	CmdUnsubscribe  = "unsubscribe"
	CmdCloseSession = "closeSession"
)

// Report commands (sent without resource; need a session on the connection).
const (
	CmdCallJourney     = "report.calljourney"
	CmdTeamStatusBegin = "report.teamstatus.begin"
	CmdTeamStatusEnd   = "report.teamstatus.end"
	CmdCampaignGroups  = "report.campaigngroups"
	CmdSources         = "report.sources"
)

// Topics a session can subscribe to.
const (
	TopicCampaignGroupState = "outbound.campaignGroupState"
	TopicContactProcessed   = "outbound.contactProcessed"
	TopicCallback           = "callback.status"
	TopicCDR                = "dialer.cdr"
	// TopicSourceHealth carries a source's status changes (SPEC §3.7):
	// supervisors and team leads only.
	TopicSourceHealth = "system.sourceHealth"
)

// Topics lists every subscribable topic.
func Topics() []string {
	return []string{TopicCampaignGroupState, TopicContactProcessed, TopicCallback, TopicCDR, TopicSourceHealth}
}

// IsTopic reports whether name is a subscribable topic.
func IsTopic(name string) bool {
	switch name {
	case TopicCampaignGroupState, TopicContactProcessed, TopicCallback, TopicCDR, TopicSourceHealth:
		return true
	}
	return false
}

// Event names sent by the server besides the topics.
const (
	EventServiceInfo         = "service.info"
	EventSessionEnded        = "session.ended"
	EventSessionStateChanged = "session.stateChanged"

	EventTeamAdded           = "report.teamstatus.teamadded"
	EventTeamChanged         = "report.teamstatus.teamchanged"
	EventTeamRemoved         = "report.teamstatus.teamremoved"
	EventMemberAdded         = "report.teamstatus.memberadded"
	EventMemberRemoved       = "report.teamstatus.memberremoved"
	EventMemberStatusChanged = "report.teamstatus.memberstatuschanged"
)

// TimeLayout is the layout of the protocol's timestamps: RFC 3339 in UTC
// with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Resource types and call models.
const (
	ResourceTypeSession = "com.openmethods.iserver.processor.session"
	ResourceTypeReport  = "com.openmethods.iserver.processor.reporting.uccx"
	ModelUCCX           = "uccx"
)

// Agent states.
const (
	StateReady     = "ready"
	StateNotReady  = "not_ready"
	StateACW       = "ACW"
	StateLoggedOut = "logged_out"
)

// Reasons a session ends.
const (
	EndOverride = "override"
	EndClosed   = "closed"
	EndExpired  = "expired"
)

// Results of a response.
const (
	ResultSuccess = "success"
	ResultConfirm = "confirm"
	ResultFailure = "failure"
)
