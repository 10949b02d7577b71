package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/directory"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
	"iproc/resources/routing"
)

// Internal event names: session lifecycle events are events in the log like
// notifications, so they persist, replay and cross instances the same way.
// (Agent states are teamstatus.EventAgentState.)
const (
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
	// CustomerFields are the fields holding customer data, masked for
	// viewers who may not see them (SPEC §3.6). Nil means
	// routing.DefaultCustomerFields; empty masks nothing.
	CustomerFields []string
}

// Registry holds the sessions of this server (and, in cluster mode, those
// of the other instances of its domain).
type Registry struct {
	log    store.Log
	grace  time.Duration
	now    func() time.Time
	logger zerolog.Logger
	dir    atomic.Pointer[directory.Directory]
	limits *loginLimiter
	routes *routing.Index[*Session]
	// customer masks customer data for the viewers who may not see it.
	customer routing.CustomerFields
	team     *teamstatus.Report[*Session]

	verifyToken func(ctx context.Context, agentID, token string) error
	noPassword  bool

	instance string
	alive    func(string) bool
	applied  atomic.Uint64 // highest seq dispatched
	// commits wakes catchUp when applied moves (cluster.go).
	commits *notifier

	// dirMu guards dirVersion and reloads (directory.go); the directory
	// itself is read without it.
	dirMu      sync.Mutex
	dirVersion uint64
	reloads    []reload

	mu      sync.RWMutex
	byID    map[string]*Session
	byAgent map[string]*Session
	// lastOpened is the last session opened for each agent anywhere; it
	// names the login generation (see loginKey).
	lastOpened map[string]string
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
	if cfg.CustomerFields == nil {
		cfg.CustomerFields = routing.DefaultCustomerFields
	}
	customer := routing.NewCustomerFields(cfg.CustomerFields...)
	r := &Registry{
		customer: customer,
		log:      cfg.Log, grace: cfg.Grace, now: cfg.Now, logger: cfg.Logger,
		limits:   newLoginLimiter(cfg.Now),
		routes:   routing.New[*Session](customer),
		team:     teamstatus.New[*Session](cfg.Directory),
		instance: cfg.Instance, alive: cfg.Alive,
		verifyToken: cfg.VerifyToken, noPassword: cfg.NoPasswordLogin,
		commits:    newNotifier(),
		byID:       map[string]*Session{},
		byAgent:    map[string]*Session{},
		lastOpened: map[string]string{},
	}
	r.dir.Store(cfg.Directory)
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// CustomerFields returns the customer-data fields the registry masks.
func (r *Registry) CustomerFields() routing.CustomerFields { return r.customer }

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
	// From is the log position the new session starts after: Attach sends
	// what was committed since (its own login state among it).
	From uint64
}

// confirmMessage asks the user whether to end the agent's other session.
func confirmMessage(agentID string) string {
	return fmt.Sprintf("agent %s already has a session; send prepareSession again with override true to end it and start a new one", agentID)
}

// Prepare runs the prepareSession flow for a client at remote: it checks
// the credentials (within the login limits), asks to confirm or ends the
// agent's other session, and makes a new session, not yet attached to a
// connection (see Attach).
func (r *Registry) Prepare(ctx context.Context, req PrepareRequest, remote string) (Prepared, error) {
	if req.Model != "" && req.Model != protocol.ModelUCCX {
		return Prepared{}, protocol.Errorf(protocol.CodeUnknownModel, "unknown call model %q: this server offers %q", req.Model, protocol.ModelUCCX)
	}
	var missing []string
	if req.Agent.ID == "" {
		missing = append(missing, "data.agent.id: required")
	}
	missing = append(missing, r.credentialProblems(req)...)
	if len(missing) > 0 {
		return Prepared{}, protocol.Errorf(protocol.CodeInvalid, "%s", strings.Join(missing, "; "))
	}
	if err := r.loginAllowed(req); err != nil {
		return Prepared{}, err
	}
	attempt, ok := r.limits.reserve(req.Agent.ID, remote)
	if !ok {
		return Prepared{}, protocol.ErrRateLimited
	}
	agent, err := r.authenticate(ctx, req)
	if err != nil {
		if isFailedAttempt(err) {
			attempt.fail()
		} else {
			attempt.release() // the provider could not be asked: not a failure
		}
		return Prepared{}, err
	}
	attempt.succeed()
	r.catchUp(ctx)
	r.mu.RLock()
	old := r.byAgent[agent.ID]
	r.mu.RUnlock()
	if old != nil && !req.Override {
		return Prepared{Confirm: confirmMessage(agent.ID)}, nil
	}
	if old != nil {
		if err := r.end(ctx, old, protocol.EndOverride); err != nil {
			return Prepared{}, err
		}
	}
	return r.open(ctx, agent)
}

// open makes and stores a new session of agent.
func (r *Registry) open(ctx context.Context, agent directory.Agent) (Prepared, error) {
	token, err := newToken()
	if err != nil {
		return Prepared{}, fmt.Errorf("session: resume token: %w", err)
	}
	_, head := r.log.Bounds()
	s := &Session{ID: newID(), Agent: agent, token: hashToken(token), owner: r.instance}
	r.mu.Lock()
	if cur := r.byAgent[agent.ID]; cur != nil {
		r.mu.Unlock() // another login of the same agent won the race
		return Prepared{Confirm: confirmMessage(agent.ID)}, nil
	}
	r.byID[s.ID] = s
	r.byAgent[agent.ID] = s
	prev := r.lastOpened[agent.ID]
	r.lastOpened[agent.ID] = s.ID
	r.mu.Unlock()
	opened := r.record(EventSessionOpened, s)
	opened.DedupKey = loginKey("opened", agent.ID, prev)
	loginState := teamstatus.Record(agent.ID, protocol.StateNotReady, "login", r.now())
	loginState.DedupKey = loginKey("state", agent.ID, prev)
	res, err := r.log.Append(ctx, []store.Record{opened, loginState})
	if err != nil || res[0].Duplicate { // not stored, or a login on another instance won the race
		r.remove(s)
		r.unopen(agent.ID, s.ID, prev)
		if err != nil {
			return Prepared{}, unavailable(err)
		}
		return Prepared{Confirm: confirmMessage(agent.ID)}, nil
	}
	return Prepared{Session: s, ResumeToken: token, From: head}, nil
}

// Attach makes c the connection of s and queues on it, in this order:
// reply (the answer to prepareSession or resumeSession), every event s is
// entitled to after the log position from, and then live events. It is the
// one way a connection gets a session. A connection s had before (a
// half-open peer, say) loses it. If s has ended meanwhile, c gets reply and
// then session.ended.
func (r *Registry) Attach(ctx context.Context, s *Session, c Conn, from uint64, reply []byte) {
	s.mu.Lock()
	if s.ended {
		c.Send(reply)
		c.Send(endedFrame(s.endReason))
		s.mu.Unlock()
		return
	}
	s.conn, s.detachedAt = c, time.Time{}
	s.held, s.heldEvents, s.heldLost = true, nil, false
	s.lastSeq = from
	// Tell the other instances (cluster mode) and the log (a detach was
	// stored) that the session is attached here now.
	tell := r.claimLocked(s) || s.storedDetached
	c.Send(reply)
	s.mu.Unlock()
	if tell {
		r.persistAttachment(s)
	}
	r.replay(ctx, s)
}

// Detach marks the session as disconnected from conn: it stays resumable for
// the grace period from now. The time is stored, so that a session restored
// after a restart keeps the grace it had left rather than a fresh one.
func (r *Registry) Detach(s *Session, conn Conn) {
	s.mu.Lock()
	detached := s.conn == conn && !s.ended
	if detached {
		s.conn = nil
		s.held, s.heldEvents, s.heldLost = false, nil, false
		s.detachedAt = r.now()
	} else if s.lost == conn && s.conn == nil && !s.ended {
		detached = true // dropped for overflowing: detached already
	}
	if s.lost == conn {
		s.lost = nil
	}
	s.mu.Unlock()
	if detached {
		r.persistAttachment(s)
	}
}

// persistAttachment stores whether s is attached (and since when it is
// detached), bounded by announceTimeout; a failure is logged, the session
// then restores as detached at the restart.
func (r *Registry) persistAttachment(s *Session) {
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	if err := r.persist(ctx, s); err != nil {
		r.logger.Warn().Err(err).Str("session_id", s.ID).Msg("session attachment not stored")
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
	first := s.endLocked(reason)
	s.mu.Unlock()
	if !first {
		return nil
	}
	r.remove(s)
	closed := store.Record{Name: EventSessionClosed, Data: closedData(s.ID, reason), Meta: store.Meta{AgentID: s.Agent.ID, Origin: r.instance}, DedupKey: "session.closed:" + s.ID}
	// A session ends once: the dedup keys keep instances that expire the
	// same orphaned session at once from logging it out twice.
	loggedOut := teamstatus.Record(s.Agent.ID, protocol.StateLoggedOut, reason, r.now())
	loggedOut.DedupKey = "session.loggedout:" + s.ID
	if _, err := r.log.Append(ctx, []store.Record{closed, loggedOut}); err != nil {
		return unavailable(err)
	}
	return nil
}

// remove forgets s: its entries in the registry, its subscriptions and its
// team-status watch.
func (r *Registry) remove(s *Session) {
	r.mu.Lock()
	if r.byID[s.ID] == s {
		delete(r.byID, s.ID)
	}
	if r.byAgent[s.Agent.ID] == s {
		delete(r.byAgent, s.Agent.ID)
	}
	r.mu.Unlock()
	r.routes.Remove(s)
	r.team.End(s)
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

// expire ends the sessions detached for the grace period, and those of
// instances that stopped.
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

// Resume checks a resumeSession request and returns the session to attach
// (Attach, from req.Since) with the answer.
func (r *Registry) Resume(ctx context.Context, req ResumeRequest) (*Session, Resumed, error) {
	r.catchUp(ctx)
	s, ok := r.Get(req.ID)
	if !ok || req.ResumeToken == "" || !tokenMatches(req.ResumeToken, s.token) {
		return nil, Resumed{}, protocol.ErrNotResumable
	}
	oldest, head := r.log.Bounds()
	s.mu.Lock()
	expired := s.ended || (s.conn == nil && !s.detachedAt.IsZero() && r.now().Sub(s.detachedAt) >= r.grace)
	s.mu.Unlock()
	if expired {
		return nil, Resumed{}, protocol.ErrNotResumable
	}
	// Recovered unless events after since were pruned from the history.
	recovered := req.Since >= head || (oldest > 0 && req.Since+1 >= oldest)
	return s, Resumed{Recovered: recovered, Seq: head}, nil
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
