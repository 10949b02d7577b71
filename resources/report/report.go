// Package report is the UCCX report resource: call journeys and campaign
// group states read from the log's projection, with SPEC §3.6 authorisation.
// (Team status is a live report, reporting/teamstatus, driven by the
// session registry.)
package report

import (
	"context"
	"encoding/json"
	"fmt"

	"iproc/protocol"
	"iproc/reporting/journey"
	"iproc/reporting/store"
	"iproc/resources/session"
)

// Resource answers report commands.
type Resource struct {
	log store.Log
}

// New makes the report resource over log.
func New(log store.Log) *Resource { return &Resource{log: log} }

// Handle answers report.calljourney and report.campaigngroups for session s.
func (r *Resource) Handle(_ context.Context, s *session.Session, req *protocol.Request) (any, error) {
	switch req.Command {
	case protocol.CmdCallJourney:
		var d struct {
			CallID json.RawMessage `json:"CallId"`
		}
		if perr := protocol.DecodeData(req, &d); perr != nil {
			return nil, perr
		}
		id, ok := callID(d.CallID)
		if !ok {
			return nil, protocol.Errorf(protocol.CodeInvalid, "data.CallId: required, a string or a number")
		}
		var j journey.Journey
		var found bool
		if err := r.log.View(func(kv store.KV) error {
			j, found = journey.Lookup(kv, id)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("%w: %w", protocol.ErrUnavailable, err)
		}
		if !found {
			return nil, protocol.Errorf(protocol.CodeReportNotFound, "no call journey known for CallId %q", id)
		}
		if !s.Agent.Type.SeesAllTopics() && !j.Involves(s.Agent.ID, s.Agent.Extension) {
			return nil, protocol.Errorf(protocol.CodeForbidden, "an agent may read only the journeys of calls it took part in")
		}
		steps := j.Report()
		if steps == nil {
			steps = []journey.Step{}
		}
		return map[string]any{"CallJourney": steps}, nil
	case protocol.CmdCampaignGroups:
		if !s.Agent.Type.SeesAllTopics() {
			return nil, protocol.Errorf(protocol.CodeForbidden, "campaign group states are for supervisors and team leads")
		}
		var groups []json.RawMessage
		if err := r.log.View(func(kv store.KV) error {
			var err error
			groups, err = journey.CampaignGroups(kv)
			return err
		}); err != nil {
			return nil, fmt.Errorf("%w: %w", protocol.ErrUnavailable, err)
		}
		if groups == nil {
			groups = []json.RawMessage{}
		}
		return map[string]any{"CampaignGroups": groups}, nil
	}
	return nil, protocol.Errorf(protocol.CodeUnknownCommand, "unknown report %q", req.Command)
}

// callID accepts a string or a number.
func callID(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil && n != "" {
		return n.String(), true
	}
	return "", false
}
