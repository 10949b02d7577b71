// Package demo is iproc's built-in simulator (`iproc serve --demo`): it
// makes the bundled demo directory come alive through the server's real
// paths, so a newcomer sees the debug page move with no other system. It is
// a client of the server like any other: its agents log in over WebSocket
// and change state, and it posts OCS CampaignGroupState and ContactProcessed
// notifications and GMS callback events over HTTP to the server's own
// address.
//
// The simulator never overrides a session: an agent someone else logged in
// (a person trying the page) is left alone and retried later. Its rate is
// bounded (about one state change per agent and one notification per
// Interval), and Run returns only once every goroutine it started has
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
)

// DemoPassword is the password of every user of the bundled demo directory
// (README).
const DemoPassword = "demo-pass-2026"

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
	// Interval is the mean time between two state changes of one agent, and
	// between two notifications. Zero means 2s.
	Interval time.Duration
	// TLSConfig is used for https and wss; nil means Go's defaults.
	TLSConfig *tls.Config
	// Log receives the simulator's messages.
	Log zerolog.Logger
}

// Paths the simulator posts to (SPEC §4).
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
	cfg   Config
	wsURL string
	http  *http.Client
	run   string // tells this run's notification ids from earlier runs'
}

// Run drives the server at cfg.URL until ctx ends, then returns once every
// goroutine it started has stopped. It fails only for a bad Config.
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
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.Path = "/ws"
	transport := &http.Transport{TLSClientConfig: cfg.TLSConfig, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	s := &sim{
		cfg:   cfg,
		wsURL: ws.String(),
		http:  &http.Client{Transport: transport, Timeout: 10 * time.Second},
		run:   fmt.Sprintf("%06x", time.Now().UnixNano()/int64(time.Millisecond)&0xffffff),
	}
	cfg.Log.Info().Int("agents", len(cfg.Agents)).Dur("interval", cfg.Interval).Msg("demo simulator running")
	var wg sync.WaitGroup
	for _, a := range cfg.Agents {
		wg.Go(func() { s.agentLoop(ctx, a) })
	}
	wg.Go(func() { s.notifyLoop(ctx) })
	wg.Wait()
	cfg.Log.Info().Msg("demo simulator stopped")
	return nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter returns a duration spread evenly over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// agentLoop keeps agent a logged in and working until ctx ends.
func (s *sim) agentLoop(ctx context.Context, a Agent) {
	log := s.cfg.Log.With().Str("agent", a.ID).Logger()
	backoff := s.cfg.Interval
	for {
		err := s.agentSession(ctx, a)
		if ctx.Err() != nil {
			return
		}
		wait := backoff
		switch {
		case errors.Is(err, errBusy), errors.Is(err, errEnded):
			// Someone is using this agent: leave it to them for a while
			// (and do not spend a bcrypt login on it every few seconds).
			wait = max(15*s.cfg.Interval, 30*time.Second)
			log.Info().Err(err).Dur("retry_in", wait).Msg("demo agent steps aside")
		default:
			backoff = min(2*backoff, 30*time.Second)
			log.Debug().Err(err).Dur("retry_in", wait).Msg("demo agent disconnected")
		}
		if !sleep(ctx, jitter(wait)) {
			return
		}
	}
}

// agentSession logs a in on a new connection and changes its state now and
// then, until ctx ends (nil) or the session cannot go on (the error).
func (s *sim) agentSession(ctx context.Context, a Agent) error {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: s.cfg.TLSConfig}
	ws, _, err := dialer.DialContext(ctx, s.wsURL, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	// Stopping ends a blocked read at once; the connection stays usable for
	// the goodbye.
	stop := context.AfterFunc(ctx, func() { _ = ws.SetReadDeadline(time.Now()) })
	defer stop()
	c := &wsClient{ws: ws, ctx: ctx}
	r, err := c.request(protocol.CmdPrepareSession, map[string]any{
		"model": protocol.ModelUCCX, "override": false,
		"agent": map[string]any{"id": a.ID, "password": s.cfg.Password},
	}, "")
	if err != nil {
		return err
	}
	switch {
	case r.Result == protocol.ResultConfirm:
		return errBusy
	case r.Result != protocol.ResultSuccess || r.Resource.ID == "":
		return fmt.Errorf("prepareSession: %s", r.failure())
	}
	sid, state := r.Resource.ID, protocol.StateNotReady
	defer func() {
		if ctx.Err() != nil {
			c.goodbye(sid)
		}
	}()
	for {
		if !sleep(ctx, jitter(s.cfg.Interval)) {
			return nil
		}
		next, reason := nextState(state)
		r, err := c.request(protocol.CmdSetState, map[string]any{"state": next, "reason": reason}, sid)
		if err != nil {
			return err
		}
		if r.Result != protocol.ResultSuccess {
			return fmt.Errorf("setState: %s", r.failure())
		}
		state = next
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

// wsClient makes requests on one connection from one goroutine: it writes a
// request and reads frames up to its response, skipping events.
type wsClient struct {
	ws   *websocket.Conn
	ctx  context.Context // the run's: once it ends, requests stop
	next int
}

// errStopped means the run is stopping.
var errStopped = errors.New("the simulator is stopping")

// goodbye logs the session out (so the agent shows logged_out rather than
// a session left to expire) and closes the connection cleanly. The server
// handles the frames in order, so there is no need to wait for answers.
func (c *wsClient) goodbye(sid string) {
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteJSON(map[string]any{"command": protocol.CmdCloseSession, "id": "demo-bye", "resource": sid})
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "demo stopped"))
}

// response is the part of a response or event the simulator reads.
type response struct {
	Name     string          `json:"name"`
	ID       json.RawMessage `json:"id"`
	Result   string          `json:"result"`
	Resource struct {
		ID string `json:"id"`
	} `json:"resource"`
	Failure *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failure"`
}

func (r *response) failure() string {
	if r.Failure == nil {
		return r.Result
	}
	return r.Failure.Code + ": " + r.Failure.Message
}

// request sends command and returns its response; a session.ended event
// on the way is errEnded.
func (c *wsClient) request(command string, data any, resource string) (*response, error) {
	c.next++
	id := fmt.Sprintf("demo-%d", c.next)
	req := map[string]any{"command": command, "id": id, "data": data}
	if resource != "" {
		req["resource"] = resource
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteJSON(req); err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	want, _ := json.Marshal(id)
	_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	if c.ctx.Err() != nil { // stopped before the deadline was set: do not wait
		return nil, errStopped
	}
	for {
		var r response
		if err := c.ws.ReadJSON(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", command, err)
		}
		if r.Name == protocol.EventSessionEnded {
			return nil, errEnded
		}
		if r.Result != "" && bytes.Equal(r.ID, want) {
			return &r, nil
		}
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
		if !sleep(ctx, jitter(s.cfg.Interval)) {
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
