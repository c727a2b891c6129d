package httpx

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultMaxBody is the largest request body Guard passes on when GuardOptions.MaxBody is
// 0. MCP messages are small; a tool call's arguments are a few KiB at most.
const DefaultMaxBody = 1 << 20

// GuardOptions configure Guard.
type GuardOptions struct {
	// Token, when set, must arrive as "Authorization: Bearer <token>".
	Token string
	// AllowedOrigins are extra browser origins (scheme://host[:port]) allowed to call;
	// loopback origins are always allowed.
	AllowedOrigins []string
	// MaxBody bounds a request body in bytes (0: DefaultMaxBody, negative: no limit).
	MaxBody int64
}

// Guard hardens the streamable HTTP endpoint: the MCP spec asks servers to validate
// Origin (mcp-go checks only Host), and to require authorization when reachable from
// other machines. It wraps next with the Origin check, the bearer token check and the body limit. A
// request with an Origin that is neither loopback nor allowed gets 403 (DNS-rebinding
// defence); a missing or wrong token gets 401; a body over MaxBody gets 413, decided from
// Content-Length before reading, or after reading at most MaxBody+1 bytes.
func Guard(next http.Handler, o GuardOptions) http.Handler {
	maxBody := o.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
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
			if !Bearer(r, o.Token) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hostkey-mcp"`)
				http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
				return
			}
		}
		if maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
			if !limitBody(w, r, maxBody) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody answers 413 when r's body is over max, or replaces it with the bytes read. A
// body is buffered (at most max+1 bytes) rather than limited while the handler reads
// it, because mcp-go turns a read error into 400, and the client must learn it was the size.
func limitBody(w http.ResponseWriter, r *http.Request, max int64) bool {
	if r.ContentLength > max {
		tooLarge(w, max)
		return false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		tooLarge(w, max)
		return false
	case err != nil:
		http.Error(w, "could not read the request body", http.StatusBadRequest)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return true
}

func tooLarge(w http.ResponseWriter, max int64) {
	// The rest of the body stays unread: close the connection instead of draining it.
	w.Header().Set("Connection", "close")
	http.Error(w, "request body larger than "+strconv.FormatInt(max, 10)+" bytes (--http-max-body)", http.StatusRequestEntityTooLarge)
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
	return IsLoopback(u.Hostname())
}

// Bearer reports whether r carries "Authorization: Bearer <token>", compared in constant
// time (of hashes, so the token's length does not show either).
func Bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	return ok && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// SameOrigin reports whether the browser's Origin header names the origin r was sent to:
// a form post from the page itself, not from another site and not a bare script (which
// sends no Origin).
func SameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
