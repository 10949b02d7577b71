package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// get requests path from h in-process and returns the recorded response.
func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestIndexServedWithSecurityHeaders(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	b := body(t, res)
	for _, want := range []string{`<script type="module" src="app.js">`, `id="event-log"`, `id="override-dialog"`} {
		if !strings.Contains(b, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}

	host := strings.TrimPrefix(srv.URL, "http://")
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://" + host + " wss://" + host, "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q allows more than same origin", csp)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", got)
	}
}

func TestScriptContentType(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/app.js", "/iproc-client.js"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET %s Content-Type = %q, want text/javascript", p, ct)
		}
	}
	if ct := get(t, h, http.MethodGet, "/style.css", nil).Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("GET /style.css Content-Type = %q, want text/css", ct)
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/static/app.js", "/../web.go", "/web.go"} {
		if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
}

func TestOnlyReadMethods(t *testing.T) {
	res := get(t, Handler(), http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST / = %d, want 405", res.StatusCode)
	}
	if allow := res.Header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow = %q, want GET, HEAD", allow)
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodGet, "/app.js", nil)
	tag := res.Header.Get("ETag")
	if tag == "" {
		t.Fatal("GET /app.js has no ETag")
	}
	again := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {tag}})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET /app.js with If-None-Match = %d, want 304", again.StatusCode)
	}
	if idx := get(t, h, http.MethodGet, "/", nil).Header.Get("ETag"); idx == "" || idx == tag {
		t.Errorf("GET / ETag = %q, want its own tag", idx)
	}
}

func TestHostNotCopiedWhenInvalid(t *testing.T) {
	if got := contentSecurityPolicy("evil; script-src *"); strings.Contains(got, "evil") {
		t.Errorf("CSP copied a bad host: %q", got)
	}
	if got := contentSecurityPolicy("[::1]:8080"); !strings.Contains(got, "ws://[::1]:8080 wss://[::1]:8080") {
		t.Errorf("CSP lacks the IPv6 host: %q", got)
	}
}

var (
	attrRef   = regexp.MustCompile(`\b(?:src|href)\s*=\s*["']([^"']+)["']`)
	importRef = regexp.MustCompile(`(?m)^\s*import\b[^'"]*['"]([^'"]+)['"]`)
	remoteRef = regexp.MustCompile(`(?i)(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?|\bfrom\s+["'])(?:[a-z][a-z0-9+.-]*:)?//`)
)

// TestLocalAssetsExist follows every src/href of index.html and every import
// of the served modules, and checks that each is served.
func TestLocalAssetsExist(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, http.MethodGet, "/", nil))
	var refs []string
	for _, m := range attrRef.FindAllStringSubmatch(index, -1) {
		refs = append(refs, m[1])
	}
	if len(refs) < 3 {
		t.Fatalf("index.html references %v, want at least the script, the style sheet and the icon", refs)
	}
	for i := 0; i < len(refs); i++ {
		ref := refs[i]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "//") {
			t.Errorf("reference %q is not a local asset", ref)
			continue
		}
		p := "/" + strings.TrimPrefix(strings.TrimPrefix(ref, "./"), "/")
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("asset %s = %d, want 200", p, res.StatusCode)
			continue
		}
		if strings.HasSuffix(p, ".js") {
			for _, m := range importRef.FindAllStringSubmatch(body(t, res), -1) {
				refs = append(refs, m[1])
			}
		}
	}
	if !slices.Contains(refs, "./iproc-client.js") {
		t.Errorf("app.js does not import ./iproc-client.js (found %v)", refs)
	}
}

// TestNoExternalAssets checks that no embedded file loads anything from
// another origin.
func TestNoExternalAssets(t *testing.T) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		n++
		if loc := remoteRef.FindIndex(b); loc != nil {
			t.Errorf("%s loads a remote asset: %q", name, b[loc[0]:min(len(b), loc[1]+40)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("embedded %d files, want at least index.html, app.js, iproc-client.js and style.css", n)
	}
}

// TestDocumentedIDsExist checks that every element id index.html documents
// for browser tests (its header comment) is an element of the page.
func TestDocumentedIDsExist(t *testing.T) {
	b, err := fs.ReadFile(static, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	start, end := strings.Index(page, "<!--"), strings.Index(page, "-->")
	if start < 0 || end < start {
		t.Fatal("index.html has no header comment")
	}
	ids := regexp.MustCompile(`#([a-z][a-z-]*)`).FindAllStringSubmatch(page[start:end], -1)
	if len(ids) < 20 {
		t.Fatalf("only %d documented ids", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(page[end:], `id="`+m[1]+`"`) {
			t.Errorf("documented id #%s is not on the page", m[1])
		}
	}
}
