package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
)

// Issue 12 item 3: server_job_watch {} listed every job, and server_job_cancel from a
// second session sent eq/abort_reinstall (destructive) with no confirmation and no audit
// line. Jobs now belong to the session that started them.
func TestAnotherSessionCannotSeeOrCancelAJob(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	gate := e.gated()
	defer close(gate)
	args := reinstallArgs()
	args["wait_seconds"] = 0
	info := jobInfo(t, toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args))
	if info.State != workflows.Running {
		t.Fatalf("job: %+v", info)
	}
	if msg, _ := e.human.last.Load().(string); !strings.Contains(msg, "eq/abort_reinstall") {
		t.Errorf("the confirmation does not say that cancelling sends eq/abort_reinstall: %q", msg)
	}

	other := toolstest.Connect(t, e.st.Server, nil)
	list := toolstest.CallWith(t, other, workflows.WatchTool, map[string]any{})
	body, _ := json.Marshal(list.StructuredContent)
	seen := toolstest.Text(list) + string(body)
	if strings.Contains(seen, info.ID) || strings.Contains(seen, "40102") {
		t.Errorf("another session sees the job: %s", seen)
	}
	watch := toolstest.CallWith(t, other, workflows.WatchTool, map[string]any{"job_id": info.ID, "wait_seconds": 0})
	if !watch.IsError || strings.Contains(toolstest.Text(watch), "40102") {
		t.Errorf("another session watches the job: %s", toolstest.Text(watch))
	}
	again := toolstest.CallWith(t, other, workflows.ReinstallTool, reinstallArgs())
	if !again.IsError || strings.Contains(toolstest.Text(again), info.ID) {
		t.Errorf("a second reinstall from another session: %s", toolstest.Text(again))
	}
	cancel := toolstest.CallWith(t, other, workflows.CancelTool, map[string]any{"job_id": info.ID})
	if !cancel.IsError {
		t.Errorf("another session cancelled the job: %s", toolstest.Text(cancel))
	}
	if n := e.sent("eq", "abort_reinstall"); n != 0 {
		t.Fatalf("another session's cancel sent eq/abort_reinstall %d times", n)
	}
	if jobs := e.wf.Jobs(40102); len(jobs) != 1 || jobs[0].State != workflows.Running {
		t.Fatalf("the job after another session's cancel: %+v", jobs)
	}
	lines := e.audit.ByTool(workflows.CancelTool)
	if len(lines) != 1 || lines[0].Decision != string(policy.DecisionDenied) || lines[0].Session == "" {
		t.Fatalf("the refused cancel is not audited: %+v", lines)
	}

	// The owner sees, and cancels under the approval that started the job.
	mine := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{})
	if !strings.Contains(toolstest.Text(mine), info.ID) {
		t.Errorf("the owner does not see its job: %s", toolstest.Text(mine))
	}
	// The handle came back at once (wait_seconds 0): let the job reach the install it
	// follows, so that cancelling it has something to abort.
	for i := 0; i < 400 && e.sent("eq_callback", "check") == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	res := toolstest.CallWith(t, e.st.MCP, workflows.CancelTool, map[string]any{"job_id": info.ID})
	if jobInfo(t, res).State != workflows.Cancelled {
		t.Fatalf("owner's cancel: %s", toolstest.Text(res))
	}
	if n := e.sent("eq", "abort_reinstall"); n != 1 {
		t.Errorf("owner's cancel sent eq/abort_reinstall %d times", n)
	}
	lines = e.audit.ByTool(workflows.CancelTool)
	if len(lines) != 2 || lines[1].Decision != string(policy.DecisionAllowed) || lines[1].Confirm != "job-approval" ||
		lines[1].Module != "eq" || lines[1].Action != "abort_reinstall" || lines[1].Session == "" {
		t.Errorf("the owner's cancel is not audited as sent under the job's approval: %+v", lines)
	}
	if lines[0].Session == lines[1].Session {
		t.Errorf("both cancels audited under one session %q", lines[0].Session)
	}
}

// The reads a workflow makes before its confirmation (the server's facts, the catalog
// lists) are a path to invapi too: they share the scope, the rate limits and the audit.
func TestWorkflowReadsPassThePolicy(t *testing.T) {
	e := newEnvStack(t, mcp.ElicitationResponseActionAccept, func(o *stack.Options) {
		o.Policy.Servers = []int64{40101}
		o.Policy.Limits.Global = policy.Limit{Rate: 0.001, Burst: 2}
	})
	e.st.Sim.ResetRequests()
	res := toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, reinstallArgs()) // 40102: outside --servers
	if !res.IsError || !strings.Contains(toolstest.Text(res), "40102") {
		t.Fatalf("reinstall outside the allowlist: %s", toolstest.Text(res))
	}
	if n := len(e.st.Sim.Requests()); n != 0 {
		t.Errorf("%d invapi requests (eq/show of a server outside the scope) before the refusal", n)
	}
	lines := e.audit.ByTool(workflows.ReinstallTool)
	if len(lines) != 1 || lines[0].Decision != string(policy.DecisionDeniedScope) {
		t.Errorf("audit: %+v", lines)
	}
	order := map[string]any{"location_name": "NL", "preset": "nope", "os_id": 187, "traffic_plan": 25, "deploy_period": "monthly", "root_pass": "Secret-pass1"}
	for range 3 {
		toolstest.CallWith(t, e.st.MCP, workflows.OrderTool, order)
	}
	if n := len(e.st.Sent("presets", "list")); n != 2 {
		t.Errorf("3 order validations against a global burst of 2 listed presets %d times", n)
	}
	counts := map[string]int{}
	for _, l := range e.audit.ByTool(workflows.OrderTool) {
		counts[l.Decision]++
		if _, leaked := l.Args["root_pass"]; leaked {
			t.Error("the audit line carries root_pass")
		}
	}
	if counts[string(policy.DecisionAllowed)] != 2 || counts[string(policy.DecisionRateLimited)] != 1 {
		t.Errorf("order validation audit: %v", counts)
	}
}
