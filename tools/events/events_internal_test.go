package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// countingStore counts CreateJob calls.
type countingStore struct {
	store.Store
	creates atomic.Int64
}

func (c *countingStore) CreateJob(ctx context.Context, j store.Job) error {
	c.creates.Add(1)
	return c.Store.CreateJob(ctx, j)
}

// recSubs stands in for tools.Subscriptions: it records the URIs and tells every client.
type recSubs struct {
	mu   sync.Mutex
	uris []string
}

func (s *recSubs) NotifyUpdated(srv *server.MCPServer, uri string) int {
	s.mu.Lock()
	s.uris = append(s.uris, uri)
	s.mu.Unlock()
	srv.SendNotificationToAllClients(mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
	return 1
}

type mcpEnv struct {
	*env
	srv   *server.MCPServer
	subs  *recSubs
	n     *Notifier
	calls chan map[string]any // arguments the fake install tools received
	// hook run by the fake eq_order_instance after recording its arguments
	during func(ctx context.Context, args map[string]any)
}

func callbackSchema(extra string) json.RawMessage {
	return json.RawMessage(`{"type":"object","properties":{"id":{"type":"integer"},"root_pass":{"type":"string"}` + extra + `}}`)
}

func newMCPEnv(t *testing.T, o envOpts) *mcpEnv {
	e := &mcpEnv{env: newEnv(t, o), subs: &recSubs{}, calls: make(chan map[string]any, 16)}
	hooks := &server.Hooks{}
	e.srv = server.NewMCPServer("test", "0",
		server.WithToolCapabilities(true), server.WithResourceCapabilities(true, true), server.WithLogging(),
		server.WithHooks(hooks), server.WithToolHandlerMiddleware(InjectCallback(e.r, nil, nil)))
	install := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args := req.GetArguments()
		e.calls <- args
		if e.during != nil {
			e.during(ctx, args)
		}
		b, _ := json.Marshal(args) // echo the arguments, as an upstream error page might
		return mcp.NewToolResultStructured(map[string]any{"sent": args}, "sent "+string(b)), nil
	}
	e.srv.AddTool(mcp.Tool{Name: "eq_order_instance", RawInputSchema: callbackSchema(`,"post_install_callback":{"type":"string"}`)}, install)
	e.srv.AddTool(mcp.Tool{Name: "custom_deploy", RawInputSchema: callbackSchema(`,"post_install_callback":{"type":"string"}`)}, install)
	e.srv.AddTool(mcp.Tool{Name: "eq_show", RawInputSchema: callbackSchema("")}, install)
	// A typed (not raw) schema: the middleware reads it through policy.ToolSchema too.
	e.srv.AddTool(mcp.NewTool("custom_typed", mcp.WithNumber("id"), mcp.WithString(webhook.CallbackParam)), install)
	ev := Tool(e.r)
	e.srv.AddTool(ev.Tool, ev.Handler)
	e.srv.AddResource(Resource(e.r))
	e.srv.AddResourceTemplate(ResourceTemplate(e.r))
	e.n = NewNotifier(e.srv, e.subs, func(id int64) string { return "hostkey://servers/" + itoa(id) })
	e.n.Attach(hooks)
	e.r.SetNotifier(e.n)
	return e
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// mcpClient is a connected in-process client that collects notifications.
type mcpClient struct {
	*mcpclient.Client
	notes chan mcp.JSONRPCNotification
}

func connect(t *testing.T, srv *server.MCPServer, level mcp.LoggingLevel) *mcpClient {
	t.Helper()
	c, err := mcpclient.NewInProcessClientWithOptions(srv, mcpclient.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err != nil {
		t.Fatal(err)
	}
	mc := &mcpClient{Client: c, notes: make(chan mcp.JSONRPCNotification, 256)}
	c.OnNotification(func(n mcp.JSONRPCNotification) { mc.notes <- n })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	if level != "" {
		req := mcp.SetLevelRequest{}
		req.Params.Level = level
		//lint:ignore SA1019 logging/setLevel is how 2025-11-25 clients opt in to log messages
		if err := c.SetLevel(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = c.Close() })
	return mc
}

// waitNote returns the first notification matching pred within d.
func (c *mcpClient) waitNote(t *testing.T, d time.Duration, pred func(mcp.JSONRPCNotification) bool) (mcp.JSONRPCNotification, bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case n := <-c.notes:
			if pred(n) {
				return n, true
			}
		case <-timer.C:
			return mcp.JSONRPCNotification{}, false
		}
	}
}

func isMethod(m string) func(mcp.JSONRPCNotification) bool {
	return func(n mcp.JSONRPCNotification) bool { return n.Method == m }
}

func call(t *testing.T, c *mcpClient, name string, args map[string]any, meta *mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = meta
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestInjectCallback(t *testing.T) {
	cs := &countingStore{Store: memStore(t)}
	e := newMCPEnv(t, envOpts{cfg: webhook.Config{Store: cs}})
	c := connect(t, e.srv, "")

	res := call(t, c, "eq_order_instance", map[string]any{"id": 42, "root_pass": "Passw0rd!"}, nil)
	args := <-e.calls
	cb, _ := args[webhook.CallbackParam].(string)
	if !strings.HasPrefix(cb, e.url+"/cb/install/") {
		t.Fatalf("callback not injected: %v", args)
	}
	secret := cb[strings.LastIndexByte(cb, '/')+1:]
	j := jobIDOf(t, e.st, cb)
	if j.ServerID != 42 || j.Action != "eq_order_instance" || !strings.HasPrefix(j.Session, "inprocess-") {
		t.Fatalf("job %+v", j)
	}
	text := resultText(res)
	if strings.Contains(text, secret) {
		t.Fatalf("secret leaked into the result: %s", text)
	}
	if b, _ := json.Marshal(res.StructuredContent); strings.Contains(string(b), secret) {
		t.Fatalf("secret leaked into structured content: %s", b)
	}
	if !strings.Contains(text, j.ID) || !strings.Contains(text, "events_list") {
		t.Fatalf("result does not mention the job: %s", text)
	}

	// A tool outside the catalog whose schema has the property gets one too.
	call(t, c, "custom_deploy", map[string]any{"id": 5}, nil)
	if args := <-e.calls; args[webhook.CallbackParam] == nil {
		t.Fatal("custom_deploy: no callback")
	}
	call(t, c, "custom_typed", map[string]any{"id": 6}, nil)
	if args := <-e.calls; args[webhook.CallbackParam] == nil {
		t.Fatal("custom_typed: no callback")
	}
	before := cs.creates.Load()
	// The model chose its own callback: left alone.
	call(t, c, "eq_order_instance", map[string]any{"id": 42, webhook.CallbackParam: "https://example.com/mine"}, nil)
	if args := <-e.calls; args[webhook.CallbackParam] != "https://example.com/mine" {
		t.Fatalf("own callback replaced: %v", args)
	}
	// A tool without the property: untouched.
	call(t, c, "eq_show", map[string]any{"id": 42}, nil)
	if args := <-e.calls; args[webhook.CallbackParam] != nil {
		t.Fatalf("eq_show got a callback: %v", args)
	}
	if n := cs.creates.Load() - before; n != 0 {
		t.Fatalf("%d jobs created for calls that need none", n)
	}
}

func TestInjectCallbackWithoutPublicURL(t *testing.T) {
	cs := &countingStore{Store: memStore(t)}
	e := newMCPEnv(t, envOpts{cfg: webhook.Config{Store: cs}, noPublic: true})
	c := connect(t, e.srv, "")
	call(t, c, "eq_order_instance", map[string]any{"id": 1}, nil)
	if args := <-e.calls; args[webhook.CallbackParam] != nil {
		t.Fatalf("callback injected without a public URL: %v", args)
	}
	if cs.creates.Load() != 0 {
		t.Fatal("job created without a public URL")
	}
	if _, err := e.r.NewInstallJob(context.Background(), 1, "x", "", nil); err != webhook.ErrNoPublicURL {
		t.Fatalf("NewInstallJob: %v", err)
	}
}

// TestProgressOnOpenCall: the install finishes while the tool call that started it is
// still running; the caller gets notifications/progress on its token.
func TestProgressOnOpenCall(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	c := connect(t, e.srv, "")
	got := make(chan mcp.JSONRPCNotification, 1)
	e.during = func(ctx context.Context, args map[string]any) {
		// The "install" completes at once: call the callback, then wait for the progress
		// notification to reach the client before returning.
		res, err := http.Get(args[webhook.CallbackParam].(string))
		if err != nil || res.StatusCode != 200 {
			t.Errorf("callback: %v", err)
			return
		}
		res.Body.Close()
		n, ok := c.waitNote(t, 5*time.Second, isMethod(string(mcp.MethodNotificationProgress)))
		if ok {
			got <- n
		}
	}
	call(t, c, "eq_order_instance", map[string]any{"id": 42}, &mcp.Meta{ProgressToken: "tok-1"})
	select {
	case n := <-got:
		f := n.Params.AdditionalFields
		if f["progressToken"] != "tok-1" || !strings.Contains(f["message"].(string), "server 42") {
			t.Fatalf("progress %+v", f)
		}
	default:
		t.Fatal("no progress notification while the call was open")
	}
	// After the call returned, a later event for another job sends no progress.
	e.during = nil
	u := e.job(43)
	get(t, u)
	if _, ok := c.waitNote(t, 300*time.Millisecond, isMethod(string(mcp.MethodNotificationProgress))); ok {
		t.Fatal("progress sent for a job without an open call")
	}
}

// TestNotifierHonoursLogLevel: the login alert reaches, as a warning, the session that
// asked for warnings; a session at mcp-go's default level (error) is not spammed.
func TestNotifierHonoursLogLevel(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	a := connect(t, e.srv, mcp.LoggingLevelInfo)
	b := connect(t, e.srv, "")
	lu, _ := e.r.LoginAlertURL(context.Background())
	do(t, http.MethodPost, lu, "application/json", strings.NewReader(`{"ip":"198.51.100.7"}`))
	n, ok := a.waitNote(t, 5*time.Second, isMethod("notifications/message"))
	if !ok {
		t.Fatal("no log message")
	}
	f := n.Params.AdditionalFields
	if fmt.Sprint(f["level"]) != "warning" || f["logger"] != logLoggerName {
		t.Fatalf("%+v", f)
	}
	data := f["data"].(map[string]any)
	if !strings.Contains(data["message"].(string), "198.51.100.7") || data["event"].(map[string]any)["kind"] != "login_alert" {
		t.Fatalf("%+v", data)
	}
	if _, ok := b.waitNote(t, 300*time.Millisecond, isMethod("notifications/message")); ok {
		t.Fatal("session at level error got a warning")
	}
	// resources/updated for hostkey://events went out (the login has no server).
	if _, ok := a.waitNote(t, 2*time.Second, func(n mcp.JSONRPCNotification) bool {
		return n.Method == string(mcp.MethodNotificationResourceUpdated) && n.Params.AdditionalFields["uri"] == URI
	}); !ok {
		t.Fatal("no resources/updated for hostkey://events")
	}
	req := mcp.SetLevelRequest{}
	req.Params.Level = mcp.LoggingLevelWarning
	//lint:ignore SA1019 logging/setLevel is how 2025-11-25 clients opt in to log messages
	if err := b.SetLevel(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	do(t, http.MethodPost, lu, "application/json", strings.NewReader(`{"ip":"198.51.100.8"}`))
	if _, ok := b.waitNote(t, 5*time.Second, isMethod("notifications/message")); !ok {
		t.Fatal("session at warning got nothing")
	}
}

func TestEventsListTool(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	c := connect(t, e.srv, "")
	get(t, e.job(1))
	get(t, e.job(2))
	lu, _ := e.r.LoginAlertURL(context.Background())
	get(t, lu+"?ip=1.2.3.4")

	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools.Tools {
		if tl.Name == ToolName {
			a := tl.Annotations
			if !*a.ReadOnlyHint || *a.DestructiveHint || !*a.IdempotentHint || *a.OpenWorldHint {
				t.Fatalf("annotations %+v", a)
			}
		}
	}
	type page struct {
		Events []store.Event `json:"events"`
		Next   uint64        `json:"next_cursor"`
		More   bool          `json:"more"`
	}
	list := func(args map[string]any) (page, *mcp.CallToolResult) {
		res := call(t, c, ToolName, args, nil)
		var p page
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &p)
		return p, res
	}
	p, res := list(map[string]any{})
	if len(p.Events) != 3 || p.Next != 3 || p.More || res.IsError {
		t.Fatalf("all: %+v", p)
	}
	if !strings.Contains(resultText(res), "since=3") || !strings.Contains(resultText(res), "Install finished on server 1") {
		t.Fatalf("text: %s", resultText(res))
	}
	p, _ = list(map[string]any{"since": 1, "limit": 1})
	if len(p.Events) != 1 || p.Events[0].Cursor != 2 || !p.More || p.Next != 2 {
		t.Fatalf("paged: %+v", p)
	}
	p, _ = list(map[string]any{"kind": "login_alert"})
	if len(p.Events) != 1 || p.Events[0].Kind != "login_alert" {
		t.Fatalf("kind: %+v", p)
	}
	p, _ = list(map[string]any{"server_id": 2})
	if len(p.Events) != 1 || p.Events[0].ServerID != 2 {
		t.Fatalf("server: %+v", p)
	}
	p, _ = list(map[string]any{"since": 3})
	if len(p.Events) != 0 || p.Next != 3 {
		t.Fatalf("caught up: %+v", p)
	}
	for _, bad := range []map[string]any{{"since": -1}, {"limit": 0}, {"limit": 501}, {"kind": "nope"}, {"since": "x"}} {
		if _, res := list(bad); !res.IsError {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestEventsResource(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	c := connect(t, e.srv, "")
	for i := range 3 {
		get(t, e.job(int64(i+1)))
	}
	read := func(uri string) (map[string]any, error) {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		res, err := c.ReadResource(context.Background(), req)
		if err != nil {
			return nil, err
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(res.Contents[0].(mcp.TextResourceContents).Text), &out); err != nil {
			t.Fatal(err)
		}
		return out, nil
	}
	all, err := read(URI)
	if err != nil || len(all["events"].([]any)) != 3 || all["next_uri"] != "hostkey://events?cursor=3" {
		t.Fatalf("%v %v", all, err)
	}
	after, err := read("hostkey://events?cursor=2")
	if err != nil || len(after["events"].([]any)) != 1 {
		t.Fatalf("cursor=2: %v %v", after, err)
	}
	none, err := read("hostkey://events?cursor=2&kind=login_alert&limit=5")
	if err != nil || len(none["events"].([]any)) != 0 {
		t.Fatalf("kind filter: %v %v", none, err)
	}
	if _, err := read("hostkey://events?cursor=abc"); err == nil {
		t.Fatal("bad cursor accepted")
	}
}

func TestRecordWorkflowEvent(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	c := connect(t, e.srv, mcp.LoggingLevelInfo)
	ctx := context.Background()
	ev, dup, err := e.r.Record(ctx, store.Event{Kind: store.KindWorkflow, ServerID: 40101, Action: "reinstall_workflow",
		Data: map[string]any{"message": "PXE cleared", "password": "x"}}, "wf:1:done")
	if err != nil || dup || ev.Cursor != 1 || ev.Data["password"] != "[REDACTED]" {
		t.Fatalf("%+v %v %v", ev, dup, err)
	}
	if _, dup, _ := e.r.Record(ctx, store.Event{Kind: store.KindWorkflow}, "wf:1:done"); !dup {
		t.Fatal("replayed workflow event recorded twice")
	}
	if _, _, err := e.r.Record(ctx, store.Event{Kind: "bogus"}, ""); err == nil {
		t.Fatal("unknown kind accepted")
	}
	n, ok := c.waitNote(t, 5*time.Second, isMethod("notifications/message"))
	if !ok || fmt.Sprint(n.Params.AdditionalFields["level"]) != "info" {
		t.Fatalf("%+v", n)
	}
	if !strings.Contains(n.Params.AdditionalFields["data"].(map[string]any)["message"].(string), "PXE cleared") {
		t.Fatalf("%+v", n.Params.AdditionalFields)
	}
	// The server's resource was reported updated.
	if _, ok := c.waitNote(t, 2*time.Second, func(n mcp.JSONRPCNotification) bool {
		return n.Params.AdditionalFields["uri"] == "hostkey://servers/40101"
	}); !ok {
		t.Fatal("no resources/updated for the server")
	}
}

// TestNotifierSkipsSessionsNewerThanTheEvent: an event stored before a session connected
// (its notification still queued) reaches the sessions that were there, not the new one —
// the new one reads it through events_list. This was a CI flake before the stamp existed.
func TestNotifierSkipsSessionsNewerThanTheEvent(t *testing.T) {
	e := newMCPEnv(t, envOpts{})
	old := connect(t, e.srv, mcp.LoggingLevelInfo)
	accepted := time.Now() // the event is stored between the two connections
	late := connect(t, e.srv, mcp.LoggingLevelInfo)
	n := e.n
	ctx := webhook.ContextWithAccepted(context.Background(), accepted)
	n.Notify(ctx, webhook.Event{ID: "ev_1", Cursor: 1, Kind: store.KindInstallDone, ServerID: 7, Time: accepted})
	if _, ok := old.waitNote(t, 5*time.Second, isMethod("notifications/message")); !ok {
		t.Fatal("the session that was connected got nothing")
	}
	if _, ok := late.waitNote(t, 300*time.Millisecond, isMethod("notifications/message")); ok {
		t.Fatal("a session that connected after the event got it as a live notification")
	}
	// Without a stamp (a direct Notify) everyone connected is told.
	n.Notify(context.Background(), webhook.Event{ID: "ev_2", Cursor: 2, Kind: store.KindInstallDone, ServerID: 7, Time: accepted})
	if _, ok := late.waitNote(t, 5*time.Second, isMethod("notifications/message")); !ok {
		t.Fatal("unstamped event not delivered")
	}
}
