// Package ssotest is a small OpenID provider for tests: an httptest server
// on loopback publishing a discovery document and a key set of RSA keys made
// in the test, and signing ID tokens with them.
package ssotest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Provider is an OpenID provider on loopback.
type Provider struct {
	*httptest.Server
	// Issuer is the issuer URL (the server's URL).
	Issuer string

	t  testing.TB
	mu sync.Mutex
	// keys holds every key that can sign; published lists the key ids
	// served in the key set.
	keys      map[string]*rsa.PrivateKey
	published []string
	down      atomic.Bool
	// KeyFetches counts key set requests (answered or not).
	KeyFetches atomic.Int64
	// Discoveries counts discovery document requests (answered or not).
	Discoveries atomic.Int64

	tokens []string // every token signed or recorded, under mu
}

// New starts a provider publishing one key, "k1". It stops when the test
// ends.
func New(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{t: t, keys: map[string]*rsa.PrivateKey{}}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	return p.start()
}

// NewAt is New on a listener the caller made (to start a provider at an
// address chosen before it was up).
func NewAt(t testing.TB, srv *httptest.Server) *Provider {
	t.Helper()
	p := &Provider{t: t, keys: map[string]*rsa.PrivateKey{}, Server: srv}
	srv.Config.Handler = http.HandlerFunc(p.serve)
	return p.start()
}

func (p *Provider) start() *Provider {
	p.Start()
	p.Issuer = p.URL
	p.AddKey("k1", true)
	p.t.Cleanup(p.Close)
	return p
}

// AddKey makes an RSA key kid; published puts it in the key set.
func (p *Provider) AddKey(kid string, published bool) {
	p.t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[kid] = k
	if published {
		p.published = append(p.published, kid)
	}
}

// Publish replaces the published key ids (a rotation).
func (p *Provider) Publish(kids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = kids
}

// SetDown makes the provider answer every request with 503 (down) or serve
// again.
func (p *Provider) SetDown(down bool) { p.down.Store(down) }

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		p.Discoveries.Add(1)
	case "/keys":
		p.KeyFetches.Add(1)
	}
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.Issuer,
			"authorization_endpoint":                p.Issuer + "/auth",
			"token_endpoint":                        p.Issuer + "/token",
			"jwks_uri":                              p.Issuer + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
		})
	case "/keys":
		p.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, kid := range p.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: p.keys[kid].Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	default:
		http.NotFound(w, r)
	}
}

// Claims returns the claims of a token valid now for audience and agent
// (named by claim), issued by p.
func (p *Provider) Claims(audience, claim, agent string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": p.Issuer, "aud": audience, "sub": "subject-" + agent, claim: agent,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Sign returns claims as a compact JWS signed with key kid (RS256).
func (p *Provider) Sign(kid string, claims map[string]any) string {
	p.t.Helper()
	p.mu.Lock()
	key := p.keys[kid]
	p.mu.Unlock()
	if key == nil {
		p.t.Fatalf("ssotest: no key %q", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		p.t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	p.Record(raw)
	return raw
}

// Record adds a token made by hand (tampered, forged) to those CheckNoToken
// looks for.
func (p *Provider) Record(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = append(p.tokens, token)
}

// CheckNoToken fails the test if text holds any token signed or recorded,
// or any part of one (header, payload, signature).
func (p *Provider) CheckNoToken(t testing.TB, text string) {
	t.Helper()
	p.mu.Lock()
	tokens := slices.Clone(p.tokens)
	p.mu.Unlock()
	if len(tokens) == 0 {
		t.Error("ssotest: no tokens made: the check checks nothing")
	}
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 8 && strings.Contains(text, part) {
				t.Errorf("token part %.20s… found in:\n%s", part, text)
			}
		}
	}
}

// Log is a goroutine-safe log capture (a zerolog writer).
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
