package tools_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// Issue 17: the reinstall_server prompt rendered "Reinstall server ." without its
// argument.
func TestReinstallPromptNeedsAndRendersServerID(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	req := mcp.GetPromptRequest{}
	req.Params.Name = "reinstall_server"
	if _, err := st.MCP.GetPrompt(t.Context(), req); err == nil || !strings.Contains(err.Error(), "server_id is required") {
		t.Errorf("no server_id: %v", err)
	}
	req.Params.Arguments = map[string]string{"server_id": "40101"}
	res, err := st.MCP.GetPrompt(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Messages[0].Content.(mcp.TextContent).Text
	if !strings.HasPrefix(text, "Reinstall server 40101.") || !strings.Contains(text, "id=40101") {
		t.Errorf("prompt: %s", text)
	}
}

// Issue 17: hostkey://servers/99999 answered -32603 rather than resource-not-found.
func TestUnknownServerResourceIsNotFound(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Protocol: mcp.ProtocolVersion20251125})
	req := mcp.ReadResourceRequest{}
	req.Params.URI = tools.ServerURI(99999)
	_, err := st.MCP.ReadResource(t.Context(), req)
	if err == nil || !errors.Is(err, mcp.ErrResourceNotFound) || !strings.Contains(err.Error(), "99999") {
		t.Errorf("hostkey://servers/99999: %v", err)
	}
	req.Params.URI = tools.ServerURI(40101)
	if _, err := st.MCP.ReadResource(t.Context(), req); err != nil {
		t.Errorf("a listed server: %v", err)
	}
}

// Issue 17: state errors ("server is powered off") ended with "check the arguments
// against the schema".
func TestStateErrorsDoNotBlameTheArguments(t *testing.T) {
	var st *toolstest.Stack
	st = toolstest.New(t, toolstest.Options{Configure: func(o *tools.Options) {
		o.PIN = func(context.Context) string { return st.Sim.PIN() }
	}})
	if res := st.Call(t, "eq_off", map[string]any{"id": 40101}); res.IsError {
		t.Fatal(toolstest.Text(res))
	}
	res := st.Call(t, "eq_reboot", map[string]any{"id": 40101})
	text := toolstest.Text(res)
	if !res.IsError || strings.Contains(text, "schema") || !strings.Contains(text, "current state") {
		t.Errorf("reboot of a powered-off server: %s", text)
	}
}
