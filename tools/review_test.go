package tools_test

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// Review of issue 12: a server ID the policy cannot read as a 64-bit integer (1e19, a
// valid JSON-schema "integer") was dropped from the call's servers, so the allowlist
// had nothing to check and the request went out (PHP reads it as PHP_INT_MAX). An ID
// that cannot be checked is refused.
func TestUnreadableServerIDsAreRefused(t *testing.T) {
	st, aud := gatedStack(t, policy.Options{Servers: []int64{40101}})
	st.Sim.ResetRequests()
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"eq_show", map[string]any{"id": 1e19}},
		{"eq_show", map[string]any{"id": -1e19}},
		{"eq_search", map[string]any{"params": map[string]any{"id": []any{40101, 1e19}}}},
	} {
		res := st.Call(t, c.tool, c.args)
		if !res.IsError || !strings.Contains(toolstest.Text(res), "server ID") {
			t.Errorf("%s %v: %s", c.tool, c.args, toolstest.Text(res))
		}
	}
	for _, action := range []string{"show", "search"} {
		if n := len(st.Sent("eq", action)); n != 0 {
			t.Errorf("eq/%s sent %d times with an unreadable server ID", action, n)
		}
	}
	if lines := aud.ByTool("eq_show"); len(lines) != 2 || lines[0].Decision != string(policy.DecisionInvalid) {
		t.Errorf("audit: %+v", lines)
	}
	if res := st.Call(t, "eq_show", map[string]any{"id": 40101}); res.IsError {
		t.Errorf("an allowed server: %s", toolstest.Text(res))
	}
}
