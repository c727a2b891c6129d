package tools_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// Issue 12 item 6: eq_check_pin (read class, no confirmation) took a model-supplied
// old_pin, a PIN-guessing oracle on the real API. The model can no longer send one; the
// policy sends the configured PIN.
func TestCheckPINTakesNoPINFromTheModel(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{})
	st.Sim.ResetRequests()
	for _, guess := range []map[string]any{{"old_pin": 1111}, {"pin": "1111"}} {
		res := st.Call(t, "eq_check_pin", guess)
		if !res.IsError {
			t.Errorf("eq_check_pin accepted a PIN from the model (%v): %s", guess, toolstest.Text(res))
		}
	}
	if n := len(st.Sent("eq", "check_pin")); n != 0 {
		t.Fatalf("%d eq/check_pin requests carried the model's guess", n)
	}
	res := st.Call(t, "eq_check_pin", map[string]any{})
	if res.IsError || !strings.Contains(toolstest.Text(res), "Pin code is valid") {
		t.Fatalf("eq_check_pin with the configured PIN: %s", toolstest.Text(res))
	}
	if strings.Contains(toolstest.Text(res), st.Sim.PIN()) {
		t.Error("the result shows the PIN")
	}
	sent := st.Sent("eq", "check_pin")
	if len(sent) != 1 || sent[0].Form.Get("pin") != st.Sim.PIN() {
		t.Errorf("eq/check_pin did not carry the configured PIN")
	}
}

// eq_set_pin: the model types only the new PIN; the current one comes from the policy as
// old_pin (invapi's name for it).
func TestSetPINTakesTheCurrentPINFromThePolicy(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{Confirm: policy.ConfirmOff})
	old := st.Sim.PIN()
	res := st.Call(t, "eq_set_pin", map[string]any{"new_pin": "48151", "old_pin": old})
	if !res.IsError || !strings.Contains(toolstest.Text(res), "old_pin") {
		t.Errorf("eq_set_pin took old_pin from the model: %s", toolstest.Text(res))
	}
	res = st.Call(t, "eq_set_pin", map[string]any{"new_pin": "48151"})
	if res.IsError {
		t.Fatalf("eq_set_pin: %s", toolstest.Text(res))
	}
	if st.Sim.PIN() != "48151" {
		t.Errorf("the PIN was not changed")
	}
	if sent := st.Sent("eq", "set_pin"); len(sent) != 1 || sent[0].Form.Get("old_pin") != old {
		t.Errorf("eq/set_pin did not carry the configured PIN as old_pin")
	}
}

// Nor through the generic tool: any PIN-like parameter, at any depth, is refused.
func TestGenericToolTakesNoPINFromTheModel(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{Confirm: policy.ConfirmOff})
	st.Sim.ResetRequests()
	for _, params := range []map[string]any{
		{"old_pin": "1234"},
		{"new_pin": "1234"},
		{"params": map[string]any{"pincode": 1234}},
	} {
		res := st.Call(t, "invapi_call", map[string]any{"module": "tag", "action": "add", "params": params})
		if !res.IsError || !strings.Contains(toolstest.Text(res), "PIN") {
			t.Errorf("invapi_call with %v: %s", params, toolstest.Text(res))
		}
	}
	if n := len(st.Sim.Requests()); n != 0 {
		t.Errorf("%d requests reached invapi", n)
	}
}

// Issue 12 item 4: auth_login and auth_whmcslogin took the raw API key or billing
// password from the model and returned the new session token unmasked. hostkey-mcp runs
// the session: the session tools are hidden unless --auth-tools asks for them.
func TestSessionToolsAreHiddenUnlessAskedFor(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{Selection: tools.Selection{Toolsets: []string{"all"}}})
	listed := map[string]bool{}
	for _, tl := range listTools(t, st) {
		listed[tl.Name] = true
	}
	for _, name := range []string{"auth_login", "auth_logout", "auth_whmcslogin"} {
		if listed[name] {
			t.Errorf("%s is listed without --auth-tools", name)
		}
	}
	if !listed["auth_info"] {
		t.Error("auth_info should stay listed")
	}
	st.Sim.ResetRequests()
	key, _ := st.Sim.Keys()
	res, err := st.MCP.CallTool(t.Context(), callReq("auth_login", map[string]any{"key": key}))
	if err == nil && !res.IsError {
		t.Errorf("auth_login ran without --auth-tools: %s", toolstest.Text(res))
	}
	for _, r := range st.Sim.Requests() {
		if r.Module == "auth" && r.Action == "login" && r.Form.Get("key") == key {
			t.Error("the model's API key reached auth/login")
		}
	}
	sel := tools.Selection{Toolsets: []string{"servers"}, Include: []string{"auth_login"}}
	if err := sel.Resolve(schemas.Load()); err == nil || !strings.Contains(err.Error(), "--auth-tools") {
		t.Errorf("--tools auth_login without --auth-tools: %v", err)
	}
	sel.AuthTools = true
	if err := sel.Resolve(schemas.Load()); err != nil {
		t.Errorf("--tools auth_login with --auth-tools: %v", err)
	}
}

// With --auth-tools the token is still redacted in the result.
func TestSessionTokensNeverReachTheModel(t *testing.T) {
	st, _ := gatedStackSel(t, tools.Selection{Toolsets: []string{"account"}, AuthTools: true}, policy.Options{Confirm: policy.ConfirmOff})
	key, _ := st.Sim.Keys()
	res := st.Call(t, "auth_login", map[string]any{"key": key})
	if res.IsError {
		t.Fatalf("auth_login: %s", toolstest.Text(res))
	}
	body, _ := json.Marshal(res.StructuredContent)
	text := toolstest.Text(res) + string(body)
	if !strings.Contains(text, `"token":"[REDACTED]"`) || !strings.Contains(text, "token_expire") {
		t.Errorf("auth_login result: %s", text)
	}
	for _, r := range st.Sim.Requests() {
		if r.Token != "" && strings.Contains(text, r.Token) {
			t.Fatal("a session token reached the model")
		}
	}
}

func callReq(name string, args map[string]any) mcp.CallToolRequest {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	return req
}

// Issue 12 item 4: eq_add_ipmi_user (an IPMI password), the consoles and the backup
// download link ran as plain writes. They are destructive now: without a human's
// confirmation nothing is sent, so no credential reaches the model.
func TestAccessGrantsNeedAHuman(t *testing.T) {
	st, aud := gatedStack(t, policy.Options{})
	st.Sim.ResetRequests()
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"eq_add_ipmi_user", map[string]any{"id": 40101}},
		{"eq_novnc", map[string]any{"id": 40101}},
		{"eq_ovirt_novnc", map[string]any{"id": 40101}},
		{"eq_recreate_novnc", map[string]any{"id": 40101}},
		{"eq_request_backup_link", map[string]any{"id": 40101, "name": "backup-1"}},
	} {
		res := st.Call(t, c.tool, c.args)
		if !res.IsError || !strings.Contains(toolstest.Text(res), "approval") {
			t.Errorf("%s ran without a human: %s", c.tool, toolstest.Text(res))
		}
		if lines := aud.ByTool(c.tool); len(lines) != 1 || lines[0].Class != "destructive" {
			t.Errorf("%s audit: %+v", c.tool, lines)
		}
	}
	for _, r := range st.Sim.Requests() {
		if r.Module == "eq" {
			t.Errorf("%s/%s reached invapi without a confirmation", r.Module, r.Action)
		}
	}
}
