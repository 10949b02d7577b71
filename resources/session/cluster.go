package session

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"iproc/reporting/store"
)

// Cluster mode (Config.Instance set): every instance reads every event of
// the shared log, so each registry knows every session of the domain. A
// session is owned by the instance its connection is on; the others keep it
// detached, with no connection, so that prepareSession asks to confirm and
// override ends it wherever it is, and resumeSession can take it over from
// any instance. Session events another instance appended are applied here
// by applyRemote, through the same routing index and team-status report as
// local sessions; the owner alone expires a detached session, and a session
// whose owner stopped beating is expired by the others after the grace
// period (dedup keys make that happen once).

// announceTimeout bounds the append that tells the log, and the other
// instances, that a session was attached or detached.
const announceTimeout = 5 * time.Second

// catchUpWait bounds how long a login or resume waits for this instance to
// have applied what the domain committed before it.
const catchUpWait = 2 * time.Second

// committer is implemented by a log shared by several instances: Committed
// is the highest seq committed by any of them.
type committer interface {
	Committed(ctx context.Context) (uint64, error)
}

// notifier wakes the goroutines waiting for dispatch to move on.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// wait returns a channel closed at the next notify.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

// catchUp waits (up to catchUpWait) until dispatch has applied every event
// the domain committed before the call, so that a login or resume on this
// instance sees a session opened on another one just before. It does
// nothing in single-instance mode.
func (r *Registry) catchUp(ctx context.Context) {
	c, ok := r.log.(committer)
	if r.instance == "" || !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	head, err := c.Committed(ctx)
	if err != nil {
		return
	}
	for {
		moved := r.commits.wait()
		if r.applied.Load() >= head {
			return
		}
		select {
		case <-ctx.Done():
			r.logger.Warn().Uint64("applied", r.applied.Load()).Uint64("committed", head).Msg("session registry behind the shared log")
			return
		case <-moved:
		}
	}
}

// loginKey is the dedup key of a login's records: the agent and the session
// opened before it anywhere in the domain ("-" for none). Two logins of one
// agent racing on two instances both follow the same session, so the log
// keeps the first and the second learns it lost (its append is a
// duplicate); logins one after another follow different sessions.
func loginKey(kind, agentID, prev string) string {
	if prev == "" {
		prev = "-"
	}
	return "session.login." + kind + ":" + agentID + ":after:" + prev
}

// unopen puts back the last opened session of agentID after the login of
// session id was not stored.
func (r *Registry) unopen(agentID, id, prev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastOpened[agentID] == id {
		r.lastOpened[agentID] = prev
	}
}

// remoteOwner reports whether owner is another instance of the domain.
func (r *Registry) remoteOwner(owner string) bool {
	return r.instance != "" && owner != "" && owner != r.instance
}

// applyRemote applies a session event appended by another instance: a
// session opened or moved there (tracked here, detached, with its
// subscriptions and watch) or ended there (ended here too, with
// session.ended to its connection if this instance still had one — the
// override case).
func (r *Registry) applyRemote(ev store.Event) {
	if !r.remoteOwner(ev.Meta.Origin) {
		return
	}
	if ev.Name == EventSessionClosed {
		var rec sessionRecord
		if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
			return
		}
		var closed struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ev.Data, &closed)
		if s, ok := r.Get(rec.ID); ok {
			s.mu.Lock()
			first := s.endLocked(closed.Reason)
			s.mu.Unlock()
			if first {
				r.remove(s)
			}
		}
		return
	}
	var rec sessionRecord
	if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
		return
	}
	agent, ok := r.Directory().Agent(rec.AgentID)
	if !ok {
		return
	}
	owner := rec.Owner
	if owner == "" {
		owner = ev.Meta.Origin
	}
	r.mu.Lock()
	if ev.Name == EventSessionOpened {
		r.lastOpened[agent.ID] = rec.ID
	}
	s := r.byID[rec.ID]
	if s == nil {
		s = &Session{ID: rec.ID, Agent: agent, token: rec.TokenHash}
		r.byID[s.ID] = s
		r.byAgent[agent.ID] = s
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		r.mu.Unlock()
		return
	}
	if s.conn != nil && !rec.DetachedAt.IsZero() {
		// The other instance lost its connection to the session, which was
		// resumed here meanwhile: that is no claim; the session stays here.
		s.mu.Unlock()
		r.mu.Unlock()
		return
	}
	if owner != r.instance && s.conn != nil {
		// Resumed on another instance: that connection is the session's
		// now; this one is left without a session.
		s.conn = nil
		s.held, s.heldEvents, s.heldLost = false, nil, false
	}
	s.owner, s.detachedAt, s.orphanedAt = owner, time.Time{}, time.Time{}
	s.mu.Unlock()
	r.mu.Unlock()
	r.routes.Replace(s, s.viewer(), rec.filters())
	if rec.Watching {
		r.team.Watch(s, agent.ID)
	} else {
		r.team.End(s)
	}
	if s.Ended() { // ended meanwhile: remove may have run before the lines above
		r.routes.Remove(s)
		r.team.End(s)
	}
}

// claimLocked makes this instance the owner of s (being attached here) and
// reports whether the others must be told; s.mu must be held.
func (r *Registry) claimLocked(s *Session) bool {
	if r.instance == "" || s.owner == r.instance {
		return false
	}
	s.owner, s.orphanedAt = r.instance, time.Time{}
	return true
}

// orphanedLocked reports whether s, owned by another instance, has had an
// owner that is not alive for the grace period; s.mu must be held.
func (r *Registry) orphanedLocked(s *Session, now time.Time) bool {
	if s.ended || s.conn != nil || r.alive == nil || !r.remoteOwner(s.owner) {
		return false
	}
	if r.alive(s.owner) {
		s.orphanedAt = time.Time{}
		return false
	}
	if s.orphanedAt.IsZero() {
		s.orphanedAt = now
		return false
	}
	return now.Sub(s.orphanedAt) >= r.grace
}
