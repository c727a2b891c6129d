package workflows_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
)

// Review of issue 12: a workflow's own summary ("REINSTALL server 40101 (hostname, …)")
// put eq/show's hostname into the confirmation as is. The hostname is free text an
// earlier reinstall set: with line breaks it forged lines of the confirmation.
func TestWorkflowSummaryEscapesServerFacts(t *testing.T) {
	forged := "web-01\nWhat this puts on the server or who can reach it:\n- nothing"
	e := newEnv(t, mcp.ElicitationResponseActionDecline, func(o *workflows.Options) {
		o.Facts = func(_ context.Context, id int64) (*policy.ServerFacts, error) {
			return &policy.ServerFacts{ID: id, Hostname: forged, Location: "NL\u202eLD", IPs: []string{"10.0.0.1"}}, nil
		}
	})
	if _, err := e.call(t, t.Context(), workflows.ReinstallTool, reinstallArgs()); err != nil {
		t.Fatal(err)
	}
	msg, _ := e.human.last.Load().(string)
	if !strings.Contains(msg, "web-01") {
		t.Fatalf("the confirmation does not name the server: %q", msg)
	}
	if strings.Contains(msg, forged) || strings.Contains(msg, "\u202e") {
		t.Errorf("the server's facts are shown raw, forging the confirmation:\n%s", msg)
	}
}

// The same summary showed a padded hostname in full, ahead of the arguments: the form
// shortens it (the policy's approval page has it whole).
func TestWorkflowSummaryShortensLongFacts(t *testing.T) {
	padded := "web-01" + strings.Repeat("-", 5000)
	e := newEnv(t, mcp.ElicitationResponseActionDecline, func(o *workflows.Options) {
		o.Facts = func(_ context.Context, id int64) (*policy.ServerFacts, error) {
			return &policy.ServerFacts{ID: id, Hostname: padded, Location: "NL", IPs: []string{"10.0.0.1"}}, nil
		}
	})
	if _, err := e.call(t, t.Context(), workflows.ReinstallTool, reinstallArgs()); err != nil {
		t.Fatal(err)
	}
	msg, _ := e.human.last.Load().(string)
	if strings.Contains(msg, padded) || !strings.Contains(msg, "5006 bytes") {
		t.Errorf("the padded hostname is not shortened (%d bytes of message):\n%.300s", len(msg), msg)
	}
}

// The task path skips mcp-go's validation: invalid arguments of a task-augmented call,
// including a secret, are still explained in words without the secret, and nothing is
// sent; a catalog tool called as a task still needs the human.
func TestTaskPathKeepsTheGate(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionDecline)
	c := toolstest.ConnectStdio(t, e.st.Server, e.human, mcp.ProtocolVersion20251125)
	e.st.Sim.ResetRequests()
	const secret = "Passw0rd@very-secret"
	n := int64(2000)
	for _, call := range []map[string]any{
		{"name": workflows.ReinstallPXETool, "task": map[string]any{}, "arguments": map[string]any{"id": 40101, "os_id": 187, "root_pass": secret}},
		{"name": workflows.ReinstallTool, "task": map[string]any{}, "arguments": map[string]any{"id": 40101, "os_id": 187, "root_pass": secret, "extra": secret}},
		{"name": "eq_traffic_add", "task": map[string]any{}, "arguments": map[string]any{"id": 40101, "new_limit": 100}},
		{"name": workflows.ReinstallTool, "task": map[string]any{}, "arguments": map[string]any{"id": 40101, "os_id": 187, "root_pass": "Passw0rd-ok"}},
	} {
		n++
		resp, err := c.GetTransport().SendRequest(t.Context(), transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(n), Method: "tools/call", Params: call})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(resp)
		out := string(b)
		var created mcp.CreateTaskResult
		if resp.Error == nil && json.Unmarshal(resp.Result, &created) == nil && created.Task.TaskId != "" {
			gr := mcp.GetTaskRequest{}
			gr.Params.TaskId = created.Task.TaskId
			if _, err := c.WaitForTask(t.Context(), gr, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			tr := mcp.TaskResultRequest{}
			tr.Params.TaskId = created.Task.TaskId
			res, err := c.TaskResult(t.Context(), tr)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(res)
			out += string(b)
		}
		if !strings.Contains(out, "nothing was sent") && !strings.Contains(out, "Nothing was sent") {
			t.Errorf("%s: %s", call["name"], out)
		}
		if strings.Contains(out, "very-secret") {
			t.Errorf("%s: the secret is in the answer: %s", call["name"], out)
		}
	}
	for _, r := range e.st.Sim.Requests() {
		if r.Module != "auth" && !(r.Module == "eq" && r.Action == "show") && r.Module != "os" {
			t.Errorf("sent %s/%s through the task path without a human", r.Module, r.Action)
		}
	}
}
