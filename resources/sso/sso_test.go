package sso

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/resources/sso/ssotest"
)

const audience = "iproc-client"

// setup starts a provider and a verifier of it, waits for discovery, and
// at the end checks that no token made in the test reached the log.
func setup(t *testing.T, mutate func(*Config)) (*ssotest.Provider, *Verifier) {
	t.Helper()
	p := ssotest.New(t)
	v, _ := newVerifier(t, p, mutate)
	waitReady(t, v)
	return p, v
}

func newVerifier(t *testing.T, p *ssotest.Provider, mutate func(*Config)) (*Verifier, *ssotest.Log) {
	t.Helper()
	logs := &ssotest.Log{}
	cfg := Config{Issuer: p.Issuer, Audience: audience, Logger: zerolog.New(logs).Level(zerolog.DebugLevel),
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, KeyRefreshMin: time.Hour}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.CheckNoToken(t, logs.String()) })
	return v, logs
}

func waitReady(t *testing.T, v *Verifier) {
	t.Helper()
	select {
	case <-v.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("discovery did not succeed")
	}
}

func code(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err == nil {
		return "ok"
	}
	return "not a protocol error: " + err.Error()
}

func TestConfigRequired(t *testing.T) {
	if _, err := New(context.Background(), Config{Audience: "a"}); err == nil {
		t.Error("no issuer: want an error")
	}
	if _, err := New(context.Background(), Config{Issuer: "http://127.0.0.1:1"}); err == nil {
		t.Error("no audience: want an error")
	}
}

func TestVerify(t *testing.T) {
	p, v := setup(t, nil)
	p.AddKey("unpublished", false)
	good := p.Claims(audience, DefaultAgentClaim, "1001")
	with := func(k string, val any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	now := time.Now()
	cases := []struct {
		name  string
		kid   string
		agent string
		c     map[string]any
		want  string
	}{
		{"good", "k1", "1001", good, "ok"},
		{"expired", "k1", "1001", with("exp", now.Add(-time.Minute).Unix()), protocol.CodeInvalidCredentials},
		// go-oidc allows 5 minutes of clock skew on nbf.
		{"not yet valid", "k1", "1001", with("nbf", now.Add(10*time.Minute).Unix()), protocol.CodeInvalidCredentials},
		{"nbf within skew", "k1", "1001", with("nbf", now.Add(time.Minute).Unix()), "ok"},
		{"wrong audience", "k1", "1001", with("aud", "another-client"), protocol.CodeInvalidCredentials},
		{"audience list with ours", "k1", "1001", with("aud", []string{"x", audience}), "ok"},
		{"wrong issuer", "k1", "1001", with("iss", "https://evil.example"), protocol.CodeInvalidCredentials},
		{"key not published", "unpublished", "1001", good, protocol.CodeInvalidCredentials},
		{"claim names another agent", "k1", "1002", good, protocol.CodeInvalidCredentials},
		{"claim missing", "k1", "1001", with(DefaultAgentClaim, nil), protocol.CodeInvalidCredentials},
		{"claim not a string", "k1", "1001", with(DefaultAgentClaim, 1001), protocol.CodeInvalidCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := p.Sign(tc.kid, tc.c)
			if got := code(v.Verify(context.Background(), tc.agent, tok)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTamperedAndForgedTokens(t *testing.T) {
	p, v := setup(t, nil)
	good := p.Sign("k1", p.Claims(audience, DefaultAgentClaim, "1001"))
	parts := strings.Split(good, ".")
	other, _ := json.Marshal(p.Claims(audience, DefaultAgentClaim, "2001"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(other) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + "."
	hs := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1"}`)) + "." + parts[1] + "." + parts[2]
	fetches := p.KeyFetches.Load()
	for _, tok := range []string{tampered, none, hs} {
		p.Record(tok)
	}
	for name, tok := range map[string]string{"tampered payload": tampered, "alg none": none, "alg HS256": hs, "not a JWT": "abc.def", "empty parts": ".."} {
		agent := "1001"
		if name == "tampered payload" {
			agent = "2001"
		}
		if got := code(v.Verify(context.Background(), agent, tok)); got != protocol.CodeInvalidCredentials {
			t.Errorf("%s: got %s, want %s", name, got, protocol.CodeInvalidCredentials)
		}
	}
	if n := p.KeyFetches.Load() - fetches; n != 0 {
		t.Errorf("bad tokens naming a known key made %d key set fetches, want 0", n)
	}
	if got := code(v.Verify(context.Background(), "1001", good)); got != "ok" {
		t.Errorf("good token after the bad ones: %s", got)
	}
}

func TestKeyRotation(t *testing.T) {
	p, v := setup(t, func(c *Config) { c.KeyRefreshMin = time.Millisecond })
	old := p.Sign("k1", p.Claims(audience, DefaultAgentClaim, "1001"))
	if got := code(v.Verify(context.Background(), "1001", old)); got != "ok" {
		t.Fatalf("k1 token: %s", got)
	}
	p.AddKey("k2", false)
	p.Publish("k2") // rotation: k1 retired, k2 new
	fresh := p.Sign("k2", p.Claims(audience, DefaultAgentClaim, "1001"))
	fetches := p.KeyFetches.Load()
	if got := code(v.Verify(context.Background(), "1001", fresh)); got != "ok" {
		t.Fatalf("token of the new key k2: %s", got)
	}
	if n := p.KeyFetches.Load() - fetches; n != 1 {
		t.Errorf("the unknown key id made %d key set fetches, want 1", n)
	}
	if got := code(v.Verify(context.Background(), "1001", fresh)); got != "ok" || p.KeyFetches.Load()-fetches != 1 {
		t.Errorf("k2 again: %s after %d fetches, want ok from the cache", got, p.KeyFetches.Load()-fetches)
	}
}

func TestUnknownKeyRefreshIsThrottled(t *testing.T) {
	p, v := setup(t, nil) // KeyRefreshMin: an hour
	p.AddKey("x1", false)
	p.AddKey("x2", false)
	fetches := p.KeyFetches.Load()
	for _, kid := range []string{"x1", "x2", "x1"} {
		tok := p.Sign(kid, p.Claims(audience, DefaultAgentClaim, "1001"))
		if got := code(v.Verify(context.Background(), "1001", tok)); got != protocol.CodeInvalidCredentials {
			t.Errorf("unpublished %s: %s", kid, got)
		}
	}
	if n := p.KeyFetches.Load() - fetches; n != 1 {
		t.Errorf("three tokens with unknown key ids made %d key set fetches, want 1 (throttled)", n)
	}
}

func TestKeysUnreachableIsUnavailable(t *testing.T) {
	p, v := setup(t, func(c *Config) { c.KeyRefreshMin = time.Millisecond })
	p.AddKey("k2", true)
	p.SetDown(true)
	tok := p.Sign("k2", p.Claims(audience, DefaultAgentClaim, "1001"))
	if got := code(v.Verify(context.Background(), "1001", tok)); got != protocol.CodeUnavailable {
		t.Errorf("new key while the key set cannot be read: %s, want %s", got, protocol.CodeUnavailable)
	}
	p.SetDown(false)
	// Refreshes are at least KeyRefreshMin apart: on a loaded machine the
	// next one may still fall inside it, so ask until it is due (bounded).
	deadline := time.Now().Add(5 * time.Second)
	got := code(v.Verify(context.Background(), "1001", tok))
	for got == protocol.CodeUnavailable && time.Now().Before(deadline) {
		got = code(v.Verify(context.Background(), "1001", tok))
	}
	if got != "ok" {
		t.Errorf("after the issuer is back: %s", got)
	}
}

func TestIssuerDownAtStartThenUp(t *testing.T) {
	p := ssotest.New(t)
	p.SetDown(true)
	v, logs := newVerifier(t, p, func(c *Config) {
		c.RetryMin, c.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	})
	tok := p.Sign("k1", p.Claims(audience, DefaultAgentClaim, "1001"))
	if got := code(v.Verify(context.Background(), "1001", tok)); got != protocol.CodeUnavailable {
		t.Fatalf("before discovery: %s, want %s", got, protocol.CodeUnavailable)
	}
	// Several failed attempts, then the issuer comes up.
	deadline := time.Now().Add(10 * time.Second)
	for p.Discoveries.Load() < 3 && time.Now().Before(deadline) {
		select {
		case <-v.Ready():
			t.Fatal("ready while the issuer is down")
		case <-time.After(time.Millisecond):
		}
	}
	p.SetDown(false)
	waitReady(t, v)
	if got := code(v.Verify(context.Background(), "1001", tok)); got != "ok" {
		t.Errorf("after discovery: %s", got)
	}
	log := logs.String()
	if n := strings.Count(log, "identity provider unreachable"); n != 1 {
		t.Errorf("the unreachable issuer was logged %d times at warn level, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "token logins enabled") {
		t.Errorf("success not logged:\n%s", log)
	}
}

func TestOtherAgentClaim(t *testing.T) {
	p, v := setup(t, func(c *Config) { c.AgentClaim = "employee_id" })
	c := p.Claims(audience, "employee_id", "1001")
	c[DefaultAgentClaim] = "someone-else"
	tok := p.Sign("k1", c)
	if got := code(v.Verify(context.Background(), "1001", tok)); got != "ok" {
		t.Errorf("employee_id claim: %s", got)
	}
}

func TestKeysUnreachableWhileThrottledStaysUnavailable(t *testing.T) {
	p, v := setup(t, nil) // KeyRefreshMin: an hour
	p.AddKey("k2", true)
	p.SetDown(true)
	tok := p.Sign("k2", p.Claims(audience, DefaultAgentClaim, "1001"))
	for i := range 2 { // the second is throttled: still unavailable, not refused
		if got := code(v.Verify(context.Background(), "1001", tok)); got != protocol.CodeUnavailable {
			t.Errorf("attempt %d while the key set cannot be read: %s, want %s", i+1, got, protocol.CodeUnavailable)
		}
	}
}

func TestClientHangUpDoesNotCancelTheKeyFetch(t *testing.T) {
	p, v := setup(t, func(c *Config) { c.KeyRefreshMin = time.Millisecond })
	p.AddKey("k2", true)
	tok := p.Sign("k2", p.Claims(audience, DefaultAgentClaim, "1001"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := code(v.Verify(ctx, "1001", tok)); got != "ok" {
		t.Errorf("Verify with a cancelled context: %s, want ok (the fetch is shared)", got)
	}
}
