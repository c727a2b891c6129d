package invapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Session is what auth/login returned. The token itself is unexported: String, GoString
// and JSON/zap encoding never show it.
type Session struct {
	Role        string
	Expires     time.Time
	Servers     []int64
	Permissions []string       // "module/action" names the token may call
	Raw         map[string]any // the reply's session object, token redacted

	token     string
	refreshAt time.Time // Expires minus a safety margin
}

// Token returns the session token. Never log it.
func (s *Session) Token() string { return s.token }

// Allows reports whether the login reply lists module/action among the permissions.
func (s *Session) Allows(module, action string) bool {
	return slices.Contains(s.Permissions, module+"/"+action)
}

// String has a value receiver so that printing a Session value (%+v of *s) cannot
// reach the unexported token either.
func (s Session) String() string {
	return "invapi.Session{Role:" + strconv.Quote(s.Role) + " Expires:" + s.Expires.UTC().Format(time.RFC3339) +
		" Servers:" + strconv.Itoa(len(s.Servers)) + " Token:" + Redacted + "}"
}

// GoString keeps %#v from printing the token.
func (s Session) GoString() string { return s.String() }

func (s *Session) clone() *Session {
	cp := *s
	cp.Servers = slices.Clone(s.Servers)
	cp.Permissions = slices.Clone(s.Permissions)
	cp.Raw = maps.Clone(s.Raw)
	return &cp
}

type loginFlight struct {
	done chan struct{}
	sess *Session
	err  error
}

// loginTimeout bounds a login that no caller waits for any more.
const loginTimeout = 2 * time.Minute

// Login logs in now, even if a valid token is cached, and returns the new session.
// Concurrent logins share one request.
func (c *Client) Login(ctx context.Context) (*Session, error) {
	s, err := c.session(ctx, true)
	if err != nil {
		return nil, err
	}
	return s.clone(), nil
}

// Session returns the current session, logging in when there is none or it is about
// to expire.
func (c *Client) Session(ctx context.Context) (*Session, error) {
	s, err := c.session(ctx, false)
	if err != nil {
		return nil, err
	}
	return s.clone(), nil
}

// session is the single-flight token cache: however many callers find the token
// missing or stale at once, one auth/login runs and all of them wait for it. The login
// runs detached from the first caller's context so that its cancellation does not fail
// the others; each caller still stops waiting when its own ctx is done.
func (c *Client) session(ctx context.Context, force bool) (*Session, error) {
	c.mu.Lock()
	if s := c.sess; s != nil && !force && c.now().Before(s.refreshAt) {
		c.mu.Unlock()
		return s, nil
	}
	f := c.flight
	if f == nil {
		f = &loginFlight{done: make(chan struct{})}
		c.flight = f
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loginTimeout)
		go func() {
			defer cancel()
			c.runLogin(lctx, f)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.sess, f.err
	case <-ctx.Done():
		return nil, ctxError(ctx, "auth", "login")
	}
}

func (c *Client) runLogin(ctx context.Context, f *loginFlight) {
	sess, base, err := c.login(ctx)
	c.mu.Lock()
	if err == nil {
		c.sess = sess
		if base != "" {
			c.base.Store(&base)
		}
	}
	c.flight = nil
	f.sess, f.err = sess, err
	c.mu.Unlock()
	close(f.done)
}

// dropToken forgets the cached session if it still holds token. Comparing tokens makes
// N requests refused with the same old token cause one re-login, not N.
func (c *Client) dropToken(token string) {
	c.mu.Lock()
	if c.sess != nil && c.sess.token == token {
		c.sess = nil
	}
	c.mu.Unlock()
}

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.token
}

// login performs auth/login and returns the session and, when the reply names another
// vendor host and we are talking to the vendor, the new base URL.
func (c *Client) login(ctx context.Context) (*Session, string, error) {
	if c.apiKey == "" {
		return nil, "", &Error{Module: "auth", Action: "login", Kind: KindAuth, Message: "no API key configured (HOSTKEY_API_KEY)"}
	}
	req := &Request{
		Module: "auth", Action: "login", Method: "POST",
		Params:   map[string]any{"ttl": int64(c.ttl / time.Second)},
		loginKey: c.apiKey, // not a param: params may not carry "key" on auth
		NoAuth:   true,
		// Asking again while a token is valid just returns a valid token (001), so a
		// login may be retried like a read.
		ReadOnly: true,
	}
	start := c.now()
	resp, err := c.send(ctx, req, "")
	if err != nil {
		return nil, "", err
	}
	sess, invapiHost, perr := parseLogin(resp.Fields, start, c.ttl)
	if perr != nil {
		return nil, "", perr
	}
	base := ""
	if cur := c.BaseURL(); invapiHost != "" && isVendorBase(cur) {
		if nb, ok := vendorBase(invapiHost); ok && nb != cur {
			base = nb
		} else if !ok {
			c.log.Warn("invapi login named a non-vendor invapi host; ignored", zap.String("invapi", invapiHost))
		}
	}
	c.log.Debug("invapi login",
		zap.String("role", sess.Role),
		zap.Time("expires", sess.Expires),
		zap.Int("servers", len(sess.Servers)),
		zap.Int("permissions", len(sess.Permissions)),
		zap.String("base_url", base))
	return sess, base, nil
}

// parseLogin reads both reply shapes: flat {"token",...} and nested
// {"result":{"token",...}}; result.scope is a fallback token field in one client.
func parseLogin(f map[string]any, now time.Time, ttl time.Duration) (*Session, string, error) {
	protoErr := func(msg string) error {
		return &Error{Module: "auth", Action: "login", Kind: KindProtocol, Message: msg}
	}
	if f == nil {
		return nil, "", protoErr("login reply is not a JSON object")
	}
	obj := f
	if inner, ok := f["result"].(map[string]any); ok {
		obj = inner
	}
	tokenField := "token"
	token, _ := obj["token"].(string)
	if token == "" {
		if s, ok := obj["scope"].(string); ok && s != "" {
			token, tokenField = s, "scope"
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, "", protoErr("login reply carries no token")
	}
	s := &Session{token: token}
	s.Role = firstNonEmpty(textField(obj["role"]), textField(obj["role_name"]))
	s.Servers = parseServers(obj["servers"])
	if p, ok := obj["permissions"].([]any); ok {
		for _, v := range p {
			if name, ok := v.(string); ok {
				s.Permissions = append(s.Permissions, name)
			}
		}
	}
	// token_expire is a Unix time; without it (or when it is already past by our
	// clock, i.e. skew) fall back to now+ttl, else we would log in on every call.
	s.Expires = now.Add(ttl)
	if exp, ok := toInt64(obj["token_expire"]); ok && exp > 0 {
		if t := time.Unix(exp, 0); t.After(now) {
			s.Expires = t
		}
	}
	margin := min(60*time.Second, s.Expires.Sub(now)/2)
	s.refreshAt = s.Expires.Add(-margin)

	raw := make(map[string]any, len(obj))
	for k, v := range obj {
		if k == tokenField || IsSecretKey(k) {
			raw[k] = Redacted
		} else {
			raw[k] = v
		}
	}
	s.Raw = raw

	host := firstNonEmpty(textField(obj["invapi"]), textField(f["invapi"]))
	return s, host, nil
}

// parseServers reads [1,2], ["1","2"] or auth/info's {"1":"1"}.
func parseServers(v any) []int64 {
	var out []int64
	switch t := v.(type) {
	case []any:
		for _, it := range t {
			if n, ok := toInt64(it); ok {
				out = append(out, n)
			}
		}
	case map[string]any:
		for k := range t {
			if n, err := strconv.ParseInt(k, 10, 64); err == nil {
				out = append(out, n)
			}
		}
		slices.Sort(out)
	}
	return out
}

func toInt64(v any) (int64, bool) {
	switch t := v.(type) {
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n, true
		}
		if f, err := t.Float64(); err == nil {
			return int64(f), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		return n, err == nil
	case float64:
		return int64(t), true
	case int:
		return int64(t), true
	case int64:
		return t, true
	}
	return 0, false
}

var vendorDomains = []string{"hostkey.com", "hostkey.ru"}

func isVendorHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range vendorDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// isVendorBase reports whether base is an https URL on a vendor domain. Only then may a
// login reply move the client: a simulator or proxy base must never be redirected to
// production by the reply it serves.
func isVendorBase(base string) bool {
	u, err := url.Parse(base)
	return err == nil && u.Scheme == "https" && isVendorHost(u.Hostname())
}

// vendorBase turns the login reply's invapi field ("invapi.hostkey.ru" or a URL) into a
// base URL, accepting only https on the vendor's domains and the default port.
func vendorBase(v string) (string, bool) {
	s := strings.TrimSpace(v)
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	if p := u.Port(); p != "" && p != "443" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if !isVendorHost(host) || strings.Contains(u.Path, "..") {
		return "", false
	}
	path := u.Path
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return "https://" + host + path, true
}

// Logout ends the session (auth/logout) and forgets the token; call it on shutdown,
// after other requests have finished. A token invapi already forgot is not an error.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	_, err := c.send(ctx, &Request{Module: "auth", Action: "logout"}, s.token)
	if IsAuth(err) {
		return nil
	}
	return err
}
