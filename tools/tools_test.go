package tools_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

func listTools(t *testing.T, st *toolstest.Stack) []mcp.Tool {
	t.Helper()
	res, err := st.MCP.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Tools
}

func TestEveryCatalogActionIsAnAnnotatedTool(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	cat := schemas.Load()
	got := map[string]mcp.Tool{}
	for _, tl := range listTools(t, st) {
		got[tl.Name] = tl
	}
	for _, a := range cat.Actions {
		tl, ok := got[a.Tool]
		if tools.IsSessionTool(a.Tool) {
			continue // hidden without --auth-tools: TestSessionToolsAreHiddenUnlessAskedFor
		}
		if !ok {
			t.Errorf("%s not listed", a.Tool)
			continue
		}
		an := tl.Annotations
		if an.ReadOnlyHint == nil || an.DestructiveHint == nil || an.IdempotentHint == nil || an.OpenWorldHint == nil {
			t.Errorf("%s: an annotation is unset: %+v", a.Tool, an)
			continue
		}
		if *an.ReadOnlyHint != (a.Class == schemas.Read) || *an.DestructiveHint != (a.Class == schemas.Destructive) {
			t.Errorf("%s: annotations %v/%v do not follow class %s", a.Tool, *an.ReadOnlyHint, *an.DestructiveHint, a.Class)
		}
		if string(mustJSON(t, tl.InputSchema)) == "" {
			t.Errorf("%s: no input schema", a.Tool)
		}
	}
	if _, ok := got[tools.GenericToolName]; !ok {
		t.Errorf("toolsets=all should expose %s", tools.GenericToolName)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadToolReturnsStructuredInvapiJSON(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	res := st.Call(t, "eq_show", map[string]any{"id": 40101})
	if res.IsError {
		t.Fatalf("eq_show failed: %s", toolstest.Text(res))
	}
	body, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(body), "40101") {
		t.Errorf("structured content does not describe server 40101: %s", body)
	}
	if !strings.HasPrefix(toolstest.Text(res), "eq/show succeeded.") {
		t.Errorf("summary: %q", toolstest.Text(res))
	}
	if n := len(st.Sent("eq", "show")); n != 1 {
		t.Errorf("%d eq/show requests, want 1", n)
	}
}

func TestBadArgumentsNameTheFieldAndSendNothing(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	st.Sim.ResetRequests()
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, "id"},
		{map[string]any{"id": "forty"}, "id"},
		{map[string]any{"id": 40101, "colour": "red"}, "colour"},
	} {
		res := st.Call(t, "eq_show", c.args)
		if !res.IsError {
			t.Errorf("%v: accepted", c.args)
			continue
		}
		if !strings.Contains(toolstest.Text(res), c.want) {
			t.Errorf("%v: error %q does not name %q", c.args, toolstest.Text(res), c.want)
		}
	}
	for _, r := range st.Sim.Requests() {
		if r.Module == "eq" {
			t.Errorf("bad arguments reached invapi: %s/%s", r.Module, r.Action)
		}
	}
}

func TestInvapiErrorsBecomeActionableToolErrors(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	res := st.Call(t, "eq_show", map[string]any{"id": 99999})
	if !res.IsError {
		t.Fatalf("unknown server accepted: %s", toolstest.Text(res))
	}
	text := toolstest.Text(res)
	if !strings.Contains(text, "eq_update_servers") || !strings.Contains(text, "99999") {
		t.Errorf("error does not say what to do next: %q", text)
	}
}

func TestReadOnlyExposesNoWriteTool(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: []string{"all"}, ReadOnly: true}})
	cat := schemas.Load()
	for _, tl := range listTools(t, st) {
		if a, ok := cat.Tool(tl.Name); ok && a.Class != schemas.Read {
			t.Errorf("read-only lists %s (%s)", tl.Name, a.Class)
		}
		if tl.Name == tools.GenericToolName {
			t.Errorf("read-only lists the generic tool")
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "eq_reboot"
	req.Params.Arguments = map[string]any{"id": 40101}
	// Unavailable tools answer "not found", saying why.
	if _, err := st.MCP.CallTool(t.Context(), req); err == nil || !strings.Contains(err.Error(), "Read-only mode") {
		t.Errorf("read-only server ran eq_reboot: %v", err)
	}
	if n := len(st.Sent("eq", "reboot")); n != 0 {
		t.Errorf("%d reboots sent in read-only mode", n)
	}
}

func TestDefaultToolsetsAreSmall(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: tools.DefaultToolsets}})
	all := toolstest.New(t, toolstest.Options{})
	def, full := listTools(t, st), listTools(t, all)
	db, fb := len(mustJSON(t, def)), len(mustJSON(t, full))
	t.Logf("tools/list: default %d tools %d bytes (~%d tokens); all %d tools %d bytes (~%d tokens)", len(def), db, db/4, len(full), fb, fb/4)
	if len(def) >= len(full)/2 || db >= fb/3 {
		t.Errorf("default toolsets are not small: %d of %d tools, %d of %d bytes", len(def), len(full), db, fb)
	}
	for _, tl := range def {
		a, ok := schemas.Load().Tool(tl.Name)
		// eq_callback_check follows the keys eq_reboot & co. return.
		if ok && a.Toolset != "servers" && a.Toolset != "power" && a.Toolset != "ip" && a.Tool != tools.CallbackCheckTool {
			t.Errorf("default lists %s from toolset %s", tl.Name, a.Toolset)
		}
	}
}

func TestSelectionRejectsUnknownNames(t *testing.T) {
	cat := schemas.Load()
	err := tools.Selection{Toolsets: []string{"servers", "mail"}}.Resolve(cat)
	if err == nil || !strings.Contains(err.Error(), "mail") || !strings.Contains(err.Error(), "billing") {
		t.Errorf("unknown toolset error: %v", err)
	}
	if err := (tools.Selection{Exclude: []string{"eq_nope"}}).Resolve(cat); err == nil {
		t.Error("unknown tool accepted")
	}
	if err := (tools.Selection{Toolsets: []string{"eq", "whmcs"}}).Resolve(cat); err != nil {
		t.Errorf("module names are toolsets too: %v", err)
	}
}

func TestIncludeExcludeTools(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Selection: tools.Selection{
		Toolsets: []string{"servers"}, Include: []string{"whmcs_get_invoices"}, Exclude: []string{"eq_history"},
	}})
	names := map[string]bool{}
	for _, tl := range listTools(t, st) {
		names[tl.Name] = true
	}
	if !names["whmcs_get_invoices"] || names["eq_history"] || !names["eq_show"] || names["eq_reboot"] {
		t.Errorf("include/exclude not applied: %v", names)
	}
}

func TestDynamicDiscoveryLoadsToolsets(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{
		Selection: tools.Selection{Toolsets: []string{"servers"}},
		Configure: func(o *tools.Options) { o.Dynamic = true },
	})
	res := st.Call(t, tools.SearchToolName, map[string]any{"query": "invoice"})
	if res.IsError || !strings.Contains(toolstest.Text(res), "whmcs_get_invoices") || !strings.Contains(toolstest.Text(res), "toolsets_enable billing") {
		t.Fatalf("search: %s", toolstest.Text(res))
	}
	before := len(listTools(t, st))
	res = st.Call(t, tools.EnableToolName, map[string]any{"toolsets": []any{"billing"}})
	if res.IsError {
		t.Fatal(toolstest.Text(res))
	}
	after := listTools(t, st)
	found := false
	for _, tl := range after {
		found = found || tl.Name == "whmcs_get_invoices"
	}
	if !found || len(after) <= before {
		t.Errorf("billing not loaded: %d → %d tools", before, len(after))
	}
	res = st.Call(t, tools.EnableToolName, map[string]any{"toolsets": []any{"nonsense"}})
	if !res.IsError || !strings.Contains(toolstest.Text(res), "nonsense") {
		t.Errorf("unknown toolset: %s", toolstest.Text(res))
	}
}

func TestResources(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	req := mcp.ReadResourceRequest{}
	req.Params.URI = tools.ServerURI(40101)
	res, err := st.MCP.ReadResource(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	txt := res.Contents[0].(mcp.TextResourceContents)
	if !strings.Contains(txt.Text, "40101") || txt.MIMEType != "application/json" {
		t.Errorf("server resource: %s %s", txt.MIMEType, txt.Text)
	}
	req.Params.URI = tools.ServersURI
	if _, err := st.MCP.ReadResource(t.Context(), req); err != nil {
		t.Errorf("servers resource: %v", err)
	}
	req.Params.URI = "hostkey://servers/abc"
	if _, err := st.MCP.ReadResource(t.Context(), req); err == nil {
		t.Error("non-numeric server id accepted")
	}
}

func TestSubscriptionsReachOnlySubscribers(t *testing.T) {
	// Both protocol eras: resources/subscribe (2025-11-25) and subscriptions/listen (2026-07-28).
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.LATEST_PROTOCOL_VERSION} {
		t.Run(version, func(t *testing.T) {
			st := toolstest.New(t, toolstest.Options{NoConnect: true})
			subscriber := connectVersion(t, st.Server, version)
			other := connectVersion(t, st.Server, version)
			got := make(chan string, 4)
			subscriber.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == mcp.MethodNotificationResourceUpdated {
					got <- "subscriber"
				}
			})
			other.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == mcp.MethodNotificationResourceUpdated {
					got <- "other"
				}
			})
			if version == mcp.LATEST_PROTOCOL_VERSION {
				stop, err := subscriber.ListenAsync(t.Context(), mcp.SubscriptionFilter{ResourceSubscriptions: []string{tools.ServersURI}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			} else {
				sub := mcp.SubscribeRequest{}
				sub.Params.URI = tools.ServersURI
				//lint:ignore SA1019 resources/subscribe is the legacy protocol this case covers
				if err := subscriber.Subscribe(t.Context(), sub); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			for i := 0; i < 100 && n == 0; i++ { // the listen stream opens asynchronously
				n = st.Server.Subscriptions().NotifyUpdated(st.Server.MCP(), tools.ServerURI(40101))
				if n == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			if n != 1 {
				t.Fatalf("notified %d sessions, want 1", n)
			}
			select {
			case who := <-got:
				if who != "subscriber" {
					t.Errorf("notification went to %s", who)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no notification")
			}
		})
	}
}

func connectVersion(t *testing.T, srv *tools.Server, version string) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeSessions stands in for a token whose role allows only some actions.
type fakeSessions struct{ perms *[]string }

func (f fakeSessions) Session(context.Context) (*invapi.Session, error) {
	return &invapi.Session{Role: "limited", Permissions: *f.perms}, nil
}

func TestPermissionsHideToolsTheTokenCannotUse(t *testing.T) {
	perms := []string{"eq/show", "eq/list", "whmcs/get_invoices"}
	st := toolstest.New(t, toolstest.Options{Configure: func(o *tools.Options) { o.Sessions = fakeSessions{&perms} }})
	changed := make(chan struct{}, 4)
	st.MCP.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationToolsListChanged {
			changed <- struct{}{}
		}
	})
	names := func() map[string]bool {
		out := map[string]bool{}
		for _, tl := range listTools(t, st) {
			out[tl.Name] = true
		}
		return out
	}
	if !names()["eq_reboot"] {
		t.Fatal("before login every tool is listed")
	}
	if err := st.Server.RefreshPermissions(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := names()
	for name, want := range map[string]bool{
		"eq_show": true, "whmcs_get_invoices": true, // allowed
		"eq_reboot": false, "whmcs_mass_pay": false, // their modules are listed, they are not
		"presets_list":  true, // needs no token
		"api_keys_list": true, // the list says nothing about api_keys
	} {
		if got[name] != want {
			t.Errorf("%s listed=%v, want %v", name, got[name], want)
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "eq_reboot"
	req.Params.Arguments = map[string]any{"id": 40101}
	if _, err := st.MCP.CallTool(t.Context(), req); err == nil || !strings.Contains(err.Error(), "role may not call eq/reboot") {
		t.Errorf("a hidden tool can still be called: %v", err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tools/list_changed after the permissions arrived")
	}
	perms = append(perms, "eq/reboot")
	if err := st.Server.RefreshPermissions(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !names()["eq_reboot"] {
		t.Error("a newly granted permission does not show its tool")
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tools/list_changed after the permissions changed")
	}
}

func TestCompletions(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	req := mcp.CompleteRequest{}
	req.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "order_instant_server"}
	req.Params.Argument.Name, req.Params.Argument.Value = "location", "n"
	res, err := st.MCP.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Completion.Values) != 1 || res.Completion.Values[0] != "NL" {
		t.Errorf("location completion: %v", res.Completion.Values)
	}
	req.Params.Ref = mcp.ResourceReference{Type: "ref/resource", URI: "hostkey://servers/{id}"}
	req.Params.Argument.Name, req.Params.Argument.Value = "id", "401"
	res, err = st.MCP.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Completion.Values) == 0 || !strings.HasPrefix(res.Completion.Values[0], "401") {
		t.Errorf("server id completion: %v", res.Completion.Values)
	}
}

// BenchmarkToolCallThroughMCP is one read tool call end to end: MCP client → schema
// validation → handler → invapi client → simulator over loopback HTTP → result.
func BenchmarkToolCallThroughMCP(b *testing.B) {
	st := toolstest.New(b, toolstest.Options{})
	req := mcp.CallToolRequest{}
	req.Params.Name = "eq_status"
	req.Params.Arguments = map[string]any{"id": 40101}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := st.MCP.CallTool(ctx, req)
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}

func TestResultsNeverShowWebhookSecrets(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	secret := "Zr8Q2c1bTTnO4tQ0v0mYl7uQXb8Wf3mKkLxYzA1b2c3"
	res := st.Call(t, "api_keys_edit", map[string]any{"params": map[string]any{
		"id": 501, "name": "sandbox-account", "active": 1, "login_notify_method": "webhook",
		"login_notify_address": "https://hooks.example/hk/alerts/login/" + secret,
	}})
	if res.IsError {
		t.Fatalf("api_keys_edit: %s", toolstest.Text(res))
	}
	list := st.Call(t, "api_keys_list", map[string]any{})
	body, _ := json.Marshal(list.StructuredContent)
	if !strings.Contains(string(body), "/alerts/login/[REDACTED]") {
		t.Fatalf("the edited key is not listed with its (redacted) address: %s", body)
	}
	if strings.Contains(toolstest.Text(list)+string(body), secret) {
		t.Error("the login-alert token reached the model")
	}
}
