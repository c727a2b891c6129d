package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/testdata"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// testPIN is the simulator's account PIN in these tests: long and distinctive, so a
// search for it in results, logs and audit lines cannot match by accident.
const testPIN = "PIN-7Qx3-Zr81"

var epoch = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// fixtures is the sandbox with testPIN as the account PIN.
func fixtures(t testing.TB) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(testdata.Sandbox, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(testdata.Sandbox, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, "account.json") {
			var acc map[string]any
			if err := json.Unmarshal(b, &acc); err != nil {
				return err
			}
			acc["pin"] = testPIN
			if b, err = json.Marshal(acc); err != nil {
				return err
			}
		}
		m[p] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type envOpts struct {
	Policy     policy.Options // Describe, Facts, Audit, Logger, Now, PINPageBaseURL are filled in
	NoPage     bool           // serve no approval page (PINPageBaseURL "")
	NoPIN      bool           // configure no PIN on the server side
	PIN        string         // configured PIN (default testPIN)
	Selection  tools.Selection
	ExtraTools []server.ServerTool
	// MCPValidation leaves mcp-go's own argument validation on (as before the policy
	// validated): only to show what it did.
	MCPValidation bool
}

// env is the whole stack: the simulator on real HTTP, the real invapi client, the
// policy, the tools' MCP server, the approval pages on real HTTP.
type env struct {
	t       *testing.T
	sim     *sim.Server
	clock   *sim.ManualClock
	inv     *invapi.Client
	eng     *policy.Engine
	srv     *tools.Server
	pages   *httptest.Server
	logs    *observer.ObservedLogs
	audit   *toolstest.SyncBuffer
	log     *zap.Logger
	elicit  []*elicitor
	wires   []*wire
	mu      sync.Mutex
	outs    []string // every tool result, JSON, for leak checks
	secrets []string // values that must appear in no result, message, log or audit line
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	clock := sim.NewManualClock(epoch)
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	s, err := sim.New(sim.Options{Fixtures: fixtures(t), Clock: clock, NoPINFailDelay: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	account, _ := s.Keys()
	cat := schemas.Load()
	inv, err := invapi.New(invapi.Options{
		BaseURL: hs.URL + "/", APIKey: account, Logger: logger, Now: clock.Now,
		Retry: invapi.RetryPolicy{Attempts: 2, Initial: time.Millisecond, Max: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	var handler atomic.Pointer[http.Handler]
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(pages.Close)

	e := &env{t: t, sim: s, clock: clock, inv: inv, pages: pages, logs: logs, audit: &toolstest.SyncBuffer{}, log: logger}
	po := o.Policy
	po.Describe = tools.Describer(cat)
	po.Catalog = cat
	if po.Facts == nil {
		po.Facts = policy.ShowFacts(inv)
	}
	po.Audit = audit.New(e.audit, "")
	po.Logger = logger
	po.Now = clock.Now
	if !o.NoPage {
		po.PINPageBaseURL = pages.URL + "/policy"
	}
	if !o.NoPIN {
		pin := o.PIN
		if pin == "" {
			pin = testPIN
		}
		po.PIN = policy.StaticPIN(pin)
		e.secrets = append(e.secrets, pin)
	}
	e.secrets = append(e.secrets, testPIN)
	eng, err := policy.New(po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close) // before the store closes
	mux := http.NewServeMux()
	mux.Handle("/policy/", http.StripPrefix("/policy", eng.Handler()))
	var h http.Handler = mux
	handler.Store(&h)
	e.eng = eng

	sel := o.Selection
	if len(sel.Toolsets) == 0 && len(sel.Include) == 0 {
		sel.Toolsets = []string{"all"}
	}
	srv, err := tools.New(tools.Options{
		Catalog: cat, Client: eng.Guard(inv), Selection: sel, Version: "test",
		PIN: policy.PINFrom, Middleware: []server.ToolHandlerMiddleware{eng.Middleware}, ArgsValidated: !o.MCPValidation,
		ExtraTools: o.ExtraTools, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	t.Cleanup(func() { e.checkNoPINLeak() })
	return e
}

type clientKind string

const (
	legacyClient clientKind = "elicitation-create"    // 2025-11-25, in process
	mrtrClient   clientKind = "multi-round-trip"      // 2026-07-28, in process
	mrtrHTTP     clientKind = "multi-round-trip-http" // 2026-07-28 over streamable HTTP
)

var (
	formOnly   = &mcp.ElicitationCapability{}
	formAndURL = &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}
)

// wire records the bodies an HTTP MCP connection carried.
type wire struct {
	mu     sync.Mutex
	bodies []string
}

func (w *wire) add(s string) {
	w.mu.Lock()
	w.bodies = append(w.bodies, s)
	w.mu.Unlock()
}

func (w *wire) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.bodies, "\n")
}

type teeWriter struct {
	http.ResponseWriter
	buf *bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) { t.buf.Write(p); return t.ResponseWriter.Write(p) }
func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// connect opens a new MCP session of the given kind. el nil: the client has no
// elicitation handler (and declares none).
func (e *env) connect(kind clientKind, el *elicitor, caps *mcp.ElicitationCapability) (*client.Client, *wire) {
	t := e.t
	t.Helper()
	var opts []client.ClientOption
	if el != nil {
		opts = append(opts, client.WithElicitationHandler(el))
		if caps != nil {
			opts = append(opts, client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: caps}))
		}
	}
	var c *client.Client
	var w *wire
	switch kind {
	case legacyClient:
		opts = append(opts, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
		c, _ = client.NewInProcessClientWithOptions(e.srv.MCP(), opts...)
	case mrtrClient:
		c, _ = client.NewInProcessClientWithOptions(e.srv.MCP(), opts...)
	case mrtrHTTP:
		w = &wire{}
		h := server.NewStreamableHTTPServer(e.srv.MCP())
		hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var out bytes.Buffer
			h.ServeHTTP(&teeWriter{ResponseWriter: rw, buf: &out}, r)
			w.add("> " + string(body))
			w.add("< " + out.String())
		}))
		t.Cleanup(hs.Close)
		tr, err := transport.NewStreamableHTTP(hs.URL + "/mcp")
		if err != nil {
			t.Fatal(err)
		}
		c = client.NewClient(tr, opts...)
		e.mu.Lock()
		e.wires = append(e.wires, w)
		e.mu.Unlock()
	}
	ctx := t.Context()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "policy-test-" + string(kind), Version: "1"}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatal(err)
	}
	modern := mcp.IsModernProtocol(res.ProtocolVersion)
	if modern != (kind != legacyClient) {
		t.Fatalf("%s client negotiated %s", kind, res.ProtocolVersion)
	}
	if el != nil {
		e.mu.Lock()
		e.elicit = append(e.elicit, el)
		e.mu.Unlock()
	}
	return c, w
}

// call calls a tool; protocol errors fail the test.
func (e *env) call(c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	e.t.Helper()
	res, err := e.callErr(c, name, args)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (e *env) callErr(c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if res != nil {
		b, _ := json.Marshal(res)
		e.mu.Lock()
		e.outs = append(e.outs, string(b))
		e.mu.Unlock()
	}
	if err != nil {
		e.mu.Lock()
		e.outs = append(e.outs, err.Error())
		e.mu.Unlock()
	}
	return res, err
}

// sent returns the simulator's log of module/action requests.
func (e *env) sent(module, action string) []sim.Request {
	var out []sim.Request
	for _, r := range e.sim.Requests() {
		if r.Module == module && r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// writes returns every logged request other than auth and eq/show reads.
func (e *env) writes() []sim.Request {
	var out []sim.Request
	for _, r := range e.sim.Requests() {
		if r.Module == "auth" || (r.Module == "eq" && r.Action == "show") {
			continue
		}
		out = append(out, r)
	}
	return out
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	return m
}

// auditLines decodes the audit log.
func (e *env) auditLines() []audit.Entry {
	var out []audit.Entry
	for _, l := range strings.Split(strings.TrimSpace(e.audit.String()), "\n") {
		if l == "" {
			continue
		}
		var en audit.Entry
		if err := json.Unmarshal([]byte(l), &en); err != nil {
			e.t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, en)
	}
	return out
}

func (e *env) decisions() []policy.Decision {
	var out []policy.Decision
	for _, en := range e.auditLines() {
		out = append(out, policy.Decision(en.Decision))
	}
	return out
}

// checkNoPINLeak fails the test if the PIN shows up in any tool result, protocol
// error, elicitation message, HTTP MCP traffic, log line or audit line.
func (e *env) checkNoPINLeak() {
	for _, s := range e.secrets {
		e.checkNoLeak(s)
	}
}

func (e *env) checkNoLeak(testPIN string) {
	t := e.t
	var where []string
	e.mu.Lock()
	for _, o := range e.outs {
		if strings.Contains(o, testPIN) {
			where = append(where, "tool result: "+o)
		}
	}
	for _, el := range e.elicit {
		for _, r := range el.requests() {
			b, _ := json.Marshal(r)
			if strings.Contains(string(b), testPIN) {
				where = append(where, "elicitation: "+string(b))
			}
		}
	}
	for _, w := range e.wires {
		if strings.Contains(w.all(), testPIN) {
			where = append(where, "MCP HTTP traffic")
		}
	}
	e.mu.Unlock()
	for _, l := range e.logs.All() {
		b, _ := json.Marshal(append([]zap.Field{zap.String("msg", l.Message)}, l.Context...))
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range l.Context {
			f.AddTo(enc)
		}
		all, _ := json.Marshal(enc.Fields)
		if strings.Contains(l.Message, testPIN) || strings.Contains(string(all), testPIN) || strings.Contains(string(b), testPIN) {
			where = append(where, "log line: "+l.Message+" "+string(all))
		}
	}
	if strings.Contains(e.audit.String(), testPIN) {
		where = append(where, "audit log")
	}
	if len(where) > 0 {
		t.Errorf("the secret %q leaked into:\n%s", testPIN, strings.Join(where, "\n"))
	}
}

// elicitor is the human behind the client: it answers forms and, in URL mode, goes to
// the page and submits it.
type elicitor struct {
	env *env

	mu     sync.Mutex
	reqs   []mcp.ElicitationRequest
	form   mcp.ElicitationResponseAction // answer to forms (default accept)
	untick bool                          // accept without ticking the box
	url    mcp.ElicitationResponseAction // answer to URL requests (default accept)
	page   string                        // what to do on the page: approve (default), decline, none
	pin    string                        // PIN typed on the page (default testPIN)
	onURL  func(mcp.ElicitationRequest)  // called for a URL request, before answering it
}

func (el *elicitor) requests() []mcp.ElicitationRequest {
	el.mu.Lock()
	defer el.mu.Unlock()
	return append([]mcp.ElicitationRequest(nil), el.reqs...)
}

func (el *elicitor) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	el.mu.Lock()
	el.reqs = append(el.reqs, req)
	form, url, page, pin, untick, onURL := el.form, el.url, el.page, el.pin, el.untick, el.onURL
	el.mu.Unlock()
	if onURL != nil && req.Params.Mode == mcp.ElicitationModeURL {
		onURL(req)
	}
	if form == "" {
		form = mcp.ElicitationResponseActionAccept
	}
	if url == "" {
		url = mcp.ElicitationResponseActionAccept
	}
	if page == "" {
		page = "approve"
	}
	if pin == "" {
		pin = testPIN
	}
	if req.Params.Mode == mcp.ElicitationModeURL {
		if url == mcp.ElicitationResponseActionAccept && page != "none" {
			if code := el.env.submitPage(req.Params.URL, page, pin, true); code != http.StatusOK {
				el.env.t.Errorf("page answered %d", code)
			}
		}
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: url}}, nil
	}
	content := map[string]any{"confirm": !untick}
	if form != mcp.ElicitationResponseActionAccept {
		content = nil
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: form, Content: content}}, nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// submitPage opens an approval page like a browser and answers it; it returns the
// status of the POST. withOrigin false posts like a bare script.
func (e *env) submitPage(pageURL, decision, pin string, withOrigin bool) int {
	e.t.Helper()
	resp, err := http.Get(pageURL)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), testPIN) {
		e.t.Errorf("the approval page shows the PIN")
	}
	m := csrfRE.FindSubmatch(body)
	if m == nil {
		return resp.StatusCode
	}
	form := url.Values{"csrf": {string(m[1])}, "decision": {decision}}
	if decision == "approve" && strings.Contains(string(body), `name="pin"`) {
		form.Set("pin", pin)
	}
	req, _ := http.NewRequest(http.MethodPost, pageURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if withOrigin {
		u, _ := url.Parse(pageURL)
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), testPIN) {
		e.t.Errorf("the approval answer page shows the PIN")
	}
	return resp.StatusCode
}
