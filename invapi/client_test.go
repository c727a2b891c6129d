package invapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failN answers status (with body) to the first n requests, then OK.
func failN(n int, status int, body string, hdr map[string]string) func(http.ResponseWriter, *http.Request, url.Values) {
	var seen atomic.Int32
	return func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		if int(seen.Add(1)) <= n {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, `{"result":"OK"}`)
	}
}

func TestRetry5xxReadsOnly(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", failN(2, 502, "<html>Bad Gateway</html>", nil))
	f.handle("eq/reboot", failN(2, 502, "<html>Bad Gateway</html>", nil))
	c, rec := testClient(t, f)
	ctx := context.Background()

	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
		t.Fatalf("read should succeed on the third attempt: %v", err)
	}
	if n := f.count("eq/list"); n != 3 {
		t.Fatalf("read attempts = %d, want 3", n)
	}
	s := rec.all()
	if len(s) != 2 {
		t.Fatalf("sleeps = %v", s)
	}
	// 300ms doubling with equal jitter: [150,300] then [300,600].
	if s[0] < 150*time.Millisecond || s[0] > 300*time.Millisecond || s[1] < 300*time.Millisecond || s[1] > 600*time.Millisecond {
		t.Fatalf("backoff out of range: %v", s)
	}

	_, err := c.Do(ctx, &Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 1}})
	mustKind(t, err, KindServer)
	if n := f.count("eq/reboot"); n != 1 {
		t.Fatalf("a write was sent %d times; writes are never retried", n)
	}
}

func TestPINRequestsNeverRetried(t *testing.T) {
	f := newFake(t)
	f.handle("eq/check_pin", failN(2, 502, "", nil))
	c, _ := testClient(t, f)
	_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "check_pin", ReadOnly: true,
		Params: map[string]any{"pin": "4821"}})
	mustKind(t, err, KindServer)
	if n := f.count("eq/check_pin"); n != 1 {
		t.Fatalf("a PIN-carrying read was sent %d times; each try may count against the PIN lock", n)
	}
}

func TestRetryExhausted(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", failN(100, 503, "", nil))
	c, rec := testClient(t, f)
	_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
	e := mustKind(t, err, KindServer)
	if e.HTTPStatus != 503 || f.count("eq/list") != 3 || len(rec.all()) != 2 {
		t.Fatalf("status=%d attempts=%d sleeps=%v", e.HTTPStatus, f.count("eq/list"), rec.all())
	}
	if !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatal(err)
	}
}

func TestRetryAfterHonouredAndCapped(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", failN(1, 429, `{"code":-1,"message":"slow down"}`, map[string]string{"Retry-After": "2"}))
	f.handle("eq/status", failN(1, 429, "", map[string]string{"Retry-After": "120"}))
	f.handle("eq/on", failN(1, 429, "", map[string]string{"Retry-After": "2"}))
	c, rec := testClient(t, f)
	ctx := context.Background()

	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if s := rec.all(); len(s) != 1 || s[0] != 2*time.Second {
		t.Fatalf("Retry-After 2 → sleeps %v", s)
	}
	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "status", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if s := rec.all(); len(s) != 2 || s[1] != 30*time.Second {
		t.Fatalf("Retry-After 120 must be capped at 30s, sleeps %v", s)
	}
	_, err := c.Do(ctx, &Request{Module: "eq", Action: "on"})
	if e := mustKind(t, err, KindRateLimited); e.RetryAfter != 2*time.Second {
		t.Fatalf("RetryAfter = %v", e.RetryAfter)
	}
	if f.count("eq/on") != 1 {
		t.Fatal("a rate-limited write must not be retried")
	}
}

// dropConn closes the connection without an answer: a network failure.
func dropConn(w http.ResponseWriter, _ *http.Request, _ url.Values) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestTransportErrorsRetriedForReadsOnly(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", dropConn)
	f.handle("eq/off", dropConn)
	c, _ := testClient(t, f)
	ctx := context.Background()

	_, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
	mustKind(t, err, KindTransport)
	if n := f.count("eq/list"); n != 3 {
		t.Fatalf("read attempts = %d, want 3", n)
	}
	_, err = c.Do(ctx, &Request{Module: "eq", Action: "off", Params: map[string]any{"id": 1}})
	mustKind(t, err, KindTransport)
	if n := f.count("eq/off"); n != 1 {
		t.Fatalf("write attempts = %d, want 1", n)
	}
}

func TestHTTPClientTimeout(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	defer close(release)
	slow := func(w http.ResponseWriter, r *http.Request, _ url.Values) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	f.handle("eq/list", slow)
	f.handle("eq/reboot", slow)
	c, _ := testClient(t, f, func(o *Options) { o.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
	ctx := context.Background()
	if _, err := c.Session(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.Do(ctx, &Request{Module: "eq", Action: "reboot"})
	mustKind(t, err, KindTimeout)
	if f.count("eq/reboot") != 1 {
		t.Fatal("a timed-out write must not be retried")
	}
	_, err = c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
	mustKind(t, err, KindTimeout)
	if f.count("eq/list") != 3 {
		t.Fatalf("timed-out read attempts = %d, want 3", f.count("eq/list"))
	}
}

func TestContextCanceled(t *testing.T) {
	f := newFake(t)
	started := make(chan struct{}, 1)
	f.handle("eq/list", func(w http.ResponseWriter, r *http.Request, _ url.Values) {
		started <- struct{}{}
		<-r.Context().Done()
	})
	c, _ := testClient(t, f)
	if _, err := c.Session(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
	mustKind(t, err, KindCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Fatal("ctx error must stay in the chain")
	}
	if f.count("eq/list") != 1 {
		t.Fatal("a canceled read must not be retried")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	f.handle("eq/status", func(w http.ResponseWriter, r *http.Request, _ url.Values) { <-r.Context().Done() })
	_, err = c.Do(dctx, &Request{Module: "eq", Action: "status", ReadOnly: true})
	mustKind(t, err, KindTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	f := newFakeWith(t, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		}
	})
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	c, _ := testClient(t, f) // default HTTP client
	for range 20 {
		if _, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("21 sequential requests opened %d connections, want 1", n)
	}
}

func TestNoRedirectFollowing(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect was followed to %s", r.URL)
	}))
	defer target.Close()
	f := newFake(t)
	f.handle("eq/list", func(w http.ResponseWriter, r *http.Request, _ url.Values) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusFound)
	})
	c, _ := testClient(t, f)
	_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
	e := mustKind(t, err, KindProtocol)
	if e.HTTPStatus != 302 || !strings.Contains(e.Message, "redirect") {
		t.Fatal(e)
	}
}

func TestCallUsesResolver(t *testing.T) {
	f := newFake(t)
	f.handleNoAuth("traffic_plans/list", okHandler(`{"result":"OK","plans":[]}`))
	f.handle("nat_callback/check", okHandler(`{"result":"Not ready"}`))
	f.handle("eq/reboot", okHandler(`{"result":"OK","key":"k-1"}`))
	specs := map[string]Spec{
		"traffic_plans/list": {Method: "POST", ReadOnly: true, NoAuth: true},
		"nat_callback/check": {Endpoint: "nat_callback.php", Method: "GET", ReadOnly: true},
	}
	c, _ := testClient(t, f, func(o *Options) {
		o.Resolver = ResolverFunc(func(m, a string) (Spec, bool) { s, ok := specs[m+"/"+a]; return s, ok })
	})
	ctx := context.Background()

	if _, err := c.Call(ctx, "traffic_plans", "list", nil); err != nil {
		t.Fatal(err)
	}
	if r := f.requests("traffic_plans/list")[0]; r.Form.Has("token") || f.logins.Load() != 0 {
		t.Fatalf("NoAuth call sent a token or logged in: %q", r.Body)
	}
	if _, err := c.Call(ctx, "nat_callback", "check", map[string]any{"key": "abc"}); err != nil {
		t.Fatal(err)
	}
	if r := f.requests("nat_callback/check")[0]; r.Method != "GET" || !strings.HasPrefix(r.RawQuery, "action=check&key=abc&token=") {
		t.Fatalf("resolved GET went out as %s %q", r.Method, r.RawQuery)
	}
	resp, err := c.Call(ctx, "eq", "reboot", map[string]any{"id": 1})
	if err != nil || resp.Key != "k-1" {
		t.Fatal(err, resp)
	}
	if r := f.requests("eq/reboot")[0]; r.Method != "POST" || r.Path != "/eq.php" || !r.Form.Has("token") {
		t.Fatalf("unresolved action: %s %s %q", r.Method, r.Path, r.Body)
	}
}

func TestNewValidation(t *testing.T) {
	for _, bad := range []string{"http://invapi.hostkey.com/", "ftp://x/", "https:///nohost", "https://u:p@invapi.hostkey.com/", "https://invapi.hostkey.com/?a=1"} {
		if _, err := New(Options{BaseURL: bad}); err == nil {
			t.Errorf("New accepted %q", bad)
		}
	}
	for in, want := range map[string]string{
		"":                             DefaultBaseURL,
		"https://invapi.hostkey.ru":    "https://invapi.hostkey.ru/",
		"http://127.0.0.1:8080/api":    "http://127.0.0.1:8080/api/",
		"http://localhost:9/":          "http://localhost:9/",
		"https://sandbox.example.org/": "https://sandbox.example.org/",
	} {
		c, err := New(Options{BaseURL: in})
		if err != nil || c.BaseURL() != want {
			t.Errorf("New(%q): %v %q, want %q", in, err, c.BaseURL(), want)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	f := newFake(t)
	c, _ := testClient(t, f)
	for _, r := range []*Request{
		nil,
		{Module: "", Action: "list"},
		{Module: "eq", Action: "list&token=x"},
		{Module: "eq", Action: "list", Endpoint: "../admin.php"},
		{Module: "eq", Action: "list", Endpoint: "https://evil.example/x.php"},
		{Module: "eq", Action: "list", Method: "DELETE"},
	} {
		if _, err := c.Do(context.Background(), r); err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
	if f.logins.Load() != 0 {
		t.Fatal("invalid requests must fail before any network traffic")
	}
}

// Forced logins interleaved with requests: meaningful under -race.
func TestConcurrentUseIsRaceFree(t *testing.T) {
	f := newFake(t)
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	c, _ := testClient(t, f)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				c.Login(context.Background())
			}
			c.Do(context.Background(), &Request{Module: "eq", Action: "list", ReadOnly: true})
			_ = c.BaseURL()
		}()
	}
	wg.Wait()
}
