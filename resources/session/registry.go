package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/store"
	"iproc/resources/directory"
)

// Internal event names: session lifecycle and agent states are events in the
// log like notifications, so they persist, replay and cross instances the
// same way.
const (
	EventAgentState    = "agent.state"
	EventSessionOpened = "session.opened"
	EventSessionSubs   = "session.subscriptions"
	EventSessionClosed = "session.closed"
)

// Config configures a Registry. Zero values mean defaults.
type Config struct {
	// Log is the event log (required).
	Log store.Log
	// Directory is the directory at start (required); SetDirectory replaces it.
	Directory *directory.Directory
	// Grace is how long a disconnected session stays resumable. Zero means 60s.
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the registry's logs.
	Logger zerolog.Logger
	// Instance names this instance when several share the log (cluster
	// mode): sessions are owned by the instance that made or resumed them,
	// and session events of other instances update this registry. Empty
	// means a single instance.
	Instance string
	// Alive reports whether an instance is running; the sessions of an
	// instance that is not are expired by the others after Grace. Nil
	// means every instance is alive.
	Alive func(instance string) bool
	// VerifyToken checks an OpenID Connect ID token for agentID (single
	// sign-on), returning nil or a protocol failure. Nil refuses tokens.
	VerifyToken func(ctx context.Context, agentID, token string) error
	// NoPasswordLogin refuses password logins (single sign-on only).
	NoPasswordLogin bool
}

// Registry holds the sessions of this server.
type Registry struct {
	log    store.Log
	grace  time.Duration
	now    func() time.Time
	logger zerolog.Logger
	dir    atomic.Pointer[directory.Directory]
	limits *failureLimiter

	verifyToken func(ctx context.Context, agentID, token string) error
	noPassword  bool

	instance string
	alive    func(string) bool
	applied  atomic.Uint64 // highest seq Dispatch has seen
	// lastOpened is the last session opened for each agent anywhere (under
	// mu); it names the login generation (see loginKey).
	lastOpened map[string]string

	mu      sync.RWMutex
	byID    map[string]*Session
	byAgent map[string]*Session
	// topics lists, per topic, the subscribed sessions that see every
	// event of it (supervisors, team leads); own lists the subscribed agent
	// sessions by the agent id or extension that events name (subs.go).
	// Lists are appended to in place and copied on removal, so a list read
	// under the read lock may be walked after it is released.
	topics map[string][]*Session
	own    map[subKey][]*Session

	team teamStatus
}

// New makes a registry and loads the sessions and agent states the log's
// projection holds (sessions that existed before a restart are resumable for
// Grace from now).
func New(cfg Config) (*Registry, error) {
	if cfg.Log == nil || cfg.Directory == nil {
		return nil, errors.New("session: log and directory are required")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Registry{
		log: cfg.Log, grace: cfg.Grace, now: cfg.Now, logger: cfg.Logger,
		limits:   newFailureLimiter(cfg.Now),
		instance: cfg.Instance, alive: cfg.Alive,
		verifyToken: cfg.VerifyToken, noPassword: cfg.NoPasswordLogin,
		byID:    map[string]*Session{},
		byAgent: map[string]*Session{},
		topics:  map[string][]*Session{},
		own:     map[subKey][]*Session{},

		lastOpened: map[string]string{},
	}
	r.dir.Store(cfg.Directory)
	r.team.init()
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Directory returns the current directory.
func (r *Registry) Directory() *directory.Directory { return r.dir.Load() }

// Get returns the session with id.
func (r *Registry) Get(id string) (*Session, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.byID[id]
	return s, ok
}

// Count returns the number of sessions (attached or resumable).
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// PrepareRequest is the data of prepareSession.
type PrepareRequest struct {
	Model    string `json:"model"`
	Override bool   `json:"override"`
	Agent    struct {
		ID       string `json:"id"`
		Password string `json:"password"`
		Token    string `json:"token"`
	} `json:"agent"`
}

// Prepared is the outcome of Prepare: either Session is set, or Confirm holds
// the message asking the user to override.
type Prepared struct {
	Session     *Session
	ResumeToken string
	Confirm     string
}

// Prepare runs the prepareSession flow for a connection from remote. The new
// session is attached to conn but holds its live events until Release, so
// the answer goes out first.
func (r *Registry) Prepare(ctx context.Context, req PrepareRequest, remote string, conn Conn) (Prepared, error) {
	if req.Model != "" && req.Model != protocol.ModelUCCX {
		return Prepared{}, protocol.Errorf(protocol.CodeUnknownModel, "unknown call model %q: this server offers %q", req.Model, protocol.ModelUCCX)
	}
	var missing []string
	if req.Agent.ID == "" {
		missing = append(missing, "data.agent.id: required")
	}
	missing = append(missing, r.credentialProblems(req)...)
	if len(missing) > 0 {
		return Prepared{}, protocol.Errorf(protocol.CodeInvalid, "%s", joinSemi(missing))
	}
	if err := r.loginAllowed(req); err != nil {
		return Prepared{}, err
	}
	if !r.limits.allow(req.Agent.ID, remote) {
		return Prepared{}, protocol.ErrRateLimited
	}
	agent, err := r.authenticate(ctx, req)
	if err != nil {
		if isFailedAttempt(err) {
			r.limits.fail(req.Agent.ID, remote)
		}
		return Prepared{}, err
	}
	r.limits.succeed(req.Agent.ID)
	r.catchUp(ctx)
	r.mu.RLock()
	old := r.byAgent[agent.ID]
	r.mu.RUnlock()
	if old != nil && !req.Override {
		return Prepared{Confirm: fmt.Sprintf("agent %s already has a session; send prepareSession again with override true to end it and start a new one", agent.ID)}, nil
	}
	if old != nil {
		if err := r.end(ctx, old, protocol.EndOverride); err != nil {
			return Prepared{}, err
		}
	}
	token, err := newToken()
	if err != nil {
		return Prepared{}, fmt.Errorf("session: resume token: %w", err)
	}
	_, head := r.log.Bounds()
	s := &Session{ID: uuid.NewString(), Agent: agent, token: hashToken(token), subs: map[string]filter{}, conn: conn, held: true, lastSeq: head, owner: r.instance}
	r.mu.Lock()
	if cur := r.byAgent[agent.ID]; cur != nil {
		r.mu.Unlock() // another login of the same agent won the race
		return Prepared{Confirm: fmt.Sprintf("agent %s already has a session; send prepareSession again with override true to end it and start a new one", agent.ID)}, nil
	}
	r.byID[s.ID] = s
	r.byAgent[agent.ID] = s
	prev := r.lastOpened[agent.ID]
	r.lastOpened[agent.ID] = s.ID
	r.mu.Unlock()
	opened, _ := json.Marshal(sessionRecord{ID: s.ID, AgentID: agent.ID, TokenHash: s.token, Owner: r.instance})
	loginState := stateRecord(agent.ID, protocol.StateNotReady, "login", r.now())
	loginState.DedupKey = loginKey("state", agent.ID, prev)
	recs := []store.Record{
		{Name: EventSessionOpened, Data: opened, Meta: store.Meta{AgentID: agent.ID, Origin: r.instance}, DedupKey: loginKey("opened", agent.ID, prev)},
		loginState,
	}
	res, err := r.log.Append(ctx, recs)
	if err != nil {
		r.remove(s)
		r.unopen(agent.ID, s.ID, prev)
		return Prepared{}, unavailable(err)
	}
	if res[0].Duplicate { // a login on another instance won the race
		r.remove(s)
		r.unopen(agent.ID, s.ID, prev)
		return Prepared{Confirm: fmt.Sprintf("agent %s already has a session; send prepareSession again with override true to end it and start a new one", agent.ID)}, nil
	}
	return Prepared{Session: s, ResumeToken: token}, nil
}

// Release lets live events flow to a session held by Prepare or Resume,
// after the answer was sent: the events committed since the session was made
// (its own login state among them) are sent first.
func (r *Registry) Release(ctx context.Context, s *Session) { r.releaseFrom(ctx, s) }

// Detach marks the session as disconnected from conn: it stays resumable for
// the grace period.
func (r *Registry) Detach(s *Session, conn Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == conn {
		s.conn = nil
		s.held, s.heldEvents, s.heldLost = false, nil, false
		s.detachedAt = r.now()
	}
}

// Close ends the session at the client's request (closeSession).
func (r *Registry) Close(ctx context.Context, s *Session) error {
	return r.end(ctx, s, protocol.EndClosed)
}

// end ends s for reason: its connection gets session.ended, and the agent
// becomes logged_out.
func (r *Registry) end(ctx context.Context, s *Session, reason string) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	s.ended = true
	if s.conn != nil {
		s.conn.Send(endedFrame(reason))
		s.conn = nil
	}
	s.mu.Unlock()
	r.remove(s)
	closed, _ := json.Marshal(map[string]string{"id": s.ID, "reason": reason})
	// A session ends once: the dedup keys keep instances that expire the
	// same orphaned session at once from logging it out twice.
	loggedOut := stateRecord(s.Agent.ID, protocol.StateLoggedOut, reason, r.now())
	loggedOut.DedupKey = "session.loggedout:" + s.ID
	recs := []store.Record{
		{Name: EventSessionClosed, Data: closed, Meta: store.Meta{AgentID: s.Agent.ID, Origin: r.instance}, DedupKey: "session.closed:" + s.ID},
		loggedOut,
	}
	if _, err := r.log.Append(ctx, recs); err != nil {
		return unavailable(err)
	}
	return nil
}

func (r *Registry) remove(s *Session) {
	r.mu.Lock()
	if r.byID[s.ID] == s {
		delete(r.byID, s.ID)
	}
	if r.byAgent[s.Agent.ID] == s {
		delete(r.byAgent, s.Agent.ID)
	}
	for topic := range s.subs {
		r.removeSub(topic, s)
	}
	r.mu.Unlock()
	r.team.unwatch(s)
}

// Run expires detached sessions past the grace period until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.expire(ctx)
		}
	}
}

func (r *Registry) expire(ctx context.Context) {
	now := r.now()
	var due []*Session
	r.mu.RLock()
	for _, s := range r.byID {
		s.mu.Lock()
		if s.conn == nil && !s.ended && !s.detachedAt.IsZero() && now.Sub(s.detachedAt) >= r.grace {
			due = append(due, s)
		} else if r.orphanedLocked(s, now) {
			due = append(due, s)
		}
		s.mu.Unlock()
	}
	r.mu.RUnlock()
	for _, s := range due {
		if err := r.end(ctx, s, protocol.EndExpired); err != nil {
			r.logger.Warn().Err(err).Str("session_id", s.ID).Msg("expire session")
		}
	}
}

// ResumeRequest is the data of resumeSession.
type ResumeRequest struct {
	ID          string `json:"id"`
	ResumeToken string `json:"resumeToken"`
	Since       uint64 `json:"since"`
}

// Resumed is the answer to resumeSession.
type Resumed struct {
	Recovered bool   `json:"recovered"`
	Seq       uint64 `json:"seq"`
}

// Resume reattaches a session to conn. The session is held: the caller sends
// the answer, then calls Replay, which sends the missed events and lets live
// ones flow.
func (r *Registry) Resume(req ResumeRequest, conn Conn) (*Session, Resumed, error) {
	r.catchUp(context.Background())
	s, ok := r.Get(req.ID)
	if !ok || req.ResumeToken == "" || subtle.ConstantTimeCompare([]byte(hashToken(req.ResumeToken)), []byte(s.token)) != 1 {
		return nil, Resumed{}, protocol.ErrNotResumable
	}
	oldest, head := r.log.Bounds()
	s.mu.Lock()
	if s.ended || (s.conn == nil && !s.detachedAt.IsZero() && r.now().Sub(s.detachedAt) >= r.grace) {
		s.mu.Unlock()
		return nil, Resumed{}, protocol.ErrNotResumable
	}
	// A live but stale connection (a half-open TCP peer) is taken over.
	s.conn, s.detachedAt = conn, time.Time{}
	s.held, s.heldEvents, s.heldLost = true, nil, false
	s.lastSeq = req.Since
	claimed := r.claimLocked(s)
	s.mu.Unlock()
	if claimed {
		r.announce(s)
	}
	// Recovered unless events after since were pruned from the history.
	recovered := req.Since >= head || (oldest > 0 && req.Since+1 >= oldest)
	return s, Resumed{Recovered: recovered, Seq: head}, nil
}

// Replay sends the events after the session's position from the log, then
// the events held meanwhile, then lets live events flow.
func (r *Registry) Replay(ctx context.Context, s *Session) { r.releaseFrom(ctx, s) }

// releaseFrom reads the log from the session's position to the head, sending
// what the session is entitled to, until it is caught up; then it ends the
// hold. Events that arrive while it reads are held and sent after, unless
// already read (seq at or below the position).
func (r *Registry) releaseFrom(ctx context.Context, s *Session) {
	const page = 512
	for {
		s.mu.Lock()
		if s.conn == nil || s.ended {
			s.held, s.heldEvents, s.heldLost = false, nil, false
			s.mu.Unlock()
			return
		}
		if s.heldLost { // the held events overflowed: they are read from the log instead
			s.heldEvents, s.heldLost = nil, false
		}
		pos := s.lastSeq
		_, head := r.log.Bounds()
		if pos >= head {
			s.flushHeldLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		evs, err := r.log.Read(ctx, pos, page)
		if err != nil {
			r.logger.Warn().Err(err).Str("session_id", s.ID).Msg("replay read failed; going live")
			s.mu.Lock()
			s.flushHeldLocked()
			s.mu.Unlock()
			return
		}
		if len(evs) == 0 { // pruned meanwhile: nothing retained up to head
			s.mu.Lock()
			s.lastSeq = max(s.lastSeq, head)
			s.mu.Unlock()
			continue
		}
		cache := newEventCache()
		for _, ev := range evs {
			frames := r.framesFor(s, ev, cache)
			s.mu.Lock()
			c, fresh := s.conn, ev.Seq > s.lastSeq
			s.mu.Unlock()
			if c == nil {
				continue // detached or ended: the next turn of the loop stops
			}
			if fresh {
				for _, f := range frames {
					// Held: the hub does not send to s, so the replay may
					// wait for room in the queue without holding s.mu.
					if !c.SendWait(ctx, f) {
						return
					}
				}
			}
			s.mu.Lock()
			if s.conn == c {
				s.lastSeq = max(s.lastSeq, ev.Seq)
			}
			s.mu.Unlock()
		}
	}
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func unavailable(err error) error {
	return fmt.Errorf("%w: %w", protocol.ErrUnavailable, err)
}

func without(list []*Session, s *Session) []*Session {
	out := make([]*Session, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func joinSemi(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}
