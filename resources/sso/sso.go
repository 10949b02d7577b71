// Package sso verifies OpenID Connect ID tokens for single sign-on logins:
// prepareSession with agent: {id, token}.
//
// A Verifier reads the issuer's discovery document in the background,
// retrying with back-off while the issuer cannot be reached; until then token
// logins answer server.unavailable. Tokens are checked with go-oidc (issuer,
// audience, expiry, not-before, the signature algorithms the issuer
// publishes) against the issuer's keys, cached and refreshed when a token
// names a key id not seen yet. The claim Config.AgentClaim names must equal
// the agent id of the login. Tokens are never logged.
package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/rs/zerolog"

	"iproc/protocol"
)

// Failures of Verify.
var (
	// ErrInvalidCredentials answers a token that is not valid for the agent:
	// bad signature, unknown key, wrong issuer or audience, expired, not yet
	// valid, or naming another agent.
	ErrInvalidCredentials = protocol.ErrInvalidToken
	// ErrUnavailable answers a token login while the issuer's discovery
	// document or keys cannot be read.
	ErrUnavailable = &protocol.Error{Code: protocol.CodeUnavailable, Message: "the identity provider cannot be reached right now: try again shortly"}
)

// DefaultAgentClaim is the claim that names the agent when Config.AgentClaim
// is empty.
const DefaultAgentClaim = "preferred_username"

// Config configures a Verifier.
type Config struct {
	// Issuer is the issuer URL; its discovery document is
	// Issuer + "/.well-known/openid-configuration" (required).
	Issuer string
	// Audience is the client id ID tokens must be issued for (required).
	Audience string
	// AgentClaim names the claim that must equal the agent id. Empty means
	// preferred_username.
	AgentClaim string
	// Logger receives the verifier's logs (never a token).
	Logger zerolog.Logger
	// HTTPClient reads the discovery document and the keys. Nil means a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// RetryMin and RetryMax bound the back-off between discovery attempts.
	// Zero means 500 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// KeyRefreshMin is the least time between two key set refreshes caused
	// by tokens naming unknown key ids. Zero means 5 s.
	KeyRefreshMin time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks ID tokens. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	log   zerolog.Logger
	poke  chan struct{}
	ready chan struct{} // closed once discovery succeeded

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // set once ready
	keys     *keySet
}

// New checks cfg and starts reading the issuer's discovery document in the
// background until it succeeds or ctx ends.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("sso: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("sso: audience (the client id) is required with an issuer")
	}
	if cfg.AgentClaim == "" {
		cfg.AgentClaim = DefaultAgentClaim
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 500 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.KeyRefreshMin <= 0 {
		cfg.KeyRefreshMin = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{
		cfg:   cfg,
		log:   cfg.Logger.With().Str("component", "sso").Str("issuer", cfg.Issuer).Logger(),
		poke:  make(chan struct{}, 1),
		ready: make(chan struct{}),
	}
	go v.discoverLoop(ctx)
	return v, nil
}

// Ready is closed once the issuer's discovery document has been read.
func (v *Verifier) Ready() <-chan struct{} { return v.ready }

// discoverLoop reads the discovery document until it succeeds, waiting
// between attempts with exponential back-off; a token login that finds the
// verifier not ready shortens the wait to RetryMin after the last attempt.
// The first failure is logged as a warning, later ones at debug level.
func (v *Verifier) discoverLoop(ctx context.Context) {
	delay := v.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		last := v.cfg.Now()
		err := v.discover(ctx)
		if err == nil {
			ev := v.log.Info()
			if attempt > 1 {
				ev = ev.Int("attempts", attempt)
			}
			ev.Msg("identity provider discovered: token logins enabled")
			close(v.ready)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 {
			v.log.Warn().Err(err).Msg("identity provider unreachable: token logins answer server.unavailable until its discovery document is read (retrying)")
		} else {
			v.log.Debug().Err(err).Int("attempt", attempt).Msg("identity provider still unreachable")
		}
		if !v.wait(ctx, delay, last) {
			return
		}
		delay = min(delay*2, v.cfg.RetryMax)
	}
}

// wait waits delay, or until RetryMin after last if a login pokes; false
// means ctx ended.
func (v *Verifier) wait(ctx context.Context, delay time.Duration, last time.Time) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-v.poke:
	}
	soon := time.NewTimer(max(0, v.cfg.RetryMin-v.cfg.Now().Sub(last)))
	defer soon.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-soon.C:
		return true
	}
}

// discover reads the discovery document and sets up the token verifier.
func (v *Verifier) discover(ctx context.Context) error {
	hctx := oidc.ClientContext(ctx, v.cfg.HTTPClient)
	p, err := oidc.NewProvider(hctx, v.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return fmt.Errorf("discovery document: %w", err)
	}
	if meta.JWKSURI == "" {
		return errors.New("discovery document: no jwks_uri")
	}
	algs := supportedAlgs(meta.Algs)
	keys := newKeySet(meta.JWKSURI, algs, v.cfg.HTTPClient, v.cfg.KeyRefreshMin, v.cfg.Now)
	if err := keys.prefetch(ctx); err != nil {
		// Not fatal: the keys are fetched again at the first token login.
		v.log.Warn().Err(err).Msg("identity provider keys not read yet")
	}
	verifier := oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
		ClientID:             v.cfg.Audience,
		SupportedSigningAlgs: algs,
		Now:                  v.cfg.Now,
	})
	v.mu.Lock()
	v.verifier, v.keys = verifier, keys
	v.mu.Unlock()
	return nil
}

// signingAlgs are the algorithms go-oidc verifies; "none" and HMAC never.
var signingAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// supportedAlgs keeps the published algorithms this package can verify; none
// published means RS256, the one OpenID Connect requires.
func supportedAlgs(published []string) []string {
	var out []string
	for _, a := range published {
		for _, s := range signingAlgs {
			if a == s {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 {
		out = []string{oidc.RS256}
	}
	return out
}

// Verify checks that rawToken is a valid ID token of the issuer for the
// audience whose agent claim equals agentID. It returns nil,
// ErrInvalidCredentials or ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, agentID, rawToken string) error {
	v.mu.Lock()
	verifier, keys := v.verifier, v.keys
	v.mu.Unlock()
	if verifier == nil {
		select {
		case v.poke <- struct{}{}:
		default:
		}
		return ErrUnavailable
	}
	ctx, out := withOutcome(ctx)
	tok, err := verifier.Verify(ctx, rawToken)
	if err != nil {
		if out.unavailable {
			v.log.Warn().Str("agent_id", agentID).Str("reason", keys.lastError()).Msg("token login: identity provider keys unavailable")
			return ErrUnavailable
		}
		v.refused(agentID, reason(err))
		return ErrInvalidCredentials
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		v.refused(agentID, "claims are not a JSON object")
		return ErrInvalidCredentials
	}
	var who string
	if raw, ok := claims[v.cfg.AgentClaim]; !ok || json.Unmarshal(raw, &who) != nil {
		v.refused(agentID, fmt.Sprintf("claim %q missing or not a string", v.cfg.AgentClaim))
		return ErrInvalidCredentials
	}
	if who != agentID {
		v.refused(agentID, fmt.Sprintf("claim %q names another agent", v.cfg.AgentClaim))
		return ErrInvalidCredentials
	}
	return nil
}

func (v *Verifier) refused(agentID, why string) {
	v.log.Info().Str("agent_id", agentID).Str("reason", why).Msg("token login refused")
}

// reason names why go-oidc refused a token in words that cannot hold the
// token (its errors may quote parts of it).
func reason(err error) string {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return "expired at " + expired.Expiry.UTC().Format(time.RFC3339)
	case strings.Contains(msg, "malformed jwt"):
		return "malformed token, or signed with an algorithm the issuer does not publish"
	case strings.Contains(msg, "failed to verify signature"):
		return "signature not made by a published key"
	case strings.Contains(msg, "issued by a different provider"):
		return "wrong issuer"
	case strings.Contains(msg, "expected audience"):
		return "wrong audience"
	case strings.Contains(msg, "nbf"):
		return "not valid yet"
	}
	return "invalid token"
}

// outcome records, for one Verify, whether the keys could not be fetched
// (go-oidc flattens the key set's errors into text).
type outcome struct{ unavailable bool }

type outcomeKey struct{}

func withOutcome(ctx context.Context) (context.Context, *outcome) {
	o := &outcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func markUnavailable(ctx context.Context) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.unavailable = true
	}
}
