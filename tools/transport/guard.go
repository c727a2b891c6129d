// Package transport hardens the streamable HTTP endpoint: the MCP spec asks servers to
// validate Origin (mcp-go checks only Host), and to require authorization when reachable
// from other machines.
package transport

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// GuardOptions configure Guard.
type GuardOptions struct {
	// Token, when set, must arrive as "Authorization: Bearer <token>".
	Token string
	// AllowedOrigins are extra browser origins (scheme://host[:port]) allowed to call;
	// loopback origins are always allowed.
	AllowedOrigins []string
}

// Guard wraps next with the Origin check and the bearer token check. A request with an
// Origin that is neither loopback nor allowed gets 403 (DNS-rebinding defence); a missing
// or wrong token gets 401.
func Guard(next http.Handler, o GuardOptions) http.Handler {
	allowed := map[string]bool{}
	for _, a := range o.AllowedOrigins {
		allowed[strings.TrimRight(strings.ToLower(a), "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !originOK(origin, allowed) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(o.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hostkey-mcp"`)
				http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func originOK(origin string, allowed map[string]bool) bool {
	origin = strings.TrimRight(strings.ToLower(origin), "/")
	if allowed[origin] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether host (no port) names this machine's loopback interface.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listen address (host:port) binds only to loopback.
// An empty host binds every interface, so it is not loopback.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	return IsLoopbackHost(host)
}
