// Package report is the UCCX report resource: call journeys and campaign
// group states read from the log's projection, with SPEC §3.6 authorisation.
// (Team status is a live report, reporting/teamstatus, driven by the
// session registry.)
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"iproc/protocol"
	"iproc/reporting/journey"
	"iproc/reporting/store"
	"iproc/resources/routing"
	"iproc/resources/session"
)

// Resource answers report commands.
type Resource struct {
	log      store.Log
	customer routing.CustomerFields
}

// New makes the report resource over log; customer are the customer-data
// fields, masked for the viewers who may not see them whole.
func New(log store.Log, customer routing.CustomerFields) *Resource {
	return &Resource{log: log, customer: customer}
}

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
		// Agents read only their own calls' journeys, whole; supervisors
		// and leads get the customer's number masked unless allowed it.
		if s.Agent.Type.SeesAllTopics() && !s.Agent.SeesCustomerData() {
			for i := range steps {
				steps[i] = maskStep(steps[i])
			}
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
		if !s.Agent.SeesCustomerData() {
			for i, g := range groups {
				groups[i], _ = r.customer.Mask(g)
			}
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

// numberInText finds what looks like a phone number: five digits or more,
// with an optional leading +. Journey steps carry the customer's number as
// the device of the Customer step, as a CDR's dial_number device, and in
// descriptions ("dialing +1555…", "client …").
var numberInText = regexp.MustCompile(`\+?\d{5,}`)

// maskStep masks the customer's number in a journey step.
func maskStep(st journey.Step) journey.Step {
	if st.DeviceType == "Customer" {
		st.Device = routing.MaskValue(st.Device)
	} else {
		st.Device = numberInText.ReplaceAllStringFunc(st.Device, routing.MaskValue)
	}
	st.Description = numberInText.ReplaceAllStringFunc(st.Description, routing.MaskValue)
	return st
}
