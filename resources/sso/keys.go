package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxKeySetBytes bounds the key set document read from the issuer.
const maxKeySetBytes = 1 << 20

// keySet is the issuer's published signing keys (its jwks_uri), cached. A
// token naming a key id that is not cached refreshes the cache, at most once
// per minRefresh so that tokens with made-up key ids cannot make iproc
// hammer the issuer; a token naming a cached key is never a reason to
// refresh (a bad signature stays bad). It implements oidc.KeySet.
type keySet struct {
	url        string
	algs       []jose.SignatureAlgorithm
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time

	mu   sync.RWMutex
	keys []jose.JSONWebKey

	fetchMu   sync.Mutex // one refresh at a time
	lastMiss  time.Time  // last refresh caused by an unknown key id (under fetchMu)
	lastErr   string     // why the last fetch failed (under fetchMu)
	fetchedAt time.Time  // last successful fetch (under fetchMu)
}

func newKeySet(url string, algs []string, client *http.Client, minRefresh time.Duration, now func() time.Time) *keySet {
	ks := &keySet{url: url, client: client, minRefresh: minRefresh, now: now}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// prefetch reads the key set once, after discovery.
func (k *keySet) prefetch(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.fetch(ctx)
}

// VerifySignature returns the payload of jwt if a published key signed it.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if keys := k.matching(kid); len(keys) > 0 {
		return verifyWith(jws, keys)
	}
	if err := k.refresh(ctx, kid); err != nil {
		return nil, err
	}
	keys := k.matching(kid)
	if len(keys) == 0 {
		return nil, errors.New("no published key with that key id")
	}
	return verifyWith(jws, keys)
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, error) {
	for i := range keys {
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("signature does not verify")
}

// matching returns the cached keys for kid (every key when kid is empty).
func (k *keySet) matching(kid string) []jose.JSONWebKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if kid == "" {
		return k.keys
	}
	for _, key := range k.keys {
		if key.KeyID == kid {
			return []jose.JSONWebKey{key}
		}
	}
	return nil
}

// refresh fetches the key set because kid is not cached, unless another
// refresh found it meanwhile or the last such refresh was less than
// minRefresh ago. A fetch that fails marks the Verify unavailable.
func (k *keySet) refresh(ctx context.Context, kid string) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if len(k.matching(kid)) > 0 && kid != "" {
		return nil
	}
	now := k.now()
	if !k.lastMiss.IsZero() && now.Sub(k.lastMiss) < k.minRefresh {
		if k.lastErr != "" || k.fetchedAt.IsZero() {
			markUnavailable(ctx)
			return errors.New("keys not read: " + k.lastErr)
		}
		return nil // the cache is fresh enough: kid is unknown
	}
	k.lastMiss = now
	// The fetch serves every waiting login: a client that hangs up does not
	// cancel it (the HTTP client's timeout bounds it).
	if err := k.fetch(context.WithoutCancel(ctx)); err != nil {
		markUnavailable(ctx)
		return err
	}
	return nil
}

// fetch reads the key set into the cache; fetchMu is held.
func (k *keySet) fetch(ctx context.Context) error {
	keys, err := k.get(ctx)
	if err != nil {
		k.lastErr = err.Error()
		return err
	}
	k.lastErr = ""
	k.fetchedAt = k.now()
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

func (k *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("keys: %s answered %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(body) > maxKeySetBytes {
		return nil, fmt.Errorf("keys: %s sent more than %d bytes", k.url, maxKeySetBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("keys: %s: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue // a key type or algorithm this package does not use
		}
		if (key.Use != "" && key.Use != "sig") || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// lastError says why the last fetch failed ("" when it did not).
func (k *keySet) lastError() string {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.lastErr
}
