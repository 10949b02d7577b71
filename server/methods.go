package server

import (
	"net/http"
	"strings"
)

// probeMethods are the methods tried when telling a wrong method from an
// unknown path.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// noRoute answers a request that mux sent to its fallback pattern: 405 with
// Allow when the path has routes for other methods, else 404 with notFound
// as the message. Both bodies are JSON errors, like every other error of
// the HTTP endpoints.
func noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux, fallback, notFound string) {
	if allow := allowedMethods(mux, r, fallback); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "request.invalid",
			r.Method+" is not allowed on "+r.URL.Path+": use "+strings.Join(allow, " or "), "method")
		return
	}
	writeError(w, http.StatusNotFound, "resource.notFound", notFound)
}

// allowedMethods returns the methods mux routes r's path with to a handler
// other than the fallback pattern.
func allowedMethods(mux *http.ServeMux, r *http.Request, fallback string) []string {
	var allow []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != fallback {
			allow = append(allow, m)
		}
	}
	return allow
}
