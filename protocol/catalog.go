package protocol

// Commands lists every command a client can send, for documents and tests.
func Commands() []string {
	return []string{CmdGetCapabilities, CmdPing, CmdPrepareSession, CmdResumeSession,
		CmdGetState, CmdSetState, CmdSubscribe, CmdUnsubscribe, CmdCloseSession,
		CmdCallJourney, CmdTeamStatusBegin, CmdTeamStatusEnd, CmdCampaignGroups, CmdSources}
}

// Events lists every event name the server sends besides the topics, for
// documents and tests.
func Events() []string {
	return []string{EventServiceInfo, EventSessionEnded, EventSessionStateChanged,
		EventTeamAdded, EventTeamChanged, EventTeamRemoved,
		EventMemberAdded, EventMemberRemoved, EventMemberStatusChanged}
}
