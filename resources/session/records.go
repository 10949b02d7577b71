package session

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"iproc/reporting/directory"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
	"iproc/resources/routing"
)

// sessionRecord is the stored form of a session (projection bucket
// "session"): enough to resume it after a restart or on another instance.
type sessionRecord struct {
	ID        string                       `json:"id"`
	AgentID   string                       `json:"agentId"`
	TokenHash string                       `json:"tokenHash"`
	Subs      map[string]map[string]string `json:"subs,omitempty"`
	Watching  bool                         `json:"watching,omitempty"`
	// Owner is the instance the session is attached to (cluster mode).
	Owner string `json:"owner,omitempty"`
	// DetachedAt is when the session lost its connection; zero while it is
	// attached (or when that was never stored).
	DetachedAt time.Time `json:"detachedAt,omitzero"`
}

const (
	bucketSession = "session"
	// bucketLastSession maps an agent to the last session opened for it.
	bucketLastSession = "lastsession"
)

// record returns the log record (opened or subscriptions) of s as it is now.
func (r *Registry) record(name string, s *Session) store.Record {
	s.mu.Lock()
	owner, detachedAt := s.owner, s.detachedAt
	if s.conn != nil {
		detachedAt = time.Time{}
	}
	s.storedDetached = !detachedAt.IsZero()
	s.mu.Unlock()
	rec := sessionRecord{ID: s.ID, AgentID: s.Agent.ID, TokenHash: s.token, Owner: owner, Watching: r.team.Watching(s), DetachedAt: detachedAt}
	if subs := r.routes.Subscriptions(s); len(subs) > 0 {
		rec.Subs = make(map[string]map[string]string, len(subs))
		for t, f := range subs {
			if f == nil {
				f = routing.Filter{} // stored as {}
			}
			rec.Subs[t] = f
		}
	}
	data, _ := json.Marshal(rec)
	return store.Record{Name: name, Data: data, Meta: store.Meta{AgentID: s.Agent.ID, Origin: r.instance}}
}

// filters returns rec's subscriptions in the routing index's form.
func (rec sessionRecord) filters() map[string]routing.Filter {
	out := make(map[string]routing.Filter, len(rec.Subs))
	for t, f := range rec.Subs {
		out[t] = f
	}
	return out
}

func closedData(id, reason string) json.RawMessage {
	data, _ := json.Marshal(map[string]string{"id": id, "reason": reason})
	return data
}

// Projector keeps the sessions in the log's projection, in the same commit
// as their events, so that they can be resumed after a restart.
type Projector struct{}

// Project implements store.Projector.
func (Projector) Project(kv store.KV, ev store.Event) error {
	switch ev.Name {
	case EventSessionOpened, EventSessionSubs:
		var rec sessionRecord
		if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
			return nil
		}
		if ev.Name == EventSessionOpened && rec.AgentID != "" {
			if err := kv.Put(bucketLastSession, rec.AgentID, []byte(rec.ID)); err != nil {
				return err
			}
		}
		return kv.Put(bucketSession, rec.ID, ev.Data)
	case EventSessionClosed:
		var rec sessionRecord
		if json.Unmarshal(ev.Data, &rec) != nil || rec.ID == "" {
			return nil
		}
		return kv.Delete(bucketSession, rec.ID)
	case EventDirectoryReloaded:
		return projectDirectory(kv, ev)
	}
	return nil
}

// load restores sessions (detached, resumable for the grace period from now),
// their subscriptions and watches, and the agent states from the projection.
func (r *Registry) load() error {
	var recs []sessionRecord
	var states []teamstatus.State
	var stored *directory.Directory
	var version uint64
	err := r.log.View(func(kv store.KV) error {
		var err error
		if stored, version, err = loadDirectory(kv); err != nil {
			return err
		}
		if states, err = teamstatus.LoadStates(kv); err != nil {
			return err
		}
		if err := kv.ForEach(bucketLastSession, func(agent string, v []byte) error {
			r.lastOpened[agent] = string(v)
			return nil
		}); err != nil {
			return err
		}
		return kv.ForEach(bucketSession, func(_ string, v []byte) error {
			var rec sessionRecord
			if json.Unmarshal(v, &rec) == nil && rec.ID != "" {
				recs = append(recs, rec)
			}
			return nil
		})
	})
	if err != nil {
		return errors.Join(errors.New("session: load sessions"), err)
	}
	if stored != nil {
		// The domain's directory, as the newest reload left it, wins over
		// the configured one.
		r.logger.Info().Uint64("version", version).Int("agents", len(stored.Agents())).Int("teams", len(stored.Teams())).
			Msg("using the directory stored by the newest reload instead of the configured one (PUT /admin/directory or SIGHUP loads a new one)")
		r.dir.Store(stored)
		r.dirVersion = version
		r.team.SetDirectory(version, stored, func(*Session, [][]byte) {})
	}
	r.team.Restore(states)
	dir := r.Directory()
	now := r.now()
	for _, rec := range recs {
		agent, ok := dir.Agent(rec.AgentID)
		if !ok {
			continue
		}
		// A session stored as detached keeps the grace it had left; one
		// attached when the server stopped is detached from now.
		s := &Session{ID: rec.ID, Agent: agent, token: rec.TokenHash, detachedAt: now, owner: rec.Owner}
		if !rec.DetachedAt.IsZero() {
			s.detachedAt, s.storedDetached = rec.DetachedAt, true
		}
		if r.remoteOwner(rec.Owner) {
			s.detachedAt = time.Time{} // the owner's to expire
		}
		r.byID[s.ID] = s
		r.byAgent[agent.ID] = s
		r.routes.Replace(s, s.viewer(), rec.filters())
		if rec.Watching {
			r.team.Watch(s, agent.ID)
		}
	}
	return nil
}

func newID() string { return uuid.NewString() }

// tokenMatches compares a resume token with a stored hash in constant time.
func tokenMatches(token, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) == 1
}
