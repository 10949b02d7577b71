package server

import (
	"net"
	"net/http"
	"strings"
)

// hostCheck is the DNS-rebinding defence of SPEC §4.2: a request is served
// only when its Host names this server: a loopback name, the literal
// listen address, or a name of AllowedHosts. A page on attacker.example
// whose name an attacker re-points at 127.0.0.1 reaches the socket, but its
// requests carry Host attacker.example and are refused with 421 before any
// handler runs, /ws included (the Origin check, which compares Origin with
// Host, would pass: both are the attacker's).
type hostCheck struct {
	// names are the allowed host names, lower case, without port or
	// trailing dot; IP literals in their plain form (::1, not [::1]).
	names map[string]bool
	// anyIP accepts every IP literal: the server listens on all addresses
	// (0.0.0.0, ::), so the literal listen address is any of the machine's.
	// A rebinding attack needs a name, never an IP literal.
	anyIP bool
}

// newHostCheck builds the check for listen address addr and the extra
// allowed names.
func newHostCheck(addr string, allowed []string) hostCheck {
	hc := hostCheck{names: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		hc.anyIP = true
	} else {
		hc.names[normalHost(host)] = true
	}
	for _, a := range allowed {
		if a = normalHost(strings.TrimSpace(a)); a != "" {
			hc.names[a] = true
		}
	}
	return hc
}

// normalHost returns the host name of a Host header value (host or
// host:port, IPv6 in brackets) in lower case without a trailing dot.
func normalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// allows reports whether Host header value host names this server.
func (hc hostCheck) allows(host string) bool {
	h := normalHost(host)
	if hc.names[h] {
		return true
	}
	return hc.anyIP && net.ParseIP(h) != nil
}

// isLoopbackHost reports whether Host header value host is a loopback name,
// one a foreign page cannot have its requests carry.
func isLoopbackHost(host string) bool {
	h := normalHost(host)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// wrap refuses requests whose Host is not allowed with 421 Misdirected
// Request, before next sees them.
func (hc hostCheck) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hc.allows(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "request.invalid",
				"this server does not answer to the Host of this request: add the name to --allowed-hosts", "Host")
			return
		}
		next.ServeHTTP(w, r)
	})
}
