// Package demo is iproc's built-in simulator (`iproc serve --demo`): it
// makes the bundled demo directory come alive through the server's real
// paths, so a newcomer sees the debug page move with no other system. It is
// a client of the server like any other: its agents log in over WebSocket
// and change state (each state lasting StateMin to StateMax, 20–90 s by
// default, as in a contact centre), and it posts OCS CampaignGroupState and
// ContactProcessed notifications and GMS callback events over HTTP to the
// server's own address.
//
// The simulator never overrides a session it did not make: an agent someone
// else logged in (a person trying the page) is left alone and retried later.
// The sessions it makes are kept, with their resume tokens, in DataDir, so
// that after a restart it takes them back with resumeSession instead of
// finding its agents busy. On stop it logs its agents out; a login in
// flight is finished (bounded) and its session closed too. Its rate is
// bounded, and Run returns only once every goroutine it started has
// stopped.
package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/backoff"
)

// Agent is a directory agent the simulator logs in and drives.
type Agent struct {
	ID        string
	Extension string
}

// Config configures the simulator. Zero values mean defaults.
type Config struct {
	// URL is the server's base URL, http://host:port (https for TLS).
	// Required.
	URL string
	// Agents are the agents that log in and change state; they all use
	// Password. At least one is required.
	Agents   []Agent
	Password string
	// IngestToken is sent as the bearer token of the notifications, when set.
	IngestToken string
	// Interval is the mean time between two notifications. Zero means 2s.
	Interval time.Duration
	// StateMin and StateMax bound how long an agent stays in one state.
	// Zero means 20s and 90s.
	StateMin, StateMax time.Duration
	// DataDir is where the simulator keeps the sessions it made (file
	// demo-sessions.json), to take them back after a restart. Empty means
	// they are not kept.
	DataDir string
	// TLSConfig is used for https and wss; nil means Go's defaults.
	TLSConfig *tls.Config
	// Log receives the simulator's messages.
	Log zerolog.Logger
}

// Paths the simulator posts to.
const (
	pathCampaignGroupState = "/ingest/ocs/campaign-group-state"
	pathContactProcessed   = "/ingest/ocs/contact-processed"
	pathCallback           = "/ingest/gms/callback"
)

// errBusy means the agent has a session the simulator did not make.
var errBusy = errors.New("the agent is logged in elsewhere")

// errEnded means the simulator's session was ended (overridden) by someone.
var errEnded = errors.New("the session was ended")

// sim is one run of the simulator.
type sim struct {
	cfg      Config
	wsURL    string
	http     *http.Client
	run      string // tells this run's notification ids from earlier runs'
	sessions *sessions
}

// Run drives the server at cfg.URL until ctx ends, then returns once every
// goroutine it started has stopped. It fails only for a bad Config or an
// unreadable DataDir.
func Run(ctx context.Context, cfg Config) error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("demo: URL %q is not http(s)://host:port", cfg.URL)
	}
	if len(cfg.Agents) == 0 {
		return errors.New("demo: no agents")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.StateMin <= 0 {
		cfg.StateMin = 20 * time.Second
	}
	if cfg.StateMax < cfg.StateMin {
		cfg.StateMax = max(cfg.StateMin, 90*time.Second)
	}
	saved, err := openSessions(cfg.DataDir)
	if err != nil {
		return err
	}
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.Path = "/ws"
	transport := &http.Transport{TLSClientConfig: cfg.TLSConfig, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	s := &sim{
		cfg:      cfg,
		wsURL:    ws.String(),
		http:     &http.Client{Transport: transport, Timeout: 10 * time.Second},
		run:      fmt.Sprintf("%06x", time.Now().UnixNano()/int64(time.Millisecond)&0xffffff),
		sessions: saved,
	}
	cfg.Log.Info().Int("agents", len(cfg.Agents)).Dur("interval", cfg.Interval).
		Dur("state_min", cfg.StateMin).Dur("state_max", cfg.StateMax).Msg("demo simulator running")
	var wg sync.WaitGroup
	for _, a := range cfg.Agents {
		wg.Go(func() { s.agentLoop(ctx, a) })
	}
	wg.Go(func() { s.notifyLoop(ctx) })
	wg.Wait()
	cfg.Log.Info().Msg("demo simulator stopped")
	return nil
}

// jitter returns a duration spread evenly over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// stateTime returns how long an agent stays in its next state.
func (s *sim) stateTime() time.Duration {
	return s.cfg.StateMin + rand.N(s.cfg.StateMax-s.cfg.StateMin+1)
}

// agentLoop keeps agent a logged in and working until ctx ends.
func (s *sim) agentLoop(ctx context.Context, a Agent) {
	log := s.cfg.Log.With().Str("agent", a.ID).Logger()
	retry := backoff.Backoff{First: min(s.cfg.StateMin, time.Second), Max: 30 * time.Second}
	for {
		started := time.Now()
		err := s.agentSession(ctx, a, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > s.cfg.StateMax {
			retry.Reset() // the session lasted: this is a new failure
		}
		wait := retry.Next()
		switch {
		case errors.Is(err, errBusy), errors.Is(err, errEnded):
			// Someone is using this agent: leave it to them for a while
			// (and do not spend a bcrypt login on it every few seconds).
			wait = max(s.cfg.StateMax, 30*time.Second)
			log.Info().Err(err).Dur("retry_in", wait).Msg("demo agent steps aside")
		default:
			log.Debug().Err(err).Dur("retry_in", wait).Msg("demo agent disconnected")
		}
		if !backoff.Sleep(ctx.Done(), jitter(wait)) {
			return
		}
	}
}

// agentSession takes back a's saved session, or logs a in, on a new
// connection and changes its state now and then, until ctx ends (nil) or
// the session cannot go on (the error). Once it has a session, stopping
// logs it out, even when the stop came during the login.
func (s *sim) agentSession(ctx context.Context, a Agent, log zerolog.Logger) error {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: s.cfg.TLSConfig}
	ws, _, err := dialer.DialContext(ctx, s.wsURL, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	c := &wsClient{ws: ws}
	stop := context.AfterFunc(ctx, c.interrupt)
	defer stop()
	sid, state, err := s.takeBack(c, a, log)
	if err != nil {
		return err
	}
	if sid == "" {
		if sid, err = s.login(c, a); err != nil {
			return err
		}
		state = protocol.StateNotReady
	}
	defer func() {
		if ctx.Err() == nil { // not stopping: the session is left to be taken back
			return
		}
		if c.goodbye(sid) {
			log.Debug().Msg("demo agent logged out")
			s.forget(a.ID, log)
		} else {
			log.Warn().Msg("demo agent's logout not confirmed: its session is kept to be taken back")
		}
	}()
	for {
		if !backoff.Sleep(ctx.Done(), s.stateTime()) {
			return nil
		}
		next, reason := nextState(state)
		r, err := c.request(protocol.CmdSetState, map[string]any{"state": next, "reason": reason}, sid, false)
		if errors.Is(err, errStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Result != protocol.ResultSuccess {
			s.forget(a.ID, log)
			return fmt.Errorf("setState: %s", r.failure())
		}
		state = next
	}
}

// takeBack resumes the session an earlier run left for a, when there is
// one; the answer's sid is empty when there was none or it is gone. A
// session taken back is not_ready, as the simulator does not know its state.
func (s *sim) takeBack(c *wsClient, a Agent, log zerolog.Logger) (sid, state string, err error) {
	saved, ok := s.sessions.get(a.ID)
	if !ok {
		return "", "", nil
	}
	r, err := c.request(protocol.CmdResumeSession, map[string]any{
		"id": saved.ID, "resumeToken": saved.ResumeToken, "since": saved.Seq,
	}, "", true)
	if err != nil {
		return "", "", err
	}
	if r.Result != protocol.ResultSuccess {
		log.Info().Str("answer", r.failure()).Msg("demo agent's earlier session is gone: logging in")
		s.forget(a.ID, log)
		return "", "", nil
	}
	log.Info().Msg("demo agent took back its earlier session")
	return saved.ID, protocol.StateNotReady, nil
}

// login logs a in and saves the session it made.
func (s *sim) login(c *wsClient, a Agent) (string, error) {
	r, err := c.request(protocol.CmdPrepareSession, map[string]any{
		"model": protocol.ModelUCCX, "override": false,
		"agent": map[string]any{"id": a.ID, "password": s.cfg.Password},
	}, "", true)
	if err != nil {
		return "", err
	}
	switch {
	case r.Result == protocol.ResultConfirm:
		return "", errBusy
	case r.Result != protocol.ResultSuccess || r.Resource.ID == "":
		return "", fmt.Errorf("prepareSession: %s", r.failure())
	}
	s.cfg.Log.Debug().Str("agent", a.ID).Msg("demo agent logged in")
	if err := s.sessions.put(a.ID, savedSession{ID: r.Resource.ID, ResumeToken: r.Resource.ResumeToken, Seq: c.seq}); err != nil {
		s.cfg.Log.Warn().Err(err).Str("agent", a.ID).Msg("demo session not saved")
	}
	return r.Resource.ID, nil
}

// forget drops a's saved session.
func (s *sim) forget(agent string, log zerolog.Logger) {
	if err := s.sessions.remove(agent); err != nil {
		log.Warn().Err(err).Msg("demo session not forgotten")
	}
}

// nextState picks what an agent in state does next: a ready agent takes a
// call and wraps up (ACW) or takes a break; everyone else gets ready again.
func nextState(state string) (string, string) {
	if state != protocol.StateReady {
		return protocol.StateReady, ""
	}
	switch n := rand.IntN(10); {
	case n < 6:
		return protocol.StateACW, ""
	case n < 8:
		return protocol.StateNotReady, "1" // break
	default:
		return protocol.StateNotReady, "32" // training
	}
}

// notifyLoop posts notifications until ctx ends: campaign group states,
// contact-processed calls and callback services, in turn.
func (s *sim) notifyLoop(ctx context.Context) {
	groups := demoGroups()
	for i, g := range groups { // the campaign table starts full
		s.post(ctx, pathCampaignGroupState, campaignGroupState(g, groupState(i), time.Now()))
	}
	calls, callbacks, step := 0, 0, 0
	for i := 0; ; i++ {
		if !backoff.Sleep(ctx.Done(), jitter(s.cfg.Interval)) {
			return
		}
		now := time.Now()
		switch i % 4 {
		case 0:
			g := groups[(i/4)%len(groups)]
			s.post(ctx, pathCampaignGroupState, campaignGroupState(g, groupState(i/8), now))
		case 1, 3:
			calls++
			a := s.cfg.Agents[calls%len(s.cfg.Agents)]
			s.post(ctx, pathContactProcessed, contactProcessed(groups[calls%len(groups)], s.run, calls, a.ID, now))
		case 2:
			a := s.cfg.Agents[callbacks%len(s.cfg.Agents)]
			s.post(ctx, pathCallback, callbackEvent(s.run, callbacks, step, a.ID, a.Extension, now))
			if step++; step == len(callbackSteps()) {
				step, callbacks = 0, callbacks+1
			}
		}
	}
}

// post sends one notification; failures are logged and the run goes on.
func (s *sim) post(ctx context.Context, path string, body map[string]any) {
	b, err := json.Marshal(body)
	if err != nil {
		s.cfg.Log.Error().Err(err).Str("path", path).Msg("demo: encode notification")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.cfg.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.IngestToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.IngestToken)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Debug().Err(err).Str("path", path).Msg("demo: post failed")
		}
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		s.cfg.Log.Warn().Int("status", resp.StatusCode).Str("path", path).Bytes("answer", answer).Msg("demo: notification refused")
	}
}
