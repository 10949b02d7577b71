// Package session is iproc's session lifecycle: one session per agent per
// instance domain, made by prepareSession (with the confirm / override flow
// and login limits), attached to one connection at a time, outliving it for
// a grace period so that it can be resumed, and ended by closeSession,
// override or expiry. Sessions are events in the log, so that they survive
// restarts and are shared by the instances of a domain (cluster.go).
//
// The Registry also hands committed events to sessions, in seq order, from
// one goroutine: it asks the routing index (package routing) who gets a
// topic event, and the team-status report (package teamstatus) who gets an
// agent-state change. Neither delivery blocks: a Conn enqueues or closes
// itself.
//
// Locks, always taken in this order, never the other way:
//
//	Registry.mu (sessions by id and agent)  →  Session.mu
//	teamstatus.Report's mutex               →  Session.mu
//
// The routing index's lock is a leaf: it is never held while calling out.
// Registry.mu and the report's mutex are never held together.
package session
