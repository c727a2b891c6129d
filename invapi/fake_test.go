package invapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI is a small invapi stand-in for one test: auth.php issues tokens for one API
// key, every other endpoint checks the token the way invapi does ({"code":-2,...}) and
// then runs the handler registered for module/action. It records what it received.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string

	logins     atomic.Int32
	loginDelay time.Duration
	// loginReply builds the auth/login body for a new token; default: the nested shape.
	loginReply func(token string) string

	mu       sync.Mutex
	tokenSeq int
	valid    map[string]bool
	handlers map[string]fakeHandler
	calls    map[string]int
	reqs     map[string][]recorded
}

type recorded struct {
	Method, Path, RawQuery, Body string
	Form                         url.Values
	Header                       http.Header
}

type fakeHandler struct {
	noAuth bool
	fn     func(w http.ResponseWriter, r *http.Request, form url.Values)
}

func newFake(t *testing.T) *fakeAPI { return newFakeWith(t, nil) }

// newFakeWith lets a test configure the http.Server before it starts.
func newFakeWith(t *testing.T, configure func(*http.Server)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		t:        t,
		apiKey:   "hk-APIKEY-5f1c0d9e2b7a4e31",
		valid:    map[string]bool{},
		handlers: map[string]fakeHandler{},
		calls:    map[string]int{},
		reqs:     map[string][]recorded{},
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	if configure != nil {
		configure(f.srv.Config)
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL + "/" }

func (f *fakeAPI) handle(ma string, fn func(w http.ResponseWriter, r *http.Request, form url.Values)) {
	f.mu.Lock()
	f.handlers[ma] = fakeHandler{fn: fn}
	f.mu.Unlock()
}

func (f *fakeAPI) handleNoAuth(ma string, fn func(w http.ResponseWriter, r *http.Request, form url.Values)) {
	f.mu.Lock()
	f.handlers[ma] = fakeHandler{fn: fn, noAuth: true}
	f.mu.Unlock()
}

// reply registers a handler answering a fixed status and body.
func (f *fakeAPI) reply(ma string, status int, body string) {
	f.handle(ma, func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func (f *fakeAPI) count(ma string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[ma]
}

func (f *fakeAPI) requests(ma string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs[ma]...)
}

// revokeAll makes every issued token invalid, as a server-side expiry would.
func (f *fakeAPI) revokeAll() {
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeAPI) tokenValid(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.valid[tok]
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var form url.Values
	var err error
	if r.Method == http.MethodGet {
		form, err = url.ParseQuery(r.URL.RawQuery)
	} else {
		form, err = url.ParseQuery(string(raw))
	}
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	module := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".php")
	ma := module + "/" + form.Get("action")

	f.mu.Lock()
	f.calls[ma]++
	f.reqs[ma] = append(f.reqs[ma], recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Body: string(raw), Form: form, Header: r.Header.Clone()})
	h, ok := f.handlers[ma]
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	switch {
	case ma == "auth/login" && ok:
		h.fn(w, r, form)
	case ma == "auth/login":
		f.login(w, form)
	case !h.noAuth && !f.tokenValid(form.Get("token")): // invapi checks the token first
		io.WriteString(w, `{"code":-2,"message":"Authentication required"}`)
	case !ok:
		io.WriteString(w, `{"code":-1,"message":"`+ma+`: unknown action"}`)
	default:
		h.fn(w, r, form)
	}
}

func (f *fakeAPI) login(w http.ResponseWriter, form url.Values) {
	f.logins.Add(1)
	if f.loginDelay > 0 {
		time.Sleep(f.loginDelay)
	}
	if form.Get("key") != f.apiKey {
		io.WriteString(w, `{"code":-2,"message":"invalid hash"}`)
		return
	}
	f.mu.Lock()
	f.tokenSeq++
	tok := fmt.Sprintf("tok-%d-9c41e7d2a8b3f605", f.tokenSeq)
	f.valid[tok] = true
	f.mu.Unlock()
	if f.loginReply != nil {
		io.WriteString(w, f.loginReply(tok))
		return
	}
	exp := time.Now().Add(time.Hour).Unix()
	fmt.Fprintf(w, `{"result":{"token":%q,"role":"Customer billing","servers":[34533,32645],"permissions":["eq/list","eq/reboot"],"token_expire":%d,"new":1}}`, tok, exp)
}

// testClient builds a client for f whose retry sleeps are recorded instead of slept.
func testClient(t *testing.T, f *fakeAPI, mutate ...func(*Options)) (*Client, *sleepRecorder) {
	t.Helper()
	rec := &sleepRecorder{}
	opts := Options{BaseURL: f.URL(), APIKey: f.apiKey, Retry: RetryPolicy{Sleep: rec.sleep}}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

// fakeClock is an adjustable clock for token expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func okHandler(body string) func(http.ResponseWriter, *http.Request, url.Values) {
	return func(w http.ResponseWriter, _ *http.Request, _ url.Values) { io.WriteString(w, body) }
}

func mustKind(t *testing.T, err error, want ErrorKind) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error, got nil", want)
	}
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	if e.Kind != want {
		t.Fatalf("kind = %s, want %s (err: %v)", e.Kind, want, err)
	}
	return e
}
