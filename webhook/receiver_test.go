package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestCallbackURLShape(t *testing.T) {
	e := newEnv(t, envOpts{})
	u := e.job(42)
	if !strings.HasPrefix(u, e.url+"/cb/install/") {
		t.Fatalf("callback URL %q", u)
	}
	secret := u[strings.LastIndexByte(u, '/')+1:]
	if len(secret) != 43 || !validSecretShape(secret) {
		t.Fatalf("secret %q: want 43 base64url characters (256 bits)", secret)
	}
	if u2 := e.job(42); u2 == u {
		t.Fatal("two jobs share a secret")
	}
	j := jobIDOf(t, e.st, u)
	if j.ServerID != 42 || j.Action != "eq_order_instance" || j.Session != "sess-1" || j.State != store.JobPending {
		t.Fatalf("job %+v", j)
	}
}

func TestWrongSecretIs404WithoutHint(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		good := e.job(1)
		_, unknownRoute := get(t, e.url+"/nothing/here")
		for _, path := range []string{
			"/cb/install/" + strings.Repeat("A", 43),  // well-formed, unknown
			"/cb/install/short",                       // malformed
			"/cb/install/" + strings.Repeat("x", 200), // too long
			"/cb/install/" + url.PathEscape("../../etc/passwd"),
			"/cb/install/",
		} {
			st, body := get(t, e.url+path)
			if st != http.StatusNotFound || body != unknownRoute {
				t.Errorf("%s: %d %q, want the unknown-route 404 %q", path, st, body, unknownRoute)
			}
		}
		// A method the route does not take looks just like an unknown route.
		if st, body := do(t, http.MethodPut, good, "", nil); st != http.StatusNotFound || body != unknownRoute {
			t.Errorf("PUT: %d %q", st, body)
		}
		if n := len(events(t, e.st)); n != 0 {
			t.Fatalf("%d events from bad requests", n)
		}
		if m := e.r.Metrics(); m.Rejected[ReasonBadSecret] < 2 || m.Rejected[ReasonBadSecret]+m.Rejected[ReasonNotFound] != 7 {
			t.Fatalf("metrics %+v", m.Rejected)
		}
		if st, _ := get(t, good); st != http.StatusOK {
			t.Fatalf("good secret: %d", st)
		}
	})
}

func TestReplayedCallbackIsOneEvent(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		u := e.job(7)
		for i, m := range []string{http.MethodGet, http.MethodGet, http.MethodPost} {
			if st, _ := do(t, m, u, "", nil); st != http.StatusOK {
				t.Fatalf("call %d: %d", i, st)
			}
		}
		evs := events(t, e.st)
		if len(evs) != 1 {
			t.Fatalf("%d events, want 1", len(evs))
		}
		j := jobIDOf(t, e.st, u)
		if j.State != store.JobDone || j.EventID != evs[0].ID || evs[0].JobID != j.ID || evs[0].ServerID != 7 {
			t.Fatalf("job %+v event %+v", j, evs[0])
		}
		if m := e.r.Metrics(); m.Duplicates != 2 || m.Accepted[store.KindInstallDone] != 1 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

func TestOversizeBodyIs413(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		u := e.job(3)
		big := bytes.Repeat([]byte("a"), DefaultMaxBody+1)
		if st, _ := do(t, http.MethodPost, u, "application/json", bytes.NewReader(big)); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("with Content-Length: %d", st)
		}
		// Chunked: no Content-Length to refuse up front, the reader limit catches it.
		pr, pw := io.Pipe()
		go func() {
			for range 80 {
				if _, err := pw.Write(bytes.Repeat([]byte("b"), 1024)); err != nil {
					return
				}
			}
			pw.Close()
		}()
		if st, _ := do(t, http.MethodPost, u, "text/plain", pr); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked: %d", st)
		}
		// Multipart too.
		var mp bytes.Buffer
		w := multipart.NewWriter(&mp)
		fw, _ := w.CreateFormFile("f", "big.bin")
		_, _ = fw.Write(big)
		_ = w.Close()
		if st, _ := do(t, http.MethodPost, u, w.FormDataContentType(), &mp); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("multipart: %d", st)
		}
		if n := len(events(t, e.st)); n != 0 {
			t.Fatalf("%d events stored from oversize bodies", n)
		}
		if j := jobIDOf(t, e.st, u); j.State != store.JobPending {
			t.Fatal("job completed by an oversize request")
		}
		if m := e.r.Metrics(); m.Rejected[ReasonTooLarge] != 3 {
			t.Fatalf("too_large = %d", m.Rejected[ReasonTooLarge])
		}
		// Exactly at the limit is fine.
		if st, _ := do(t, http.MethodPost, u, "text/plain", bytes.NewReader(big[:DefaultMaxBody])); st != http.StatusOK {
			t.Fatalf("body at the limit: %d", st)
		}
	})
}

// TestSlowLorisIsCutOff: a client that dribbles its headers is disconnected after the
// header timeout, while other clients are served meanwhile.
// TestBadBodyAnsweredByWhetherTheSecretIsKnown: the shared store's path reads the body
// before it knows the job; an unknown secret is still a bare 404 whatever the body, a
// known one with a body that does not parse a 400, and neither leaves a trace.
func TestBadBodyAnsweredByWhetherTheSecretIsKnown(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		u := e.job(4)
		_, unknownRoute := get(t, e.url+"/nothing/here")
		unknown := e.url + "/cb/install/" + strings.Repeat("B", 43)
		bad := func() io.Reader { return strings.NewReader("x") }
		const noBoundary = "multipart/form-data" // ParseCallback refuses it
		if st, body := do(t, http.MethodPost, unknown, noBoundary, bad()); st != http.StatusNotFound || body != unknownRoute {
			t.Fatalf("unknown secret, bad body: %d %q, want the unknown-route 404", st, body)
		}
		big := bytes.Repeat([]byte("a"), DefaultMaxBody+1)
		if st, body := do(t, http.MethodPost, unknown, "text/plain", bytes.NewReader(big)); st != http.StatusNotFound || body != unknownRoute {
			t.Fatalf("unknown secret, oversize body: %d %q, want the unknown-route 404", st, body)
		}
		if st, _ := do(t, http.MethodPost, u, noBoundary, bad()); st != http.StatusBadRequest {
			t.Fatalf("known secret, bad body: %d, want 400", st)
		}
		if len(events(t, e.st)) != 0 || jobIDOf(t, e.st, u).State != store.JobPending {
			t.Fatal("a refused callback left a trace")
		}
		if m := e.r.Metrics(); m.Rejected[ReasonBadSecret] != 2 || m.Rejected[ReasonBadRequest] != 1 {
			t.Fatalf("metrics %+v", m.Rejected)
		}
		if st, _ := do(t, http.MethodPost, u, "application/json", strings.NewReader(`{"ok":1}`)); st != http.StatusOK {
			t.Fatalf("then a good body: %d", st)
		}
	})
}

func TestSlowLorisIsCutOff(t *testing.T) {
	e := newEnv(t, envOpts{timeouts: Timeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond,
		Write: time.Second, Idle: time.Second}})
	u := e.job(5)
	host := strings.TrimPrefix(e.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		// Keep dribbling one header line every 100ms, as a slow-loris would.
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", i); err != nil {
				closed <- time.Since(start)
				return
			}
			time.Sleep(100 * time.Millisecond)
			if time.Since(start) > 10*time.Second {
				closed <- -1
				return
			}
		}
	}()
	// Meanwhile the receiver still answers others.
	if st, _ := get(t, u); st != http.StatusOK {
		t.Fatalf("normal request during slow-loris: %d", st)
	}
	// The server must close the connection; reading shows EOF or a reset.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, _ := io.ReadAll(bufio.NewReader(conn))
	elapsed := time.Since(start)
	if elapsed > 3*time.Second {
		t.Fatalf("connection held for %v", elapsed)
	}
	if bytes.Contains(buf, []byte("200 OK")) {
		t.Fatalf("slow request was served: %q", buf)
	}
	if d := <-closed; d < 0 {
		t.Fatal("writes never failed")
	}
}

// TestIdleKeepAliveIsClosed: a connection parked after a request is closed after Idle.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	e := newEnv(t, envOpts{timeouts: Timeouts{Idle: 300 * time.Millisecond}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("unexpected data")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection kept %v", d)
	}
}

func TestSourceIPCheck(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		t.Run("direct caller not the server", func(t *testing.T) {
			e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{CheckSourceIP: true}})
			u := e.job(9, "10.1.2.3")
			// X-Forwarded-For from an untrusted peer is ignored.
			if st, _ := do(t, http.MethodGet, u, "", nil, "X-Forwarded-For", "10.1.2.3"); st != http.StatusForbidden {
				t.Fatalf("got %d, want 403", st)
			}
			if len(events(t, e.st)) != 0 || jobIDOf(t, e.st, u).State != store.JobPending {
				t.Fatal("rejected callback left a trace")
			}
			if e.r.Metrics().Rejected[ReasonSourceIP] != 1 {
				t.Fatal("source_ip not counted")
			}
		})
		t.Run("behind trusted proxy", func(t *testing.T) {
			e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{CheckSourceIP: true, TrustedProxies: loop}})
			u := e.job(9, "10.1.2.3", "2001:db8::5")
			// The client put a fake hop in front; the proxy appended the real address.
			if st, _ := do(t, http.MethodGet, u, "", nil, "X-Forwarded-For", "10.1.2.3, 203.0.113.9"); st != http.StatusForbidden {
				t.Fatalf("spoofed chain: %d, want 403", st)
			}
			if st, _ := do(t, http.MethodGet, u, "", nil, "X-Forwarded-For", "10.1.2.3"); st != http.StatusOK {
				t.Fatalf("real server behind proxy: %d", st)
			}
			evs := events(t, e.st)
			if len(evs) != 1 || evs[0].Data["source_ip"] != "10.1.2.3" || evs[0].Data["source_verified"] != true {
				t.Fatalf("event %+v", evs)
			}
		})
		t.Run("caller is the server", func(t *testing.T) {
			e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{CheckSourceIP: true}})
			if st, _ := get(t, e.job(9, "127.0.0.1")); st != http.StatusOK {
				t.Fatalf("%d", st)
			}
		})
		t.Run("IPs looked up lazily", func(t *testing.T) {
			calls := 0
			lookup := func(_ context.Context, id int64) ([]string, error) {
				calls++
				if calls == 1 {
					return nil, fmt.Errorf("invapi down") // at job creation
				}
				return []string{"127.0.0.1"}, nil
			}
			e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{CheckSourceIP: true, ServerIPs: lookup}})
			if st, _ := get(t, e.job(9)); st != http.StatusOK || calls != 2 {
				t.Fatalf("%d after %d lookups", st, calls)
			}
		})
		t.Run("unknown IPs accepted but marked", func(t *testing.T) {
			e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{CheckSourceIP: true}})
			if st, _ := get(t, e.job(0)); st != http.StatusOK {
				t.Fatalf("%d", st)
			}
			if evs := events(t, e.st); evs[0].Data["source_verified"] != false {
				t.Fatalf("%+v", evs[0].Data)
			}
		})
	})
}

// TestConcurrentCallbacksNoLoss: 200 callbacks at once (each twice), all durable, none lost.
func TestConcurrentCallbacksNoLoss(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		const n = 200
		urls := make([]string, n)
		for i := range urls {
			urls[i] = e.job(int64(1000 + i))
		}
		var wg sync.WaitGroup
		statuses := make([]int, 2*n)
		for i := range 2 * n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, urls[i%n], strings.NewReader(fmt.Sprintf(`{"i":%d}`, i)))
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					return
				}
				statuses[i] = res.StatusCode
				res.Body.Close()
			}()
		}
		wg.Wait()
		for i, st := range statuses {
			if st != http.StatusOK {
				t.Fatalf("request %d: %d", i, st)
			}
		}
		evs := events(t, e.st)
		if len(evs) != n {
			t.Fatalf("%d events, want %d", len(evs), n)
		}
		servers := map[int64]bool{}
		for _, ev := range evs {
			servers[ev.ServerID] = true
		}
		if len(servers) != n {
			t.Fatalf("%d distinct servers", len(servers))
		}
		for _, u := range urls {
			if j := jobIDOf(t, e.st, u); j.State != store.JobDone {
				t.Fatalf("job %s not done", j.ID)
			}
		}
		if m := e.r.Metrics(); m.Duplicates != n || m.Accepted[store.KindInstallDone] != n {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// TestRestartBetweenAcceptAndRead: the event acknowledged with 200 is there after the
// receiver and its store are closed and reopened (a process restart), and a replay of
// the same callback after the restart is still one event.
func TestRestartBetweenAcceptAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), state.FileName)
	b := sharedStore(t, path)
	e := newEnv(t, envOpts{cfg: Config{Store: b}})
	u := e.job(77)
	if st, _ := do(t, http.MethodPost, u, "application/x-www-form-urlencoded", strings.NewReader("hostname=web1&root_pass=hunter22")); st != http.StatusOK {
		t.Fatalf("%d", st)
	}
	loginURL, _ := e.r.LoginAlertURL(context.Background())
	e.stop() // shuts the listener down, stops the receiver, closes the store

	b2 := sharedStore(t, path)
	e2 := newEnv(t, envOpts{cfg: Config{Store: b2, PublicURL: e.url}})
	evs := events(t, b2)
	if len(evs) != 1 || evs[0].ServerID != 77 {
		t.Fatalf("after restart: %+v", evs)
	}
	body := evs[0].Data["body"].(map[string]any)
	if body["hostname"] != "web1" || body["root_pass"] != "[REDACTED]" {
		t.Fatalf("stored body %+v", body)
	}
	// The same callback URL still resolves (to the same event), against the new listener.
	replay := e2.url + u[len(e.url):]
	if st, _ := get(t, replay); st != http.StatusOK {
		t.Fatalf("replay after restart: %d", st)
	}
	if n := len(events(t, b2)); n != 1 {
		t.Fatalf("%d events after replay", n)
	}
	// The login-alert token survived too.
	if l2, _ := e2.r.LoginAlertURL(context.Background()); l2 != loginURL {
		t.Fatal("login alert URL changed across restart")
	}
}

// slowStore delays Append so a request is in flight when shutdown starts. It embeds the
// interface, so the receiver uses Append then MarkDone.
type slowStore struct {
	store.Store
	entered chan struct{}
	delay   time.Duration
}

func (s *slowStore) Append(ctx context.Context, ev store.Event, key string) (store.Event, bool, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	time.Sleep(s.delay)
	return s.Store.Append(ctx, ev, key)
}

func TestGracefulShutdownFinishesInflightWrites(t *testing.T) {
	ss := &slowStore{Store: sharedStore(t, state.Memory), entered: make(chan struct{}, 1), delay: 500 * time.Millisecond}
	e := newEnv(t, envOpts{cfg: Config{Store: ss}})
	u := e.job(11)
	status := make(chan int, 1)
	go func() {
		res, err := client.Get(u)
		if err != nil {
			status <- -1
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	<-ss.entered
	e.cancel() // shutdown starts while the write is in progress
	e.cancel = nil
	if err := <-e.done; err != nil {
		t.Fatal(err)
	}
	if st := <-status; st != http.StatusOK {
		t.Fatalf("in-flight request got %d", st)
	}
	evs := events(t, ss)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	if j := jobIDOf(t, ss, u); j.State != store.JobDone {
		t.Fatal("job not marked done")
	}
	// After shutdown nothing listens.
	if _, err := client.Get(u); err == nil {
		t.Fatal("listener still open")
	}
	ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
	defer c()
	if err := e.r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBodyFormats(t *testing.T) {
	e := newEnv(t, envOpts{})
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("hostname", "mp1")
	_ = mw.WriteField("password", "s3cret")
	_ = mw.Close()
	cases := []struct {
		name, method, ct, body, query string
		check                         func(d map[string]any) bool
	}{
		{"empty GET with query", "GET", "", "", "?status=done&ip=1.2.3.4", func(d map[string]any) bool {
			q := d["query"].(map[string]any)
			return q["status"] == "done" && q["ip"] == "1.2.3.4" && d["body"] == nil
		}},
		{"form", "POST", "application/x-www-form-urlencoded", "a=1&a=2&token=zzz", "", func(d map[string]any) bool {
			b := d["body"].(map[string]any)
			l, _ := b["a"].([]any)
			return len(l) == 2 && b["token"] == "[REDACTED]"
		}},
		{"json", "POST", "application/json; charset=utf-8", `{"hostname":"h","nested":{"api_key":"k","n":5}}`, "", func(d map[string]any) bool {
			b := d["body"].(map[string]any)
			n := b["nested"].(map[string]any)
			return b["hostname"] == "h" && n["api_key"] == "[REDACTED]" && fmt.Sprint(n["n"]) == "5"
		}},
		{"json array", "POST", "application/json", `[1,2]`, "", func(d map[string]any) bool {
			return len(d["body"].(map[string]any)["json"].([]any)) == 2
		}},
		{"bad json", "POST", "application/json", `{"oops"`, "", func(d map[string]any) bool {
			b := d["body"].(map[string]any)
			return b["text"] == `{"oops"` && b["parse_error"] != nil
		}},
		{"text", "POST", "text/plain", "install finished\n", "", func(d map[string]any) bool {
			return d["body"].(map[string]any)["text"] == "install finished"
		}},
		{"multipart", "POST", mw.FormDataContentType(), mp.String(), "", func(d map[string]any) bool {
			b := d["body"].(map[string]any)
			return b["hostname"] == "mp1" && b["password"] == "[REDACTED]"
		}},
		{"untyped json", "POST", "", `{"x":true}`, "", func(d map[string]any) bool {
			return d["body"].(map[string]any)["x"] == true
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := e.job(1)
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			if st, _ := do(t, c.method, u+c.query, c.ct, body); st != http.StatusOK {
				t.Fatalf("%d", st)
			}
			j := jobIDOf(t, e.st, u)
			var ev *store.Event
			for _, x := range events(t, e.st) {
				if x.JobID == j.ID {
					ev = &x
				}
			}
			if ev == nil || !c.check(ev.Data) {
				t.Fatalf("data %#v", ev)
			}
		})
	}
}

func TestRateLimitPerSource(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{RateLimit: 1, RateBurst: 3}})
	u := e.job(1)
	codes := map[int]int{}
	for range 6 {
		st, _ := get(t, u)
		codes[st]++
	}
	if codes[http.StatusOK] != 3 || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("codes %v", codes)
	}
	// Health and metrics stay reachable for monitoring.
	if st, _ := get(t, e.url+"/healthz"); st != http.StatusOK {
		t.Fatalf("healthz rate limited: %d", st)
	}
	if e.r.Metrics().Rejected[ReasonRateLimited] != 3 {
		t.Fatal("rate_limited not counted")
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	get(t, e.job(1))
	get(t, e.url+"/cb/install/"+strings.Repeat("B", 43))
	st, body := get(t, e.url+"/healthz")
	if st != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", st, body)
	}
	st, body = get(t, e.url+"/metrics")
	if st != 200 {
		t.Fatal(st)
	}
	for _, want := range []string{
		`hostkey_webhook_accepted_total{kind="install_done"} 1`,
		`hostkey_webhook_rejected_total{reason="bad_secret"} 1`,
		`hostkey_webhook_rejected_total{reason="too_large"} 0`,
		`hostkey_webhook_duplicates_total 0`,
		`# TYPE hostkey_webhook_store_seconds histogram`,
		`hostkey_webhook_store_seconds_bucket{le="+Inf"} 1`,
		`hostkey_webhook_store_seconds_count 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// Every sample line is "name{labels} value" or "name value".
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 {
			t.Errorf("bad sample line %q", line)
		}
	}
}

func TestPublicURLPathPrefix(t *testing.T) {
	e := newEnv(t, envOpts{})
	// A receiver whose public URL has a path answers both with and without it.
	r, err := New(context.Background(), Config{Store: sharedStore(t, state.Memory), PublicURL: e.url + "/hostkey/", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	u, _ := r.NewInstallJob(context.Background(), 1, "x", "", nil)
	if !strings.HasPrefix(u, e.url+"/hostkey/cb/install/") {
		t.Fatalf("%s", u)
	}
	for _, bad := range []string{"ftp://x", "/relative", "http://h/?q=1", "http:///nohost"} {
		if _, err := New(context.Background(), Config{Store: sharedStore(t, state.Memory), PublicURL: bad}); err == nil {
			t.Errorf("public URL %q accepted", bad)
		}
	}
}

func TestNoSecretInLogs(t *testing.T) {
	stores(t, func(t *testing.T, o envOpts) {
		core, logs := observer.New(zapcore.DebugLevel)
		e := newEnv(t, envOpts{sqlite: o.sqlite, cfg: Config{Logger: zap.New(core)}})
		u := e.job(5)
		secret := u[strings.LastIndexByte(u, '/')+1:]
		get(t, u)
		get(t, u)
		get(t, e.url+"/cb/install/"+strings.Repeat("C", 43))
		loginURL, _ := e.r.LoginAlertURL(context.Background())
		token := loginURL[strings.LastIndexByte(loginURL, '/')+1:]
		get(t, loginURL)
		if logs.Len() == 0 {
			t.Fatal("nothing logged")
		}
		for _, entry := range logs.All() {
			line := entry.Message + fmt.Sprint(entry.ContextMap())
			if strings.Contains(line, secret) || strings.Contains(line, token) || strings.Contains(line, strings.Repeat("C", 43)) {
				t.Fatalf("secret in log: %s", line)
			}
		}
	})
}

func TestLoginAlerts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, envOpts{cfg: Config{Now: clock}})
	ctx := context.Background()
	lu, err := e.r.LoginAlertURL(ctx)
	if err != nil || !strings.HasPrefix(lu, e.url+"/alerts/login/") {
		t.Fatalf("%s %v", lu, err)
	}
	payload := `{"key_id":484,"ip":"198.51.100.7","date":"2026-03-01 12:00:00","api_key":"d981-secret"}`
	for range 2 { // a redelivery within the minute is one event
		if st, _ := do(t, http.MethodPost, lu, "application/json", strings.NewReader(payload)); st != 200 {
			t.Fatalf("%d", st)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	do(t, http.MethodPost, lu, "application/json", strings.NewReader(payload)) // a later login: new event
	// A delivery id wins over content.
	do(t, http.MethodGet, lu+"?ip=1.1.1.1", "", nil, "Webhook-Id", "d-1")
	do(t, http.MethodGet, lu+"?ip=2.2.2.2", "", nil, "Webhook-Id", "d-1")
	evs := events(t, e.st)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, ev := range evs {
		if ev.Kind != store.KindLoginAlert {
			t.Fatalf("kind %s", ev.Kind)
		}
	}
	if b := evs[0].Data["body"].(map[string]any); b["api_key"] != "[REDACTED]" || b["ip"] != "198.51.100.7" {
		t.Fatalf("body %+v", b)
	}
	if s := Summarize(evs[0]); !strings.Contains(s, "198.51.100.7") || strings.Contains(s, "d981-secret") {
		t.Fatalf("summary %q", s)
	}
	// Wrong token: 404 like anything unknown.
	if st, _ := get(t, e.url+"/alerts/login/"+strings.Repeat("D", 43)); st != 404 {
		t.Fatalf("wrong token %d", st)
	}
	// Rotation: the old URL dies, the new one works.
	if err := e.r.RotateLoginToken(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(t, lu); st != 404 {
		t.Fatalf("old token after rotation: %d", st)
	}
	lu2, _ := e.r.LoginAlertURL(ctx)
	if st, _ := get(t, lu2); st != 200 || lu2 == lu {
		t.Fatalf("new token %d", st)
	}
}

func TestClientIP(t *testing.T) {
	proxies, err := ParseCIDRs("127.0.0.1, 10.0.0.0/8 ::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "1.1.1.1", "203.0.113.5"}, // untrusted peer: header ignored
		{"127.0.0.1:1", "198.51.100.1", "198.51.100.1"},
		{"127.0.0.1:1", "198.51.100.1, 10.2.3.4", "198.51.100.1"}, // chain of trusted proxies
		{"127.0.0.1:1", "6.6.6.6, 198.51.100.1", "198.51.100.1"},  // spoofed first hop ignored
		{"127.0.0.1:1", "garbage, 198.51.100.1", "198.51.100.1"},
		{"127.0.0.1:1", "198.51.100.1, garbage", "127.0.0.1"}, // broken last hop: stop at the proxy
		{"[::1]:1", "[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:127.0.0.1]:1", "192.0.2.1", "192.0.2.1"},
		{"127.0.0.1:1", "", "127.0.0.1"},
	}
	for _, c := range cases {
		r := &http.Request{RemoteAddr: c.remote, Header: http.Header{}}
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, proxies); got.String() != c.want {
			t.Errorf("%s / %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := ParseCIDRs("10.0.0.0/33"); err == nil {
		t.Error("bad CIDR accepted")
	}
	if _, err := ParseCIDRs("nonsense"); err == nil {
		t.Error("bad address accepted")
	}
}
