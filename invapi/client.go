// Package invapi is the HTTP client of the Hostkey invapi API
// (https://invapi.hostkey.com/<module>.php).
//
// Every request is a form-encoded POST (GET where the catalog says so) carrying
// "action" and a session token. The client exchanges the API key for that token
// (auth/login), caches it until shortly before it expires, logs in again when invapi
// says the token is gone and replays the request if it was a read. It normalizes
// invapi's several error envelopes into one *Error, retries reads on transient
// failures, bounds response sizes and keeps secrets out of logs and errors.
// Of this module it imports only schemas (the catalog).
package invapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
)

// Version names the build in the User-Agent; the Makefile sets it with -ldflags.
var Version = "dev"

// DefaultBaseURL is invapi's production endpoint.
const DefaultBaseURL = "https://invapi.hostkey.com/"

// Options configures a Client. The zero value of every field picks the default.
type Options struct {
	BaseURL          string           // default DefaultBaseURL; requests go to BaseURL+endpoint
	APIKey           string           // HOSTKEY_API_KEY, exchanged for a session token
	TokenTTL         time.Duration    // ttl asked of auth/login, default 1h
	HTTPClient       *http.Client     // default: 60s timeout, pooled transport, no redirects
	UserAgent        string           // default "hostkey-mcp/<Version>"
	Logger           *zap.Logger      // default zap.NewNop(); debug lines are redacted
	MaxResponseBytes int64            // default 8 MiB; a larger body is a KindProtocol error
	Retry            RetryPolicy      // for reads only
	Resolver         Resolver         // how Call sends a module/action; nil: POST write with token
	Now              func() time.Time // clock for token expiry, default time.Now
	SecretKeys       []string         // extra parameter names to redact (see IsSecretKey)
}

// Spec says how to send one module/action.
type Spec struct {
	Endpoint   string   // default module+".php"
	Method     string   // default POST
	ReadOnly   bool     // retried on transient errors, replayed after a re-login
	NoAuth     bool     // sent without a session token
	SecretKeys []string // extra parameter names to redact
}

// Resolver tells Call how to send an action, typically from the catalog:
//
//	invapi.ResolverFunc(func(m, a string) (invapi.Spec, bool) {
//		act, ok := cat.Lookup(m, a)
//		if !ok {
//			return invapi.Spec{}, false
//		}
//		return invapi.Spec{Endpoint: act.Endpoint, Method: act.Method(),
//			ReadOnly: act.ReadOnly(), NoAuth: act.NoAuth, SecretKeys: act.SecretFields()}, true
//	})
type Resolver interface {
	Resolve(module, action string) (Spec, bool)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(module, action string) (Spec, bool)

// Resolve calls f.
func (f ResolverFunc) Resolve(module, action string) (Spec, bool) { return f(module, action) }

// Request is one invapi call.
type Request struct {
	Module, Action string
	Endpoint       string // default Module+".php"
	Method         string // "POST" (default) or "GET" (form in the query string)
	// Params are JSON-like values, encoded by EncodeForm. Names PHP would read as
	// "action" or "token", as "key" on the auth module, or as "pin" other than the
	// single top-level "pin" (the PIN slot tools.RequestWithPIN fills) are refused with a
	// *ParamNameError before anything is sent.
	Params     map[string]any
	NoAuth     bool     // send no session token
	ReadOnly   bool     // safe to retry and to replay once after a re-login
	SecretKeys []string // extra parameter names to redact in logs and errors

	loginKey string // auth/login's API key, written by the client itself
}

// Client talks to invapi. It is safe for concurrent use.
type Client struct {
	hc         *http.Client
	apiKey     string
	ttl        time.Duration
	ua         string
	log        *zap.Logger
	maxBody    int64
	retry      RetryPolicy
	resolver   Resolver
	now        func() time.Time
	secretKeys []string

	base atomic.Pointer[string] // may move to the login reply's invapi host

	mu     sync.Mutex
	sess   *Session     // nil: none yet, or dropped after an auth error
	flight *loginFlight // the login in progress, shared by every waiter
}

// New checks opts and builds a Client. It does not contact invapi.
func New(opts Options) (*Client, error) {
	base, err := normalizeBase(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		hc:         opts.HTTPClient,
		apiKey:     opts.APIKey,
		ttl:        opts.TokenTTL,
		ua:         opts.UserAgent,
		log:        opts.Logger,
		maxBody:    opts.MaxResponseBytes,
		retry:      opts.Retry.withDefaults(),
		resolver:   opts.Resolver,
		now:        opts.Now,
		secretKeys: append([]string(nil), opts.SecretKeys...),
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.ttl <= 0 {
		c.ttl = time.Hour
	}
	if c.ua == "" {
		c.ua = "hostkey-mcp/" + Version
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.maxBody <= 0 {
		c.maxBody = 8 << 20
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.base.Store(&base)
	return c, nil
}

// BaseURL returns the base URL requests currently go to.
func (c *Client) BaseURL() string { return *c.base.Load() }

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 32 // the default 2 defeats reuse under parallel tool calls
	return &http.Client{
		Timeout:   60 * time.Second,
		Transport: t,
		// A redirected POST turns into a GET without its form (or leaks the token to
		// another host); invapi never redirects, so surface it as a protocol error.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// normalizeBase accepts https URLs, and http only on loopback (a local simulator), so
// the API key never crosses a network in clear text.
func normalizeBase(raw string) (string, error) {
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invapi: bad base URL: %w", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invapi: bad base URL %q: want scheme://host/path/", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !httpx.IsLoopback(u.Hostname()) {
			return "", fmt.Errorf("invapi: base URL %q: plain http is allowed only on loopback", raw)
		}
	default:
		return "", fmt.Errorf("invapi: base URL %q: scheme must be https", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// Call sends module/action with params, as the Resolver says (POST, write, with token
// when the Resolver is nil or does not know the action).
func (c *Client) Call(ctx context.Context, module, action string, params map[string]any) (*Response, error) {
	req := &Request{Module: module, Action: action, Params: params}
	if c.resolver != nil {
		if s, ok := c.resolver.Resolve(module, action); ok {
			req.Endpoint, req.Method = s.Endpoint, s.Method
			req.ReadOnly, req.NoAuth, req.SecretKeys = s.ReadOnly, s.NoAuth, s.SecretKeys
		}
	}
	return c.Do(ctx, req)
}

// Do sends req. Business errors, auth failures and transport failures all come back as
// *Error; the Response is nil whenever the error is not.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// do is Do that also returns the decoded body of a business error.
func (c *Client) do(ctx context.Context, req *Request) (*Response, error) {
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	if req.NoAuth {
		return c.send(ctx, req, "")
	}
	for replayed := false; ; replayed = true {
		sess, err := c.session(ctx, false)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, req, sess.token)
		if err == nil || !IsAuth(err) {
			return resp, err
		}
		c.dropToken(sess.token)
		// A write may have been applied before invapi complained; never send it twice.
		if !req.ReadOnly || replayed {
			return resp, err
		}
		c.log.Debug("invapi token refused, logging in again to replay a read",
			zap.String("module", req.Module), zap.String("action", req.Action))
	}
}

func validateRequest(req *Request) error {
	if req == nil {
		return &Error{Kind: KindAPI, Message: "nil request"}
	}
	bad := func(msg string) error {
		return &Error{Module: req.Module, Action: req.Action, Kind: KindAPI, Message: msg}
	}
	if !validName(req.Module) || !validName(req.Action) {
		return bad("module and action must be non-empty [A-Za-z0-9_] names")
	}
	if req.Endpoint != "" && !validEndpoint(req.Endpoint) {
		return bad("invalid endpoint " + strconv.Quote(req.Endpoint))
	}
	switch strings.ToUpper(req.Method) {
	case "", "POST", "GET":
	default:
		return bad("unsupported method " + strconv.Quote(req.Method))
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validEndpoint keeps an endpoint a relative path under the base URL.
func validEndpoint(s string) bool {
	if strings.HasPrefix(s, "/") || strings.Contains(s, "..") || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

func (r *Request) endpoint() string {
	if r.Endpoint != "" {
		return r.Endpoint
	}
	return r.Module + ".php"
}

func (r *Request) method() string {
	// The API key must never sit in a URL (proxy and server logs keep URLs).
	if strings.EqualFold(r.Method, "GET") && !(r.Module == "auth" && r.Action == "login") {
		return http.MethodGet
	}
	return http.MethodPost
}

// encodeRequestForm writes action first, then the login key (auth/login only), the
// params in EncodeForm order, then the token. Names are checked first (names.go): a
// param PHP would read as action, token, pin (other than the PIN slot) or, on the auth
// module, key is refused, so nothing in params can replace what the client sends.
func encodeRequestForm(req *Request, token string) (string, error) {
	e := &formEncoder{}
	writePair(&e.b, "action", req.Action)
	if req.loginKey != "" {
		writePair(&e.b, "key", req.loginKey)
	}
	if err := e.params(req.Params, requestReservation(req)); err != nil {
		return "", err
	}
	if token != "" {
		writePair(&e.b, "token", token)
	}
	return e.b.String(), nil
}

// extraSecrets is the redaction list for req: the client's, the request's, and "key"
// on the auth module, where it is the API key.
func (c *Client) extraSecrets(req *Request) []string {
	if len(c.secretKeys) == 0 && len(req.SecretKeys) == 0 && req.Module != "auth" {
		return nil
	}
	out := make([]string, 0, len(c.secretKeys)+len(req.SecretKeys)+1)
	out = append(out, c.secretKeys...)
	out = append(out, req.SecretKeys...)
	if req.Module == "auth" {
		out = append(out, "key")
	}
	return out
}

// secretTexts are the values to scrub from free text (error messages quoting a body).
func (c *Client) secretTexts(req *Request, token string, extra []string) []string {
	out := []string{c.apiKey}
	if token != "" {
		out = append(out, token)
	}
	if cur := c.currentToken(); cur != "" && cur != token {
		out = append(out, cur)
	}
	return secretValues(req.Params, extra, out)
}

// send performs req with the given token, retrying reads on transient failures.
func (c *Client) send(ctx context.Context, req *Request, token string) (*Response, error) {
	method := req.method()
	endpoint := req.endpoint()
	form, err := encodeRequestForm(req, token)
	if err != nil {
		// Before a byte is sent: the name would not reach invapi as written.
		return nil, invalidParams(req, err)
	}
	extra := c.extraSecrets(req)
	attempts := 1
	// A PIN check that timed out may have counted as a failure; invapi locks the PIN
	// after a few (001: "Blocked For Security Purposes"), so never repeat one blindly.
	if req.ReadOnly && !carriesPIN(req.Params) {
		attempts = c.retry.Attempts
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		resp, e := c.roundTrip(ctx, req, method, endpoint, form)
		if e != nil && e.Message != "" {
			e.Message = RedactString(e.Message, c.secretTexts(req, token, extra)...)
		}
		c.logAttempt(req, method, endpoint, attempt, time.Since(start), resp, e, extra)
		if e == nil {
			return resp, nil
		}
		if attempt >= attempts || !e.Retryable() || ctx.Err() != nil {
			return resp, e
		}
		if err := c.retry.sleep(ctx, c.retry.delay(attempt, e.RetryAfter)); err != nil {
			return nil, ctxError(ctx, req.Module, req.Action)
		}
	}
}

func (c *Client) roundTrip(ctx context.Context, req *Request, method, endpoint, form string) (*Response, *Error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx, req.Module, req.Action)
	}
	u := c.BaseURL() + endpoint
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + form
	} else {
		body = strings.NewReader(form)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &Error{Module: req.Module, Action: req.Action, Kind: KindProtocol, Err: scrubURLError(err)}
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.ua)

	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, c.transportError(ctx, req, err)
	}
	defer hresp.Body.Close()

	if hresp.ContentLength > c.maxBody {
		return nil, c.oversize(req, hresp.StatusCode)
	}
	var buf bytes.Buffer
	if n := hresp.ContentLength; n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(hresp.Body, c.maxBody+1)); err != nil {
		return nil, c.transportError(ctx, req, err)
	}
	if int64(buf.Len()) > c.maxBody {
		return nil, c.oversize(req, hresp.StatusCode)
	}
	resp, e := decodeResponse(req.Module, req.Action, hresp.StatusCode, hresp.Header, buf.Bytes())
	if e != nil && e.RetryAfter > c.retry.MaxRetryAfter {
		e.RetryAfter = c.retry.MaxRetryAfter
	}
	return resp, e
}

func (c *Client) oversize(req *Request, status int) *Error {
	return &Error{Module: req.Module, Action: req.Action, Kind: KindProtocol, HTTPStatus: status,
		Message: fmt.Sprintf("response body exceeds %d bytes", c.maxBody)}
}

func (c *Client) transportError(ctx context.Context, req *Request, err error) *Error {
	if ctx.Err() != nil {
		return ctxError(ctx, req.Module, req.Action)
	}
	kind := KindTransport
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		kind = KindTimeout // http.Client.Timeout, not the caller's deadline
	}
	return &Error{Module: req.Module, Action: req.Action, Kind: kind, Err: scrubURLError(err)}
}

// scrubURLError redacts the URL net/http puts in its errors: a GET carries the token.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

func (c *Client) logAttempt(req *Request, method, endpoint string, attempt int, d time.Duration, resp *Response, e *Error, extra []string) {
	ce := c.log.Check(zapcore.DebugLevel, "invapi request")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 10)
	fields = append(fields,
		zap.String("module", req.Module),
		zap.String("action", req.Action),
		zap.String("method", method),
		zap.String("endpoint", endpoint),
		zap.Int("attempt", attempt),
		zap.Duration("duration", d),
		zap.Any("params", RedactParams(req.Params, extra...)),
	)
	status := 0
	if resp != nil {
		status = resp.HTTPStatus
	}
	if e != nil {
		status = e.HTTPStatus
		fields = append(fields, zap.String("kind", string(e.Kind)), zap.String("error", e.Error()))
	}
	fields = append(fields, zap.Int("status", status))
	ce.Write(fields...)
}

func carriesPIN(params map[string]any) bool {
	for k, v := range params {
		switch strings.ToLower(leafName(k)) {
		case "pin", "old_pin", "new_pin":
			if v != nil {
				return true
			}
		}
		if m, ok := v.(map[string]any); ok && carriesPIN(m) {
			return true
		}
	}
	return false
}
