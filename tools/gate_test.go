package tools_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// gatedStack is the stack as cmd/hostkey-mcp assembles it (tools/stack): middleware,
// guarded client, allowlist and the gate for resources and completions.
func gatedStack(t *testing.T, o policy.Options) (*toolstest.Stack, *toolstest.Audit) {
	t.Helper()
	return gatedStackSel(t, tools.Selection{}, o)
}

func gatedStackSel(t *testing.T, sel tools.Selection, o policy.Options) (*toolstest.Stack, *toolstest.Audit) {
	t.Helper()
	aud := &toolstest.Audit{}
	st := toolstest.New(t, toolstest.Options{Selection: sel, Full: func(so *stack.Options) {
		if o.PIN == nil {
			o.PIN = so.Policy.PIN // the simulator's account PIN, as HOSTKEY_PIN would be
		}
		o.Audit = aud
		so.Policy = o
	}})
	return st, aud
}

// Issue 12 item 8: 100 parallel resources/read of hostkey://servers/{id} sent 100 invapi
// requests against a 5/s global limit, none audited.
func TestResourceReadsShareLimitsAndAudit(t *testing.T) {
	st, aud := gatedStack(t, policy.Options{Limits: policy.Limits{Global: policy.Limit{Rate: 0.001, Burst: 5}}})
	st.Sim.ResetRequests()
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refused []string
	for range n {
		wg.Go(func() {
			req := mcp.ReadResourceRequest{}
			req.Params.URI = tools.ServerURI(40101)
			if _, err := st.MCP.ReadResource(t.Context(), req); err != nil {
				mu.Lock()
				refused = append(refused, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := len(st.Sent("eq", "show")); got > 5 {
		t.Errorf("%d parallel reads sent %d eq/show requests through a global burst of 5", n, got)
	}
	if len(refused) < n-5 {
		t.Errorf("only %d of %d reads were refused", len(refused), n)
	}
	for _, r := range refused {
		if !strings.Contains(r, "Retry after") && !strings.Contains(strings.ToLower(r), "limit") {
			t.Errorf("refusal does not say which limit: %q", r)
			break
		}
	}
	lines := aud.ByTool("resources/read")
	if len(lines) != n {
		t.Fatalf("%d audit lines for %d resource reads", len(lines), n)
	}
	counts := map[string]int{}
	for _, e := range lines {
		counts[e.Decision]++
		if e.Module != "eq" || e.Action != "show" || len(e.ServerIDs) != 1 || e.ServerIDs[0] != 40101 {
			t.Errorf("audit line does not name eq/show of 40101: %+v", e)
		}
	}
	if counts[string(policy.DecisionAllowed)] != len(st.Sent("eq", "show")) || counts[string(policy.DecisionRateLimited)] != len(refused) {
		t.Errorf("audit decisions %v; sent %d, refused %d", counts, len(st.Sent("eq", "show")), len(refused))
	}
}

func TestResourceOutsideTheAllowlistIsRefused(t *testing.T) {
	st, aud := gatedStack(t, policy.Options{Servers: []int64{40101}})
	st.Sim.ResetRequests()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = tools.ServerURI(40102)
	_, err := st.MCP.ReadResource(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "40102") {
		t.Fatalf("a server outside --servers was read: %v", err)
	}
	if n := len(st.Sent("eq", "show")); n != 0 {
		t.Errorf("%d eq/show requests for a refused server", n)
	}
	if lines := aud.ByTool("resources/read"); len(lines) != 1 || lines[0].Decision != string(policy.DecisionDeniedScope) {
		t.Errorf("audit: %+v", lines)
	}
	req.Params.URI = tools.ServerURI(40101)
	if _, err := st.MCP.ReadResource(t.Context(), req); err != nil {
		t.Errorf("an allowed server: %v", err)
	}
}

// Completions offer only the servers the allowlist admits, and are audited.
func TestCompletionsFollowTheScope(t *testing.T) {
	st, aud := gatedStack(t, policy.Options{Servers: []int64{40101}})
	req := mcp.CompleteRequest{}
	req.Params.Ref = mcp.ResourceReference{Type: "ref/resource", URI: "hostkey://servers/{id}"}
	req.Params.Argument.Name, req.Params.Argument.Value = "id", "40"
	res, err := st.MCP.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Completion.Values) != 1 || res.Completion.Values[0] != "40101" {
		t.Errorf("completion offers %v; want only 40101", res.Completion.Values)
	}
	if len(aud.ByTool("completion/complete")) != 1 {
		t.Errorf("completion not audited")
	}
}

// The prompts only teach; they never reach invapi.
func TestPromptsSendNothing(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{})
	st.Sim.ResetRequests()
	req := mcp.GetPromptRequest{}
	req.Params.Name, req.Params.Arguments = "reinstall_server", map[string]string{"server_id": "40101"}
	if _, err := st.MCP.GetPrompt(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(st.Sim.Requests()); n != 0 {
		t.Errorf("a prompt sent %d invapi requests", n)
	}
}
