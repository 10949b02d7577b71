// Package routing decides who gets each committed event. Its Index maps
// topic subscriptions to subscribers as an inverted index, so that routing
// an event costs in proportion to the sessions that receive it, not to the
// sessions subscribed; and Entitled is the one function that applies the
// rights of SPEC §3.6 (who may see which event). Live delivery, resume
// replay and sessions mirrored from other instances all go through them.
//
// The Index is the only code that adds or removes subscriptions. It has one
// lock, never held while calling out: Route copies the lists it needs under
// the read lock and calls its callback after releasing it.
package routing

import (
	"iproc/protocol"
	"iproc/reporting/store"
)

// Viewer is what routing needs to know about the agent behind a
// subscription.
type Viewer struct {
	// AgentID is the agent's id.
	AgentID string
	// Extension is the agent's phone extension, empty when it has none.
	Extension string
	// SeesAll is set for supervisors and team leads, who may receive every
	// event of every topic.
	SeesAll bool
	// FullCustomerData is set for agents allowed customer data whole in
	// every event (directory "customerData": "full"); others get it whole
	// only in their own events (see WholeCustomerData).
	FullCustomerData bool
}

// Entitled reports whether v may receive the topic event ev (SPEC §3.6):
// supervisors and team leads every one; an agent only its own
// ContactProcessed (GSW_AGENT_ID), callback (c_agent_id) and CDR (ext)
// events, and never a campaign group state.
func Entitled(v Viewer, ev store.Event) bool {
	return v.SeesAll || v.isOwner(ev)
}

// isOwner reports whether ev belongs to v's agent: it names the agent (or,
// for a CDR, its extension).
func (v Viewer) isOwner(ev store.Event) bool {
	own, ok := ownerOf(ev)
	if !ok {
		return false
	}
	mine, ok := v.owns(ev.Name)
	return ok && own == mine
}

// ownerOf returns the key of the agent an event of an agent-visible topic
// belongs to: its agent id, or for CDRs its extension. ok is false for
// events no agent may see (campaign group states, events naming nobody).
func ownerOf(ev store.Event) (string, bool) {
	switch ev.Name {
	case protocol.TopicContactProcessed, protocol.TopicCallback:
		return ev.Meta.AgentID, ev.Meta.AgentID != ""
	case protocol.TopicCDR:
		return ev.Meta.Ext, ev.Meta.Ext != ""
	}
	return "", false
}

// owns returns the key under which an agent's events of topic are found
// (see ownerOf); ok is false when the agent can never receive the topic.
func (v Viewer) owns(topic string) (string, bool) {
	switch topic {
	case protocol.TopicContactProcessed, protocol.TopicCallback:
		return v.AgentID, v.AgentID != ""
	case protocol.TopicCDR:
		return v.Extension, v.Extension != ""
	}
	return "", false
}
