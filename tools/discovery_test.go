package tools_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// fakeWorkflows stands in for the workflow tools (tools/workflows imports this package).
func fakeWorkflows() tools.ExtraToolset {
	tool := mcp.NewTool("server_reinstall", mcp.WithDescription("Reinstall a server's OS as one followed job."),
		mcp.WithDestructiveHintAnnotation(true), mcp.WithReadOnlyHintAnnotation(false))
	return tools.ExtraToolset{
		Name: "workflows", Description: "Order and reinstall servers as jobs.", With: []string{"reinstall"},
		Tools: []server.ServerTool{{Tool: tool, Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		}}},
	}
}

func toolNames(t *testing.T, st *toolstest.Stack) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, tl := range listTools(t, st) {
		out[tl.Name] = true
	}
	return out
}

// Issue 17: toolsets_enable ["workflows"] said "unknown toolset" and tools_search
// "reinstall" never found server_reinstall.
func TestWorkflowsToolsetIsSearchableAndLoadable(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{
		Selection: tools.Selection{Toolsets: []string{"servers"}},
		Configure: func(o *tools.Options) {
			o.Dynamic = true
			o.ExtraToolsets = []tools.ExtraToolset{fakeWorkflows()}
		},
	})
	if toolNames(t, st)["server_reinstall"] {
		t.Fatal("workflows loaded before being asked for")
	}
	res := st.Call(t, tools.SearchToolName, map[string]any{"query": "reinstall"})
	if !strings.Contains(toolstest.Text(res), "server_reinstall [workflows, destructive, not loaded: toolsets_enable workflows]") {
		t.Errorf("search reinstall: %s", toolstest.Text(res))
	}
	res = st.Call(t, tools.EnableToolName, map[string]any{"toolsets": []any{"workflows"}})
	if res.IsError || !strings.Contains(toolstest.Text(res), "server_reinstall") {
		t.Fatalf("enable workflows: %s", toolstest.Text(res))
	}
	if !toolNames(t, st)["server_reinstall"] {
		t.Error("server_reinstall not listed after toolsets_enable workflows")
	}
	if res := st.Call(t, "server_reinstall", nil); res.IsError {
		t.Errorf("server_reinstall after loading: %s", toolstest.Text(res))
	}
}

// Issue 17: results and instructions point at eq_callback_check, which the default
// toolsets did not load ("tool not found").
func TestCallbackCheckComesWithAsyncTools(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: tools.DefaultToolsets}})
	names := toolNames(t, st)
	if !names["eq_reboot"] || !names[tools.CallbackCheckTool] {
		t.Errorf("default toolsets: eq_reboot=%v %s=%v", names["eq_reboot"], tools.CallbackCheckTool, names[tools.CallbackCheckTool])
	}
	st = toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: []string{"catalog"}}})
	if toolNames(t, st)[tools.CallbackCheckTool] {
		t.Error("eq_callback_check loaded without any tool that returns a key")
	}
	st = toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: tools.DefaultToolsets, Exclude: []string{tools.CallbackCheckTool}}})
	if toolNames(t, st)[tools.CallbackCheckTool] {
		t.Error("--exclude-tools eq_callback_check ignored")
	}
}

// Issue 17: an unknown tool got no "did you mean", a tool from another toolset no hint
// of the flag that loads it.
func TestUnknownToolHints(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{
		Selection: tools.Selection{Toolsets: tools.DefaultToolsets},
		Configure: func(o *tools.Options) { o.ExtraToolsets = []tools.ExtraToolset{fakeWorkflows()} },
	})
	for _, c := range []struct{ tool, want string }{
		{"eq_sho", "Did you mean eq_show"},
		{"whmcs_get_invoices", "--toolsets servers,power,ip,billing"},
		{"server_reinstall", "--toolsets servers,power,ip,workflows"},
		{"tools_search", "--dynamic-toolsets"},
		{"zzzz", "hostkey-mcp tools --toolsets all"},
	} {
		err := callErr(t, st, c.tool)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Nothing was sent") {
			t.Errorf("%s: %v (want %q)", c.tool, err, c.want)
		}
	}
	if len(st.Sent("whmcs", "get_invoices")) > 0 {
		t.Error("an unloaded tool reached invapi")
	}
	dyn := toolstest.New(t, toolstest.Options{
		Selection: tools.Selection{Toolsets: []string{"servers"}},
		Configure: func(o *tools.Options) { o.Dynamic = true },
	})
	if err := callErr(t, dyn, "whmcs_get_invoices"); err == nil || !strings.Contains(err.Error(), `toolsets_enable with ["billing"]`) {
		t.Errorf("dynamic: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"eq_show", "eq_status", "eq_reboot", "eq_callback_check", "ip_update_ptr"}
	for in, want := range map[string]string{
		"eq_callbak_check": "eq_callback_check",
		"eq_reboto":        "eq_reboot",
		"update_ptr":       "ip_update_ptr",
	} {
		if got := tools.Suggest(in, names); len(got) == 0 || got[0] != want {
			t.Errorf("Suggest(%q) = %v, want %s first", in, got, want)
		}
	}
	if got := tools.Suggest("billing_pay", names); len(got) != 0 {
		t.Errorf("far-off name: %v", got)
	}
}

// callErr calls a tool expecting the protocol's not-found error (-32602) and returns it.
func callErr(t *testing.T, st *toolstest.Stack, name string) error {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = map[string]any{"id": 1}
	res, err := st.MCP.CallTool(t.Context(), req)
	if err == nil {
		t.Errorf("%s: a result instead of the not-found error: %s", name, toolstest.Text(res))
	}
	return err
}
