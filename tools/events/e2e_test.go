package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/events"
	stackpkg "github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// stack is the whole sandbox as cmd assembles it (tools/stack, through toolstest):
// simulator → real invapi client → policy (confirmation off: no human in these tests) →
// receiver, events tool, resources and notifier → a webhook listener on loopback whose
// address is the public URL.
type stack struct {
	*toolstest.Stack
	rcv    *webhook.Receiver
	st     *store.Shared
	public string
}

func newStack(t *testing.T, cfg webhook.Config) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	b, err := store.OpenShared(context.Background(), t.TempDir()) // SQLite in a data dir, as cmd opens it
	if err != nil {
		t.Fatal(err)
	}
	var sim interface{ Close() }
	t.Cleanup(func() { // last: after the stack has closed the receiver
		_ = b.Close()
		if sim != nil {
			sim.Close()
		}
	})
	cfg.Store, cfg.PublicURL, cfg.RateLimit = b, public, rate.Inf
	ts := toolstest.New(t, toolstest.Options{
		Selection: tools.Selection{Toolsets: []string{"all"}},
		NoConnect: true,
		Full: func(so *stackpkg.Options) {
			so.Receiver = cfg
			so.Policy.Confirm = policy.ConfirmOff
		},
	})
	sim = ts.Sim
	rcv := ts.Full.Receiver
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- webhook.Serve(ctx, ln, rcv.Handler(), webhook.Timeouts{}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &stack{Stack: ts, rcv: rcv, st: b, public: public}
}

type client struct {
	*mcpclient.Client
	notes chan mcp.JSONRPCNotification
}

// connect opens a session on the 2025-11-25 protocol (resources/subscribe and
// logging/setLevel exist there) at log level info.
func connect(t *testing.T, srv *server.MCPServer) *client {
	t.Helper()
	c, err := mcpclient.NewInProcessClientWithOptions(srv, mcpclient.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{Client: c, notes: make(chan mcp.JSONRPCNotification, 256)}
	c.OnNotification(func(n mcp.JSONRPCNotification) { cl.notes <- n })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	lv := mcp.SetLevelRequest{}
	lv.Params.Level = mcp.LoggingLevelInfo
	//lint:ignore SA1019 logging/setLevel is how 2025-11-25 clients opt in to log messages
	if err := c.SetLevel(ctx, lv); err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *client) subscribe(t *testing.T, uri string) {
	t.Helper()
	req := mcp.SubscribeRequest{}
	req.Params.URI = uri
	//lint:ignore SA1019 resources/subscribe is the legacy protocol tools.Subscriptions tracks
	if err := c.Subscribe(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func (c *client) call(t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// collect gathers notifications for d or until want is satisfied.
func (c *client) collect(d time.Duration, want func([]mcp.JSONRPCNotification) bool) []mcp.JSONRPCNotification {
	var got []mcp.JSONRPCNotification
	deadline := time.After(d)
	for {
		select {
		case n := <-c.notes:
			got = append(got, n)
			if want != nil && want(got) {
				return got
			}
		case <-deadline:
			return got
		}
	}
}

func find(notes []mcp.JSONRPCNotification, method string, pred func(map[string]any) bool) (map[string]any, bool) {
	for _, n := range notes {
		if n.Method == method && (pred == nil || pred(n.Params.AdditionalFields)) {
			return n.Params.AdditionalFields, true
		}
	}
	return nil, false
}

const serverID = 40102 // a VPS in NL (sandbox fixtures)

var jobRE = regexp.MustCompile(`job_[0-9a-f]{20}`)

// reinstall starts a sandbox reinstall through eq_order_instance and returns the job ID
// from the result text.
func reinstall(t *testing.T, s *stack, c *client) string {
	t.Helper()
	res := c.call(t, "eq_order_instance", map[string]any{
		"id": serverID, "os_id": 210, "root_pass": "Sandbox-pass-1", "location_name": "NL", "hostname": "db-nl-02",
	})
	text := toolstest.Text(res)
	if res.IsError {
		t.Fatalf("eq_order_instance failed: %s", text)
	}
	job := jobRE.FindString(text)
	if job == "" {
		t.Fatalf("no job in the result: %s", text)
	}
	sent := s.Sent("eq", "order_instance")
	if len(sent) != 1 || !strings.HasPrefix(sent[0].Form.Get("post_install_callback"), s.public+"/cb/install/") {
		t.Fatalf("invapi did not receive the callback URL: %+v", sent)
	}
	return job
}

// finish lets the sandbox install run to completion; the simulator then GETs the
// callback URL (synchronously, inside Advance).
func finish(t *testing.T, s *stack) {
	t.Helper()
	s.Sim.Advance(25 * time.Minute)
	sv, _ := s.Sim.Server(serverID)
	if len(sv.Callbacks) != 1 {
		t.Fatalf("simulator made %d callback calls", len(sv.Callbacks))
	}
	if cb := sv.Callbacks[0]; cb.Status != 200 {
		t.Fatalf("callback answered %d (%s)", cb.Status, cb.Err)
	}
}

func TestEndToEndReinstallNotifiesConnectedClient(t *testing.T) {
	s := newStack(t, webhook.Config{})
	c := connect(t, s.Server.MCP())
	c.subscribe(t, tools.ServerURI(serverID))
	jobID := reinstall(t, s, c)
	if j, err := s.rcv.Job(context.Background(), jobID); err != nil || j.State != store.JobPending || j.ServerID != serverID {
		t.Fatalf("job before the callback: %+v %v", j, err)
	}

	finish(t, s)

	notes := c.collect(5*time.Second, func(ns []mcp.JSONRPCNotification) bool {
		_, a := find(ns, "notifications/message", nil)
		_, b := find(ns, string(mcp.MethodNotificationResourceUpdated), nil)
		return a && b
	})
	msg, ok := find(notes, "notifications/message", func(f map[string]any) bool {
		d, _ := f["data"].(map[string]any)
		ev, _ := d["event"].(map[string]any)
		return ev["kind"] == store.KindInstallDone
	})
	if !ok {
		t.Fatalf("no install_done log message; got %v", notes)
	}
	data := msg["data"].(map[string]any)
	if m := data["message"].(string); !strings.Contains(m, fmt.Sprintf("server %d", serverID)) || !strings.Contains(m, jobID) {
		t.Fatalf("message %q", m)
	}
	if fmt.Sprint(msg["level"]) != "notice" {
		t.Fatalf("level %v", msg["level"])
	}
	if _, ok := find(notes, string(mcp.MethodNotificationResourceUpdated), func(f map[string]any) bool {
		return f["uri"] == tools.ServerURI(serverID)
	}); !ok {
		t.Fatalf("no resources/updated for %s; got %v", tools.ServerURI(serverID), notes)
	}
	j, err := s.rcv.Job(context.Background(), jobID)
	if err != nil || j.State != store.JobDone || j.EventID == "" {
		t.Fatalf("job after the callback: %+v %v", j, err)
	}
	// The event is also in events_list, with the simulator's curl GET recorded.
	res := c.call(t, events.ToolName, map[string]any{"kind": "install_done"})
	var page struct {
		Events []store.Event `json:"events"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &page)
	if len(page.Events) != 1 || page.Events[0].JobID != jobID || page.Events[0].Data["method"] != "GET" {
		t.Fatalf("events_list: %s", b)
	}
}

// TestEndToEndMissedEventReadAfterConnect: nobody is connected when the install
// finishes; a client that connects later reads the event it missed.
func TestEndToEndMissedEventReadAfterConnect(t *testing.T) {
	s := newStack(t, webhook.Config{})
	first := connect(t, s.Server.MCP())
	jobID := reinstall(t, s, first)
	// The session that started the job goes away before the install finishes.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	finish(t, s)
	if j, _ := s.rcv.Job(context.Background(), jobID); j.State != store.JobDone {
		t.Fatalf("job %+v", j)
	}

	later := connect(t, s.Server.MCP())
	res := later.call(t, events.ToolName, map[string]any{"since": 0})
	text := toolstest.Text(res)
	if res.IsError || !strings.Contains(text, jobID) || !strings.Contains(text, fmt.Sprintf("Install finished on server %d", serverID)) {
		t.Fatalf("events_list after reconnect: %s", text)
	}
	// Caught up: the next call with the returned cursor is empty.
	var page struct {
		Next uint64 `json:"next_cursor"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &page)
	res = later.call(t, events.ToolName, map[string]any{"since": page.Next})
	if !strings.Contains(toolstest.Text(res), "No events after cursor") {
		t.Fatalf("after catching up: %s", toolstest.Text(res))
	}
	// The same through the resource.
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "hostkey://events?cursor=0"
	rr, err := later.ReadResource(context.Background(), req)
	if err != nil || !strings.Contains(rr.Contents[0].(mcp.TextResourceContents).Text, jobID) {
		t.Fatalf("resource: %v %v", rr, err)
	}
	// The new session got no stale notification for the old event.
	if got := later.collect(200*time.Millisecond, nil); len(got) != 0 {
		if _, ok := find(got, "notifications/message", nil); ok {
			t.Fatalf("stale notification: %v", got)
		}
	}
}

// TestEndToEndSourceCheck: with --check-source-ip the simulator's callback (from
// 127.0.0.1, not one of the server's addresses from eq/show) is refused and the job stays
// pending.
func TestEndToEndSourceCheck(t *testing.T) {
	var s *stack
	s = newStack(t, webhook.Config{CheckSourceIP: true, ServerIPs: func(ctx context.Context, id int64) ([]string, error) {
		return webhook.EqShowIPs(s.Client)(ctx, id)
	}})
	c := connect(t, s.Server.MCP())
	jobID := reinstall(t, s, c)
	j, _ := s.rcv.Job(context.Background(), jobID)
	if len(j.ServerIPs) == 0 || j.ServerIPs[0] != "203.0.113.20" {
		t.Fatalf("server IPs from eq/show: %v", j.ServerIPs)
	}
	s.Sim.Advance(25 * time.Minute)
	sv, _ := s.Sim.Server(serverID)
	if len(sv.Callbacks) != 1 || sv.Callbacks[0].Status != 403 {
		t.Fatalf("callbacks %+v", sv.Callbacks)
	}
	if j, _ := s.rcv.Job(context.Background(), jobID); j.State != store.JobPending {
		t.Fatal("job completed by a caller that is not the server")
	}
	if m := s.rcv.Metrics(); m.Rejected[webhook.ReasonSourceIP] != 1 {
		t.Fatalf("metrics %+v", m.Rejected)
	}
}

// TestPointAPIKey: the login-alert helper sets api_keys/edit on the simulator.
func TestPointAPIKey(t *testing.T) {
	s := newStack(t, webhook.Config{})
	ctx := context.Background()
	key, err := events.PointAPIKey(ctx, s.rcv, s.Client, 501)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.rcv.LoginAlertURL(ctx)
	resp, err := s.Client.Call(ctx, "api_keys", "view", map[string]any{"id": 501})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := events.ParseAPIKey(resp.Fields)
	if got.LoginNotifyMethod != "webhook" || got.LoginNotifyAddress != want || got.Name != "sandbox-account" || got.Active != 1 || key.LoginNotifyAddress != want {
		t.Fatalf("after edit: %+v", got)
	}
	if _, err := events.PointAPIKey(ctx, s.rcv, s.Client, 502); err == nil {
		t.Fatal("per-server key accepted")
	}
}
