package tools_test

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// policyStack is the toolstest stack behind the policy, as the server runs it.
func policyStack(t *testing.T) *toolstest.Stack {
	t.Helper()
	return toolstest.New(t, toolstest.Options{Full: func(o *stack.Options) {
		o.Policy = policy.Options{PIN: policy.StaticPIN("4321"), Confirm: policy.ConfirmToken}
	}})
}

// Issue 12, item 1: a parameter name that PHP reads as "action", "token" or "pin" would
// replace the real one on invapi. tag/list is classified read, so the policy lets it
// through without a human; the client must refuse it before a byte is sent.
func TestParameterNameSmugglingRefused(t *testing.T) {
	st := policyStack(t)
	if schemas.Load().UndocumentedClass("tag", "list") != schemas.Read {
		t.Fatal("tag/list is no longer classified read: this test needs a read action")
	}
	cases := []struct {
		params map[string]any
		name   string // the offending name, as the error quotes it
	}{
		{map[string]any{" action": "clear", "id": 40102}, `" action"`},
		{map[string]any{"action\x00x": "clear", "id": 40102}, `"action\x00x"`},
		{map[string]any{"action[": "clear"}, `"action["`},
		{map[string]any{"action.": "clear"}, `"action."`},
		{map[string]any{" token": "stolen"}, `" token"`},
		{map[string]any{"token\x00": "stolen"}, `"token\x00"`},
		{map[string]any{" pin": "0000"}, `" pin"`},
		{map[string]any{"pin\x00": "0000"}, `"pin\x00"`},
		{map[string]any{"action[x]": "clear"}, `"action[x]"`},
		{map[string]any{"params": map[string]any{"a": 1}, "params[b]": 2}, `"params[b]"`},
		{map[string]any{"filter": map[string]any{"a]b": 1}}, `"filter[a]b]"`},
	}
	for _, tc := range cases {
		before := len(st.Sim.Requests())
		res := st.Call(t, tools.GenericToolName, map[string]any{"module": "tag", "action": "list", "params": tc.params})
		text := toolstest.Text(res)
		if !res.IsError || !strings.Contains(text, tc.name) || !strings.Contains(text, "not allowed") {
			t.Errorf("params %v: want a refusal naming %s, got error=%v %q", tc.params, tc.name, res.IsError, text)
		}
		for _, r := range st.Sim.Requests()[before:] {
			if r.Module != "auth" {
				t.Errorf("params %v: the simulator received %s/%s (PHP reading %v)", tc.params, r.Module, r.Action, r.Vars)
			}
		}
	}
	// A clean call still goes out, once.
	st.Sim.ResetRequests()
	st.Call(t, tools.GenericToolName, map[string]any{"module": "tag", "action": "list", "params": map[string]any{"id": 40102}})
	if got := st.Sent("tag", "list"); len(got) != 1 || got[0].Vars["id"] != "40102" {
		t.Fatalf("the clean call: %v", got)
	}
}
