package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
)

// --store takes a URL without a password; a password belongs in HOSTKEY_STORE,
// PGPASSWORD or ~/.pgpass (a flag shows in ps). The password is never repeated.
func TestStoreFlagRefusesAPassword(t *testing.T) {
	for _, u := range []string{
		"postgres://hk:s3cr3tpw@db.example:5432/hostkey",
		"postgresql://hk@db.example/hostkey?sslmode=require&password=s3cr3tpw",
	} {
		_, _, err := parseConfig("hostkey-mcp", []string{"--store", u}, env(), io.Discard)
		if err == nil {
			t.Fatalf("--store with a password accepted: %s", u)
		}
		if strings.Contains(err.Error(), "s3cr3tpw") || !strings.Contains(err.Error(), "HOSTKEY_STORE") {
			t.Fatalf("error repeats the password or does not say where it goes: %v", err)
		}
	}
	// The same URL in the environment is fine, and the flag without a password too.
	c, _, err := parseConfig("hostkey-mcp", nil, env("HOSTKEY_STORE", "postgres://hk:s3cr3tpw@db.example:5432/hostkey"), io.Discard)
	if err != nil || c.Store == "" {
		t.Fatalf("HOSTKEY_STORE with a password: %v", err)
	}
	if d := storeDisplay(c.Store); strings.Contains(d, "s3cr3tpw") || d != "postgres://hk@db.example:5432/hostkey" {
		t.Fatalf("display %q", d)
	}
	c, _, err = parseConfig("hostkey-mcp", []string{"--store", "postgres://hk@db.example/hostkey"}, env("HOSTKEY_STORE", "postgres://other@x/y"), io.Discard)
	if err != nil || c.Store != "postgres://hk@db.example/hostkey" {
		t.Fatalf("the flag should win over the environment: %q %v", c.Store, err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--store", "mysql://x"}, env(), io.Discard); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("an unknown store kind: %v", err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--store", "postgres://x/y", "--ephemeral"}, env(), io.Discard); err == nil {
		t.Fatal("--store with --ephemeral accepted")
	}
}

func TestJobLeaseFlag(t *testing.T) {
	c, _, err := parseConfig("hostkey-mcp", nil, env(), io.Discard)
	if err != nil || c.JobLease != 30*time.Second {
		t.Fatalf("default job lease %s, %v", c.JobLease, err)
	}
	c, _, err = parseConfig("hostkey-mcp", []string{"--job-lease", "3s"}, env(), io.Discard)
	if err != nil || c.JobLease != 3*time.Second {
		t.Fatalf("--job-lease 3s: %s, %v", c.JobLease, err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--job-lease", "500ms"}, env(), io.Discard); err == nil || !strings.Contains(err.Error(), "--job-lease") {
		t.Fatalf("a lease under 2s: %v", err)
	}
	// It reaches the workflow jobs.
	a := builtApp(t, []string{"--sandbox", "--job-lease", "3s", "--data-dir", t.TempDir(), "--toolsets", "workflows"}, env(), nil)
	if got := a.workflows.LeaseTTL(); got != 3*time.Second {
		t.Fatalf("workflow lease %s, want 3s", got)
	}
}

// An unreachable store stops the start (exit 1) with a clear message; nothing falls back
// to a local store, and the password given in HOSTKEY_STORE never shows.
func TestUnreachableStoreFailsStart(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox"}, nil, &out, &errb,
		env("HOSTKEY_STORE", "postgres://hk:s3cr3tpw@127.0.0.1:1/hostkey?sslmode=disable&connect_timeout=2"))
	if code != 1 {
		t.Fatalf("exit %d with an unreachable store; stderr: %s", code, errb.String())
	}
	msg := errb.String()
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("the error does not say the store is unreachable: %s", msg)
	}
	if strings.Contains(msg+out.String(), "s3cr3tpw") {
		t.Fatalf("the password leaked: %s", msg)
	}
}

// cutProxy stands between the process and PostgreSQL: down cuts every connection and
// refuses new ones (as a stopped or unreachable server would), up lets them through.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.set(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) set(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// Fail closed (issue 16): with PostgreSQL unreachable /healthz answers 503 "not ready"
// with the reason and no secret, an install callback is answered 503 (its sender
// retries) and a destructive call is refused in words; when the store returns,
// everything recovers and the retried callback is stored exactly once.
func TestStoreUnreachableFailsClosedAndRecovers(t *testing.T) {
	base, err := url.Parse(statetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, base.Host)
	base.Host = proxy.ln.Addr().String()
	a := builtApp(t, []string{"--sandbox", "--http", "127.0.0.1:0", "--public-url", "http://127.0.0.1:1",
		"--rate-destructive", "10:10", "--rate-server", "10:10"}, env("HOSTKEY_STORE", base.String()), nil)
	if a.state.Engine() != "postgres" {
		t.Fatalf("engine %s", a.state.Engine())
	}
	hs := httptest.NewServer(a.httpHandler())
	t.Cleanup(hs.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with the store up: %d %s", code, body)
	}
	cb, err := a.receiver.NewInstallJob(t.Context(), 40101, "reinstall", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cbPath := strings.TrimPrefix(cb, "http://127.0.0.1:1")
	post := func() int {
		t.Helper()
		resp, err := http.Post(hs.URL+cbPath, "application/x-www-form-urlencoded", strings.NewReader("status=done"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := modernClient(t, hs.URL)

	proxy.set(true)
	code, body := get("/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") || !strings.Contains(body, "postgres") {
		t.Fatalf("healthz with the store down: %d %q", code, body)
	}
	if strings.Contains(body, base.Host) || strings.Contains(body, "hostkey_test") {
		t.Fatalf("healthz names the store: %q", body)
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Fatalf("a callback with the store down: %d, want 503", code)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "eq_reboot", map[string]any{"id": 40101}
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(toolText(res), "could not be reached") {
		t.Fatalf("a destructive call with the store down: %s", toolText(res))
	}

	proxy.set(false)
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz after the store returned: %d %s", code, body)
	}
	for i := range 2 { // the sender's retry, and a replay
		if code := post(); code != http.StatusOK {
			t.Fatalf("callback %d after the store returned: %d", i, code)
		}
	}
	page, err := a.state.Since(t.Context(), 0, 100, state.Filter{Kinds: []string{"install_done"}})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("install events stored: %d (%v), want exactly 1", len(page.Events), err)
	}
}

func toolText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// replicaApp is one replica in this process: its own sandbox, webhook listener and HTTP
// endpoint, on the shared store named by storeURL.
func replicaApp(t *testing.T, storeURL string, args ...string) (*app, string, string) {
	t.Helper()
	hook := freeAddr(t)
	a := builtApp(t, append([]string{"--sandbox", "--http", "127.0.0.1:0", "--webhook-listen", hook,
		"--public-url", "http://" + hook, "--log-level", "error"}, args...), env("HOSTKEY_STORE", storeURL), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := a.serveWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.httpHandler())
	t.Cleanup(hs.Close)
	return a, hook, hs.URL
}

// Issue 16: replicas on one PostgreSQL store each serve their own webhook address (none
// stands by for another), and a callback accepted by one replica reaches a session held
// by another (its follow loop reads the log by cursor, woken by LISTEN/NOTIFY).
func TestReplicasNotifySessionsOfEventsAcceptedElsewhere(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	a, hookA, _ := replicaApp(t, storeURL)
	_, hookB, urlB := replicaApp(t, storeURL)
	for _, h := range []string{hookA, hookB} {
		resp, err := http.Get("http://" + h + "/healthz")
		if err != nil {
			t.Fatalf("webhook listener %s: %v", h, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook listener %s: %s", h, resp.Status)
		}
	}
	// A 2025-era session: notifications outside a request arrive on its GET stream.
	//lint:ignore SA1019 the standalone GET stream is how 2025-era sessions receive notifications
	tr, err := transport.NewStreamableHTTP(urlB+"/mcp", transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	notes := make(chan mcp.JSONRPCNotification, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/message" {
			notes <- n
		}
	})
	initialize(t, c)

	cb, err := a.receiver.NewInstallJob(t.Context(), 40101, "eq_reinstall", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(cb, "application/json", strings.NewReader(`{"status":"done"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the callback on replica A: %s", resp.Status)
	}
	select {
	case n := <-notes:
		ev, _ := n.Params.AdditionalFields["data"].(map[string]any)
		if e, _ := ev["event"].(map[string]any); e == nil || e["kind"] != "install_done" {
			t.Fatalf("notification on B: %+v", n.Params.AdditionalFields)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a session on replica B was not notified of a callback accepted by replica A")
	}
}

// The store's password, given in HOSTKEY_STORE, shows nowhere: doctor names the engine,
// host, database and user, and a run's log names the same.
func TestStorePasswordNeverShown(t *testing.T) {
	u, err := url.Parse(statetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	const pw = "s3cr3t-pw-9f"
	u.User = url.UserPassword(u.User.Username(), pw) // the test cluster trusts loopback: any password works
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"doctor", "--sandbox"}, nil, &out, &errb, env("HOSTKEY_STORE", u.String(), "HOME", t.TempDir()))
	if code != 0 {
		t.Fatalf("doctor: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	want := "engine postgres at postgres://" + u.User.Username() + "@" + u.Host + u.Path
	if !strings.Contains(out.String(), want) {
		t.Fatalf("doctor does not name the store (%s):\n%s", want, out.String())
	}
	out.Reset()
	code = run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox", "--log-level", "debug"}, nil, &out, &errb,
		env("HOSTKEY_STORE", u.String(), "HOME", t.TempDir()))
	if code != 0 {
		t.Fatalf("call: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "shared state store") {
		t.Fatalf("the run does not log its store:\n%s", errb.String())
	}
	if strings.Contains(out.String()+errb.String(), pw) {
		t.Fatal("the password appears in the output or the log")
	}
}

// A 2025-era client's answer to a form lands on another replica than the one waiting
// for it (the balancer lost the affinity mid-call): that replica relays it through the
// store, the waiting one takes it, and the call completes, once, instead of hanging.
func TestFormAnswerOnAnotherReplicaIsRelayed(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	a, _, urlA := replicaApp(t, storeURL)
	b, _, urlB := replicaApp(t, storeURL)
	pa, _ := url.Parse(urlA)
	pb, _ := url.Parse(urlB)
	toA, toB := httputil.NewSingleHostReverseProxy(pa), httputil.NewSingleHostReverseProxy(pb)
	toA.FlushInterval, toB.FlushInterval = -1, -1
	var answersToB atomic.Int32
	bal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.Method == http.MethodPost && isClientResponse(body) {
			answersToB.Add(1)
			toB.ServeHTTP(w, r) // the form's answer: the wrong replica
			return
		}
		toA.ServeHTTP(w, r)
	}))
	t.Cleanup(bal.Close)
	tr, err := transport.NewStreamableHTTP(bal.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var forms atomic.Int32
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION),
		client.WithElicitationHandler(formAnswer{n: &forms}),
		client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{}}))
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "eq_reboot", map[string]any{"id": 40101}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("the call whose form answer went to replica B: %v", err)
	}
	if res.IsError || forms.Load() != 1 || answersToB.Load() != 1 {
		t.Fatalf("result %s; %d forms, %d answers to B", toolText(res), forms.Load(), answersToB.Load())
	}
	if n := simSent(a.sandbox.sim, "eq", "reboot") + simSent(b.sandbox.sim, "eq", "reboot"); n != 1 {
		t.Fatalf("%d reboots sent, want 1", n)
	}
}

// formAnswer ticks "Yes, do it" in every form.
type formAnswer struct{ n *atomic.Int32 }

func (f formAnswer) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	f.n.Add(1)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirm": true}}}, nil
}

// The audit chain of all replicas is one: decisions made on two replicas are exported
// from the store (audit-export with HOSTKEY_STORE) as one file that audit-verify accepts.
func TestReplicasExportOneAuditChain(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	_, _, urlA := replicaApp(t, storeURL)
	_, _, urlB := replicaApp(t, storeURL)
	for _, u := range []string{urlA, urlB, urlA} {
		c, err := client.NewStreamableHttpClient(u + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		initialize(t, c)
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "eq_show", map[string]any{"id": 40101}
		if res, err := c.CallTool(t.Context(), req); err != nil || res.IsError {
			t.Fatalf("eq_show on %s: %v", u, err)
		}
		_ = c.Close()
	}
	file := t.TempDir() + "/audit.jsonl"
	var out, errb bytes.Buffer
	// Reads are audited by a background writer: wait until all three are in the chain.
	deadline := time.Now().Add(15 * time.Second)
	for {
		os.Remove(file)
		out.Reset()
		errb.Reset()
		if code := run(t.Context(), []string{"audit-export", file}, nil, &out, &errb, env("HOSTKEY_STORE", storeURL, "HOME", t.TempDir())); code != 0 {
			t.Fatalf("audit-export: exit %d: %s", code, errb.String())
		}
		b, _ := os.ReadFile(file)
		if strings.Count(string(b), `"eq_show"`) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out.Reset()
	if code := run(t.Context(), []string{"audit-verify", file}, nil, &out, &errb, env()); code != 0 || !strings.Contains(out.String(), "hash chain intact") {
		t.Fatalf("audit-verify: exit %d: %s %s", code, out.String(), errb.String())
	}
	b, _ := os.ReadFile(file)
	if n := strings.Count(string(b), `"eq_show"`); n < 3 {
		t.Fatalf("%d eq_show decisions in the exported chain, want 3 (two replicas)", n)
	}
}
