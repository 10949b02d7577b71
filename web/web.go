// Package web serves iproc's debug page: a static, dependency-free HTML page
// and three ES modules, embedded in the binary, that speak the WebSocket
// protocol at /ws from the browser. There is no build step; the files under
// static/ are served as they are.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Handler returns the handler serving the debug page and its assets from the
// embedded static folder. Every response carries a Content-Security-Policy
// that allows only same-origin scripts, styles and images and WebSocket
// connections to the same host, plus nosniff and no-cache headers; files get
// a content-hash ETag so revalidation is cheap. Methods other than GET and
// HEAD answer 405.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid literal path: a programming error.
		panic("web: " + err.Error())
	}
	etags := fileETags(root)
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy(r.Host))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The assets are not fingerprinted: make the browser revalidate each
		// time, so a new binary never runs against a stale script.
		h.Set("Cache-Control", "no-cache")
		if tag, ok := etags[assetName(r.URL.Path)]; ok {
			h.Set("ETag", tag)
		}
		files.ServeHTTP(w, r)
	})
}

// assetName maps a request path to the file name it serves: "/" and
// "/dir/" serve their index.html.
func assetName(p string) string {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		return "index.html"
	}
	if strings.HasSuffix(p, "/") {
		return name + "/index.html"
	}
	return name
}

// fileETags hashes every embedded file once, keyed by its path in root.
func fileETags(root fs.FS) map[string]string {
	tags := make(map[string]string)
	_ = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(b)
		tags[name] = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags
}

// contentSecurityPolicy allows only same-origin assets and WebSocket
// connections back to host. 'self' alone does not cover ws: and wss: in every
// browser, so the host is named; a Host header that is not a plain
// host[:port] is left out rather than copied into the header.
func contentSecurityPolicy(host string) string {
	connect := "connect-src 'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// validHost reports whether host is made only of the characters of a DNS
// name, an IPv4 or bracketed IPv6 address, and a port.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
