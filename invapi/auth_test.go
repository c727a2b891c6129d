package invapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrentExpiryCausesOneLogin(t *testing.T) {
	f := newFake(t)
	f.loginDelay = 50 * time.Millisecond // keep the login open while all 50 pile up
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	clk := &fakeClock{t: time.Now()}
	f.loginReply = func(tok string) string {
		return fmt.Sprintf(`{"result":{"token":%q,"token_expire":%d}}`, tok, clk.Now().Add(time.Hour).Unix())
	}
	c, _ := testClient(t, f, func(o *Options) { o.Now = clk.Now })
	ctx := context.Background()
	first, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Hour + time.Second) // the cached token is now past token_expire
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("logins = %d, want 2 (initial + exactly one re-login)", n)
	}
	second, _ := c.Session(ctx)
	for _, r := range f.requests("eq/list") {
		if tok := r.Form.Get("token"); tok != second.Token() || tok == first.Token() {
			t.Fatalf("request used token %q, want the new one", tok)
		}
	}
}

func TestServerSideExpiryCausesOneReloginAndReplaysReads(t *testing.T) {
	f := newFake(t)
	const n = 50
	var stale atomic.Int32
	gate := make(chan struct{})
	var once sync.Once
	f.handleNoAuth("eq/list", func(w http.ResponseWriter, _ *http.Request, form url.Values) {
		if !f.tokenValid(form.Get("token")) {
			// Hold every stale request until all 50 have arrived, so all of them see
			// the auth error with the same old token at the same time.
			if stale.Add(1) == n {
				once.Do(func() { close(gate) })
			}
			select {
			case <-gate:
			case <-time.After(5 * time.Second):
			}
			io.WriteString(w, `{"code":-2,"message":"Authentication required"}`)
			return
		}
		io.WriteString(w, `{"result":"OK"}`)
	})
	c, _ := testClient(t, f)
	ctx := context.Background()
	if _, err := c.Session(ctx); err != nil {
		t.Fatal(err)
	}
	f.revokeAll()

	var wg sync.WaitGroup
	var failed atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if stale.Load() != n {
		t.Fatalf("stale requests = %d, want %d", stale.Load(), n)
	}
	if got := f.logins.Load(); got != 2 {
		t.Fatalf("logins = %d, want 2 (initial + exactly one re-login)", got)
	}
	if got := f.count("eq/list"); got != 2*n || failed.Load() != 0 {
		t.Fatalf("requests = %d (want %d: each read once refused, once replayed), failed = %d", got, 2*n, failed.Load())
	}
}

func TestAuthErrorOnWriteIsNotReplayed(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	c, _ := testClient(t, f)
	ctx := context.Background()
	if _, err := c.Session(ctx); err != nil {
		t.Fatal(err)
	}
	f.revokeAll()

	_, err := c.Do(ctx, &Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 1}})
	e := mustKind(t, err, KindAuth)
	if e.Code != "-2" {
		t.Fatal(e)
	}
	if n := f.count("eq/reboot"); n != 1 {
		t.Fatalf("write sent %d times after an auth error, want 1", n)
	}
	if n := f.logins.Load(); n != 1 {
		t.Fatalf("logins = %d: a refused write must not trigger a login-and-replay", n)
	}
	// The token was dropped: the next call logs in afresh and works.
	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("logins = %d, want 2", n)
	}
}

func TestAuthErrorOnReadReplayedOnlyOnce(t *testing.T) {
	f := newFake(t)
	f.reply("eq/list", 200, `{"code":-2,"message":"Authentication required"}`) // refuses every token
	c, _ := testClient(t, f)
	_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
	mustKind(t, err, KindAuth)
	if n := f.count("eq/list"); n != 2 {
		t.Fatalf("read sent %d times, want 2 (original + one replay)", n)
	}
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("logins = %d, want 2", n)
	}
}

func TestHTTP401IsAuth(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.handle("eq/list", func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		if n.Add(1) == 1 {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, `{"result":"OK"}`)
	})
	c, _ := testClient(t, f)
	if _, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if f.logins.Load() != 2 || f.count("eq/list") != 2 {
		t.Fatalf("logins=%d requests=%d", f.logins.Load(), f.count("eq/list"))
	}
}

func TestLoginReplyShapes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(2 * time.Hour).Unix()
	cases := []struct {
		name, body, token string
		servers           []int64
		expires           time.Time
	}{
		{"nested", fmt.Sprintf(`{"result":{"token":"T1","role":"Customer billing","servers":[34533,32645],"permissions":["eq/list"],"token_expire":%d,"new":1}}`, exp),
			"T1", []int64{34533, 32645}, time.Unix(exp, 0)},
		{"flat", `{"token":"T2","invapi":"invapi.hostkey.com","servers":["7","8"]}`, "T2", []int64{7, 8}, now.Add(time.Hour)},
		{"scope fallback", `{"result":{"scope":"T3","servers":{"5":"5","3":"3"}}}`, "T3", []int64{3, 5}, now.Add(time.Hour)},
		{"expire in the past ignored", `{"result":{"token":"T4","token_expire":1000}}`, "T4", nil, now.Add(time.Hour)},
		{"expire as string", fmt.Sprintf(`{"result":{"token":"T5","token_expire":"%d"}}`, exp), "T5", nil, time.Unix(exp, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fields, _ := parseJSON([]byte(tc.body))
			s, _, err := parseLogin(fields.(map[string]any), now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if s.Token() != tc.token || !s.Expires.Equal(tc.expires) || fmt.Sprint(s.Servers) != fmt.Sprint(tc.servers) {
				t.Fatalf("got token=%q expires=%v servers=%v", s.Token(), s.Expires, s.Servers)
			}
			if !s.refreshAt.Equal(s.Expires.Add(-60 * time.Second)) {
				t.Fatalf("refreshAt = %v, want 60s before %v", s.refreshAt, s.Expires)
			}
			for k, v := range s.Raw {
				if v == tc.token {
					t.Fatalf("Raw[%q] holds the token", k)
				}
			}
		})
	}
	_, fields, _ := parseJSON([]byte(`{"result":{"role":"x"}}`))
	if _, _, err := parseLogin(fields.(map[string]any), now, time.Hour); KindOf(err) != KindProtocol {
		t.Fatalf("reply without token: %v", err)
	}
}

func TestShortTTLDoesNotLoopLogins(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	clk := &fakeClock{t: time.Now()}
	f.loginReply = func(tok string) string {
		return fmt.Sprintf(`{"result":{"token":%q,"token_expire":%d}}`, tok, clk.Now().Add(10*time.Second).Unix())
	}
	c, _ := testClient(t, f, func(o *Options) { o.Now = clk.Now })
	for range 5 {
		if _, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.logins.Load(); n != 1 {
		t.Fatalf("a 10s token caused %d logins for 5 calls (the 60s margin must shrink)", n)
	}
	clk.Advance(6 * time.Second) // past the halved margin
	c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("logins = %d, want a refresh once inside the margin", n)
	}
}

func TestRefreshSixtySecondsEarly(t *testing.T) {
	f := newFake(t)
	clk := &fakeClock{t: time.Now()}
	f.loginReply = func(tok string) string {
		return fmt.Sprintf(`{"result":{"token":%q,"token_expire":%d}}`, tok, clk.Now().Add(time.Hour).Unix())
	}
	c, _ := testClient(t, f, func(o *Options) { o.Now = clk.Now })
	ctx := context.Background()
	c.Session(ctx)
	clk.Advance(time.Hour - 61*time.Second)
	c.Session(ctx)
	if n := f.logins.Load(); n != 1 {
		t.Fatalf("refreshed too early: %d logins", n)
	}
	clk.Advance(2 * time.Second)
	c.Session(ctx)
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("no refresh 59s before expiry: %d logins", n)
	}
}

func TestLoginFailures(t *testing.T) {
	f := newFake(t)
	c, _ := testClient(t, f, func(o *Options) { o.APIKey = "wrong-key-123456" })
	_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
	e := mustKind(t, err, KindAuth)
	if e.Module != "auth" || e.Action != "login" || f.count("eq/list") != 0 {
		t.Fatalf("%+v, eq/list sent %d times", e, f.count("eq/list"))
	}
	if f.logins.Load() != 1 {
		t.Fatalf("a refused key must not be retried: %d logins", f.logins.Load())
	}

	f2 := newFake(t)
	f2.reply("auth/login", 200, `{"result":-1,"error":"No appropriate servers found","code":"NO_APPROPRIATE_SERVERS"}`)
	c2, _ := testClient(t, f2)
	_, err = c2.Login(context.Background())
	if e := mustKind(t, err, KindAPI); e.Code != "NO_APPROPRIATE_SERVERS" {
		t.Fatal(e)
	}

	c3, _ := testClient(t, f, func(o *Options) { o.APIKey = "" })
	_, err = c3.Session(context.Background())
	mustKind(t, err, KindAuth)
}

func TestLoginWaiterCancelDoesNotFailOthers(t *testing.T) {
	f := newFake(t)
	f.loginDelay = 150 * time.Millisecond
	c, _ := testClient(t, f)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var errShort, errLong error
	wg.Add(2)
	go func() { defer wg.Done(); _, errShort = c.Session(short) }()
	go func() {
		defer wg.Done()
		time.Sleep(5 * time.Millisecond)
		_, errLong = c.Session(context.Background())
	}()
	wg.Wait()
	mustKind(t, errShort, KindTimeout)
	if errLong != nil {
		t.Fatalf("the patient caller failed because another gave up: %v", errLong)
	}
	if f.logins.Load() != 1 {
		t.Fatalf("logins = %d", f.logins.Load())
	}
}

func TestSessionNeverPrintsToken(t *testing.T) {
	f := newFake(t)
	c, _ := testClient(t, f)
	s, err := c.Login(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Token()
	if !strings.HasPrefix(tok, "tok-") || s.Role != "Customer billing" || !s.Allows("eq", "reboot") || s.Allows("eq", "off") {
		t.Fatalf("session: %v %v", s, s.Permissions)
	}
	js, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), string(js),
		fmt.Sprintf("%v %+v %#v", *s, *s, *s), fmt.Sprint([]*Session{s})} {
		if strings.Contains(out, tok) {
			t.Fatalf("token printed: %s", out)
		}
	}
	// Callers get copies: mutating them must not touch the cached session.
	s.Servers[0] = -1
	s.Raw["role"] = "hacked"
	again, _ := c.Session(context.Background())
	if again.Servers[0] == -1 || again.Raw["role"] == "hacked" {
		t.Fatal("Session returned shared state")
	}
}

// rewriteTransport sends every request to the fake, whatever host the URL names, and
// remembers the hosts asked for: the way to test a vendor base URL without a network.
type rewriteTransport struct {
	to    *url.URL
	mu    sync.Mutex
	hosts []string
}

func (rt *rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
	rt.mu.Unlock()
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host = rt.to.Scheme, rt.to.Host
	r2.Host = rt.to.Host
	return http.DefaultTransport.RoundTrip(r2)
}

func (rt *rewriteTransport) last() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.hosts[len(rt.hosts)-1]
}

func TestBaseURLSwitchOnlyToVendorHosts(t *testing.T) {
	cases := []struct {
		invapi, wantBase string
	}{
		{"invapi.hostkey.ru", "https://invapi.hostkey.ru/"},
		{"https://invapi.hostkey.ru/", "https://invapi.hostkey.ru/"},
		{"HostKey.COM", "https://hostkey.com/"},
		{"invapi.hostkey.com", "https://invapi.hostkey.com/"},
		{"evil.example.com", "https://invapi.hostkey.com/"},
		{"invapi.hostkey.ru.evil.com", "https://invapi.hostkey.com/"},
		{"evilhostkey.com", "https://invapi.hostkey.com/"},
		{"http://invapi.hostkey.ru", "https://invapi.hostkey.com/"},
		{"invapi.hostkey.ru:8443", "https://invapi.hostkey.com/"},
		{"https://user@invapi.hostkey.ru/", "https://invapi.hostkey.com/"},
		{"", "https://invapi.hostkey.com/"},
	}
	for _, tc := range cases {
		t.Run(tc.invapi, func(t *testing.T) {
			f := newFake(t)
			f.handle("eq/list", okHandler(`{"result":"OK"}`))
			f.loginReply = func(tok string) string {
				return fmt.Sprintf(`{"result":{"token":%q,"invapi":%q}}`, tok, tc.invapi)
			}
			to, _ := url.Parse(f.srv.URL)
			rt := &rewriteTransport{to: to}
			c, _ := testClient(t, f, func(o *Options) {
				o.BaseURL = DefaultBaseURL
				o.HTTPClient = &http.Client{Transport: rt}
			})
			if _, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
				t.Fatal(err)
			}
			if c.BaseURL() != tc.wantBase || rt.last() != tc.wantBase+"eq.php" {
				t.Fatalf("base = %s, request went to %s; want %s", c.BaseURL(), rt.last(), tc.wantBase)
			}
		})
	}

	// A non-vendor base (simulator, proxy) is never moved, not even to a vendor host.
	f := newFake(t)
	f.loginReply = func(tok string) string {
		return fmt.Sprintf(`{"result":{"token":%q,"invapi":"invapi.hostkey.ru"}}`, tok)
	}
	c, _ := testClient(t, f)
	if _, err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != f.URL() {
		t.Fatalf("simulator base moved to %s", c.BaseURL())
	}
}

func TestLogout(t *testing.T) {
	f := newFake(t)
	f.handle("auth/logout", okHandler(`{"result":"OK"}`))
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	c, _ := testClient(t, f)
	ctx := context.Background()
	if err := c.Logout(ctx); err != nil || f.count("auth/logout") != 0 {
		t.Fatalf("logout without a session must be a no-op: %v", err)
	}
	s, _ := c.Session(ctx)
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	r := f.requests("auth/logout")
	if len(r) != 1 || r[0].Form.Get("token") != s.Token() || r[0].Method != "POST" {
		t.Fatalf("logout requests: %+v", r)
	}
	c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
	if f.logins.Load() != 2 {
		t.Fatal("the token must be forgotten after Logout")
	}
	// An already-dead token is fine on shutdown.
	f.revokeAll()
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout of a dead token: %v", err)
	}
}
