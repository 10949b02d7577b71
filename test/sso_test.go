package test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"iproc/resources/sso/ssotest"
	"iproc/server"
)

const ssoAudience = "iproc-test-client"

// startSSOServer starts an in-process server taking ID tokens of issuer,
// logging at debug level into a capture that is checked, when the test
// ends, for any token p made.
func startSSOServer(t *testing.T, p *ssotest.Provider, issuer string, mutate func(*server.Config)) (*testServer, *ssotest.Log) {
	t.Helper()
	logs := &ssotest.Log{}
	ts := startServerLog(t, func(c *server.Config) {
		c.OIDCIssuer, c.OIDCAudience = issuer, ssoAudience
		if mutate != nil {
			mutate(c)
		}
	}, zerolog.New(logs).Level(zerolog.DebugLevel))
	t.Cleanup(func() { p.CheckNoToken(t, logs.String()) })
	select {
	case <-ts.SSOReady():
	case <-time.After(waitTimeout):
		t.Fatal("the server did not read the issuer's discovery document")
	}
	return ts, logs
}

// tokenLogin sends prepareSession with agent {id, token} on a new
// connection and returns the response.
func tokenLogin(t *testing.T, ts *testServer, id, token string) map[string]any {
	t.Helper()
	c := dial(t, ts.WS)
	return c.request("prepareSession", map[string]any{"model": "uccx", "agent": map[string]any{"id": id, "token": token}}, "")
}

func logins(t *testing.T, ts *testServer) string {
	t.Helper()
	caps := success(t, dial(t, ts.WS).request("getCapabilities", nil, ""))
	b, _ := json.Marshal(caps["logins"])
	return string(b)
}

// echoedToken returns data.agent.token of a response's original (failure)
// or resource.data (success).
func echoedToken(resp map[string]any) any {
	var data map[string]any
	if res, ok := resp["resource"].(map[string]any); ok {
		data, _ = res["data"].(map[string]any)
	} else if orig, ok := resp["original"].(map[string]any); ok {
		data, _ = orig["data"].(map[string]any)
	}
	agent, _ := data["agent"].(map[string]any)
	return agent["token"]
}

func TestSSOLogin(t *testing.T) {
	p := ssotest.New(t)
	ts, _ := startSSOServer(t, p, p.Issuer, nil)
	if got := logins(t, ts); got != `["password","oidc"]` {
		t.Errorf("logins = %s", got)
	}
	claims := func(agent string, edit func(map[string]any)) map[string]any {
		c := p.Claims(ssoAudience, "preferred_username", agent)
		if edit != nil {
			edit(c)
		}
		return c
	}

	// A good token: a session with the rights of the directory entry.
	good := p.Sign("k1", claims("2001", nil))
	resp := tokenLogin(t, ts, "2001", good)
	if resp["result"] != "success" {
		t.Fatalf("good token: %v", resp)
	}
	if echoedToken(resp) != "***" {
		t.Errorf("resource.data.agent.token = %v, want ***", echoedToken(resp))
	}
	if res, _ := resp["resource"].(map[string]any); res["id"] == "" || res["resumeToken"] == "" {
		t.Errorf("good token: no session in %v", resp)
	}

	// Rotation: the issuer retires k1 and publishes k2; a token of k2 makes
	// iproc read the key set again.
	p.AddKey("k2", false)
	p.Publish("k2")
	fetches := p.KeyFetches.Load()
	if resp := tokenLogin(t, ts, "3001", p.Sign("k2", claims("3001", nil))); resp["result"] != "success" {
		t.Fatalf("token of the rotated key: %v", resp)
	}
	if p.KeyFetches.Load() == fetches {
		t.Error("the new key id did not refresh the key set")
	}

	p.AddKey("rogue", false)
	now := time.Now()
	parts := strings.Split(p.Sign("k2", claims("1003", nil)), ".")
	forged, _ := json.Marshal(claims("1004", nil))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	p.Record(tampered)
	bad := []struct {
		name, id, token string
	}{
		{"expired", "1001", p.Sign("k2", claims("1001", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))},
		{"not yet valid", "1001", p.Sign("k2", claims("1001", func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }))},
		{"wrong audience", "1001", p.Sign("k2", claims("1001", func(c map[string]any) { c["aud"] = "another-app" }))},
		{"wrong issuer", "1002", p.Sign("k2", claims("1002", func(c map[string]any) { c["iss"] = "https://idp.example" }))},
		{"key not published", "1002", p.Sign("rogue", claims("1002", nil))},
		{"retired key", "1002", p.Sign("k1", claims("1002", nil))},
		{"tampered payload", "1004", tampered},
		{"claim names another agent", "1003", p.Sign("k2", claims("1001", nil))},
		{"agent not in the directory", "9999", p.Sign("k2", claims("9999", nil))},
	}
	for _, b := range bad {
		resp := tokenLogin(t, ts, b.id, b.token)
		f := failure(t, resp, "session.invalidCredentials")
		if strings.Contains(mustJSON(resp), b.token) || echoedToken(resp) != "***" {
			t.Errorf("%s: token not masked in the answer: %v", b.name, resp)
		}
		if f["message"] != "unknown agent or invalid token" {
			t.Errorf("%s: message %v", b.name, f["message"])
		}
	}

	// Token failures count like wrong passwords: 1002 failed three times
	// above; two more and even a good token is refused for now.
	for range 2 {
		failure(t, tokenLogin(t, ts, "1002", p.Sign("rogue", claims("1002", nil))), "session.invalidCredentials")
	}
	failure(t, tokenLogin(t, ts, "1002", p.Sign("k2", claims("1002", nil))), "rate.limited")

	// Passwords still work beside tokens; both at once is a bad request.
	dial(t, ts.WS).login("1001")
	f := failure(t, dial(t, ts.WS).request("prepareSession", map[string]any{"agent": map[string]any{"id": "1004", "password": testPassword, "token": good}}, ""), "request.invalid")
	if !strings.Contains(f["message"].(string), "not both") {
		t.Errorf("password and token: %v", f)
	}
}

func TestSSOOnlyRefusesPasswords(t *testing.T) {
	p := ssotest.New(t)
	ts, _ := startSSOServer(t, p, p.Issuer, func(c *server.Config) { c.NoPasswordLogin = true })
	if got := logins(t, ts); got != `["oidc"]` {
		t.Errorf("logins = %s", got)
	}
	c := dial(t, ts.WS)
	for range 6 { // more than the per-agent limit: refusals are not failed attempts
		f := failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, ""), "session.invalidCredentials")
		if msg := f["message"].(string); !strings.Contains(msg, "password logins are turned off") || !strings.Contains(msg, "token") {
			t.Fatalf("refusal message %q does not say to use a token", msg)
		}
	}
	f := failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001"}}, ""), "request.invalid")
	if !strings.Contains(f["message"].(string), "data.agent.token: required") {
		t.Errorf("no credentials: %v", f)
	}
	if resp := tokenLogin(t, ts, "1001", p.Sign("k1", p.Claims(ssoAudience, "preferred_username", "1001"))); resp["result"] != "success" {
		t.Fatalf("token login: %v", resp)
	}
}

func TestNoSSOConfiguredRefusesTokens(t *testing.T) {
	ts := startServer(t, nil)
	if got := logins(t, ts); got != `["password"]` {
		t.Errorf("logins = %s", got)
	}
	resp := tokenLogin(t, ts, "1001", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl")
	f := failure(t, resp, "session.invalidCredentials")
	if !strings.Contains(f["message"].(string), "password") || echoedToken(resp) != "***" {
		t.Errorf("token without an issuer: %v", resp)
	}
}

func TestSSOIssuerDownAtStartThenUp(t *testing.T) {
	// An address with nothing listening: the issuer is down at start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logs := &ssotest.Log{}
	ts := startServerLog(t, func(c *server.Config) {
		c.OIDCIssuer, c.OIDCAudience = "http://"+addr, ssoAudience
	}, zerolog.New(logs).Level(zerolog.DebugLevel))

	c := dial(t, ts.WS)
	login := func(token string) map[string]any {
		return c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "token": token}}, "")
	}
	for range 6 { // more than the per-agent limit: unavailability is not a failed attempt
		failure(t, login("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl"), "server.unavailable")
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d while the issuer is down, want 200", code)
	}
	c.login("1002") // passwords are not affected

	// The issuer comes up at that address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the issuer's address was taken meanwhile: %v", err)
	}
	idp := httptest.NewUnstartedServer(nil)
	idp.Listener.Close()
	idp.Listener = ln
	p := ssotest.NewAt(t, idp)
	t.Cleanup(func() { p.CheckNoToken(t, logs.String()) })
	token := p.Sign("k1", p.Claims(ssoAudience, "preferred_username", "1001"))
	c2 := dial(t, ts.WS)
	var resp map[string]any
	checkFor(t, 20*time.Second, "token login once the issuer is up", func() bool {
		resp = c2.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "token": token}}, "")
		return resp["result"] != "failure" || resp["failure"].(map[string]any)["code"] != "server.unavailable"
	})
	success(t, resp)
	if n := strings.Count(logs.String(), "identity provider unreachable"); n != 1 {
		t.Errorf("the unreachable issuer was logged %d times, want once:\n%s", n, logs.String())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserSSOLogin pastes an ID token into the debug page's login form,
// and logs in with the JS client's login({id, token}), in a real Chromium.
func TestBrowserSSOLogin(t *testing.T) {
	p := page{t: t, ctx: browserTab(t, 40*time.Second)}
	idp := ssotest.New(t)
	ts, _ := startSSOServer(t, idp, idp.Issuer, nil)
	token := idp.Sign("k1", idp.Claims(ssoAudience, "preferred_username", "1001"))

	p.do("open the page", chromedp.Navigate(ts.URL+"/"))
	p.waitFor("connected", `document.getElementById('status').textContent === 'connected'`)
	p.do("log in with a pasted ID token",
		chromedp.SendKeys(chromedp.CSS("#agent-id"), "1001"),
		chromedp.SetValue(chromedp.CSS("#id-token"), token),
		chromedp.Click(chromedp.CSS("#login")))
	p.waitFor("logged in", `document.getElementById('status').textContent.includes('1001')`)
	if leaked := p.eval(`String(document.documentElement.outerHTML.includes('` + token + `') || document.getElementById('id-token').value !== '')`); leaked != "false" {
		t.Errorf("the token is still on the page")
	}

	second := idp.Sign("k1", idp.Claims(ssoAudience, "preferred_username", "1002"))
	p.eval(`(window.ssoResult = 'pending', import('/iproc-client.js').then(async (m) => {
		const c = new m.IprocClient();
		await c.connect();
		const r = await c.login({id: '1002', token: '` + second + `'});
		window.ssoResult = r.result + ' ' + JSON.stringify(r.resource?.data?.agent);
	}).catch((e) => { window.ssoResult = String(e); }), 'started')`)
	p.waitFor("JS client login({id, token})", `window.ssoResult !== 'pending'`)
	if got := p.eval(`window.ssoResult`); got != `success {"id":"1002","token":"***"}` {
		t.Errorf("login({id, token}) = %s", got)
	}
}

// TestBinarySSOSettings runs the built binary: the single sign-on settings
// from the environment and flags, their start-up errors, and no token in
// its log.
func TestBinarySSOSettings(t *testing.T) {
	idp := ssotest.New(t)
	p := startBinary(t, "", []string{"IPROC_OIDC_ISSUER=" + idp.Issuer, "IPROC_OIDC_AUDIENCE=" + ssoAudience,
		"IPROC_PASSWORD_LOGIN=false", "IPROC_LOG_LEVEL=debug"},
		"--data", t.TempDir(), "--directory", writeTestDirectory(t), "--oidc-agent-claim", "employee_id")
	c := dial(t, p.WS)
	caps := success(t, c.request("getCapabilities", nil, ""))
	if got := mustJSON(caps["logins"]); got != `["oidc"]` {
		t.Errorf("logins = %s", got)
	}
	failure(t, c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "password": testPassword}}, ""), "session.invalidCredentials")
	claims := idp.Claims(ssoAudience, "employee_id", "1001")
	claims["preferred_username"] = "someone.else"
	var resp map[string]any
	checkFor(t, 20*time.Second, "the binary reading the discovery document", func() bool {
		resp = c.request("prepareSession", map[string]any{"agent": map[string]any{"id": "1001", "token": idp.Sign("k1", claims)}}, "")
		return resp["result"] != "failure" || resp["failure"].(map[string]any)["code"] != "server.unavailable"
	})
	success(t, resp)
	idp.CheckNoToken(t, p.output())

	bad := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--oidc-issuer", "http://idp.example.com"}, []string{"IPROC_OIDC_AUDIENCE=x"}, "--oidc-issuer"},
		{[]string{"--oidc-issuer", idp.Issuer}, nil, "--oidc-audience"},
		{[]string{"--oidc-audience", "x"}, nil, "--oidc-audience"},
		{[]string{"--password-login=false"}, nil, "--password-login"},
		{nil, []string{"IPROC_PASSWORD_LOGIN=maybe"}, "IPROC_PASSWORD_LOGIN"},
	}
	for _, b := range bad {
		cmd := exec.Command(binary(t), append([]string{"serve", "--data", t.TempDir(), "--listen", freePort(t)}, b.args...)...)
		cmd.Env = append(append(os.Environ(), "IPROC_LOG_FORMAT=json"), b.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v %v: started", b.args, b.env)
			continue
		}
		if !strings.Contains(string(out), b.want) {
			t.Errorf("%v %v: output does not name %s: %s", b.args, b.env, b.want, out)
		}
	}
}
