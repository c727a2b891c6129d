package workflows_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// answer is the human at the client: accept, decline or cancel.
type answer struct {
	action mcp.ElicitationResponseAction
	asked  atomic.Int32
	last   atomic.Value
}

func (a *answer) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.asked.Add(1)
	a.last.Store(req.Params.Message)
	res := &mcp.ElicitationResult{}
	res.Action = a.action
	if a.action == mcp.ElicitationResponseActionAccept {
		res.Content = map[string]any{"confirm": true}
	}
	return res, nil
}

type env struct {
	st    *toolstest.Stack
	wf    *workflows.Workflows
	human *answer
	// sleep runs instead of waiting between progress checks; by default it advances the
	// simulator's clock, so a 20-minute install takes milliseconds.
	sleep func(ctx context.Context, d time.Duration) error
	mu    sync.Mutex
	prog  []mcp.JSONRPCNotification
	audit *toolstest.Audit
}

type envOption func(*workflows.Options)

func newEnv(t *testing.T, action mcp.ElicitationResponseAction, opts ...envOption) *env {
	t.Helper()
	return newEnvStack(t, action, nil, opts...)
}

// newEnvStack is newEnv with the stack's options adjusted (the policy's allowlist and
// limits, the receiver).
func newEnvStack(t *testing.T, action mcp.ElicitationResponseAction, sopt func(*stack.Options), opts ...envOption) *env {
	t.Helper()
	e := &env{human: &answer{action: action}, audit: &toolstest.Audit{}}
	var st *toolstest.Stack
	e.sleep = func(ctx context.Context, d time.Duration) error {
		st.Sim.Advance(d)
		return ctx.Err()
	}
	st = toolstest.New(t, toolstest.Options{
		// The workflow tools are loaded with the servers toolset, as --toolsets does.
		Selection:   tools.Selection{Toolsets: []string{"servers", "workflows"}},
		Elicitation: e.human,
		Protocol:    mcp.ProtocolVersion20251125,
		SimOptions:  sim.Options{},
		Full: func(so *stack.Options) {
			so.Policy.Audit = e.audit
			if sopt != nil {
				sopt(so)
			}
			so.ConfigureWorkflows = func(wo *workflows.Options) {
				wo.Sleep = func(ctx context.Context, d time.Duration) error { return e.sleep(ctx, d) }
				wo.PollInitial, wo.PollMax, wo.DefaultWait = 30*time.Second, 2*time.Minute, 30*time.Second
				for _, opt := range opts {
					opt(wo)
				}
			}
		},
	})
	e.wf = st.Full.Workflows
	e.st = st
	st.MCP.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			e.mu.Lock()
			e.prog = append(e.prog, n)
			e.mu.Unlock()
		}
	})
	return e
}

func (e *env) call(t *testing.T, ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-" + name}
	return e.st.MCP.CallTool(ctx, req)
}

func (e *env) sent(module, action string) int { return len(e.st.Sent(module, action)) }

func (e *env) progress() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, n := range e.prog {
		out = append(out, n.Params.AdditionalFields["message"].(string))
	}
	return out
}

func reinstallArgs() map[string]any {
	return map[string]any{"id": 40102, "os_id": 187, "root_pass": "Secret-pass1"}
}

func TestReinstallSucceedsWithStagesInOrder(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	res, err := e.call(t, t.Context(), workflows.ReinstallTool, reinstallArgs())
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("reinstall failed: %s", toolstest.Text(res))
	}
	if e.human.asked.Load() != 1 {
		t.Errorf("asked the human %d times, want once for the whole workflow", e.human.asked.Load())
	}
	msg, _ := e.human.last.Load().(string)
	for _, want := range []string{"40102", "NL", "erased"} {
		if !strings.Contains(msg, want) {
			t.Errorf("confirmation %q does not mention %q", msg, want)
		}
	}
	orders := e.st.Sent("eq", "order_instance")
	if len(orders) != 1 || orders[0].Form.Get("location_name") != "NL" || orders[0].Form.Get("pin") != e.st.Sim.PIN() {
		t.Fatalf("order_instance requests: %v", orders)
	}
	// Stage progress arrives in order. The client hands notifications to its handler on
	// its own goroutine, so the last ones may land just after the result: wait for them.
	var stages []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stages = stages[:0]
		for _, m := range e.progress() {
			if i := strings.Index(m, "/5)"); i > 0 {
				stages = append(stages, m[i-1:i])
			}
		}
		if strings.Join(stages, "") == "12345" || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(stages, "") != "12345" {
		t.Errorf("stages observed %v (progress %q)", stages, e.progress())
	}
	if st, _ := e.st.Sim.Server(40102); st.Installing || st.Installs != 1 {
		t.Errorf("server state after reinstall: %+v", st)
	}
	if strings.Contains(toolstest.Text(res), "Secret-pass1") {
		t.Error("the root password is echoed in the result")
	}
}

func TestDeclineSendsNothing(t *testing.T) {
	for _, action := range []mcp.ElicitationResponseAction{mcp.ElicitationResponseActionDecline, mcp.ElicitationResponseActionCancel} {
		e := newEnv(t, action)
		e.st.Sim.ResetRequests()
		res, err := e.call(t, t.Context(), workflows.ReinstallPXETool, reinstallArgs())
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError {
			t.Errorf("%s: workflow ran: %s", action, toolstest.Text(res))
		}
		for _, r := range e.st.Sim.Requests() {
			if r.Module == "eq" && r.Action != "show" {
				t.Errorf("%s: sent eq/%s", action, r.Action)
			}
			if r.Form.Get("pin") != "" {
				t.Errorf("%s: a request carried the PIN", action)
			}
		}
	}
}

func TestPXEReinstallRunsEveryStepAndCleansUp(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	res, err := e.call(t, t.Context(), workflows.ReinstallPXETool, map[string]any{"id": 40101, "os_id": 187, "root_pass": "Secret-pass1", "hostname": "web-nl-01.example"})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("pxe reinstall failed: %s", toolstest.Text(res))
	}
	var order []string
	for _, r := range e.st.Sim.Requests() {
		if r.Module == "eq" && r.Action != "show" || r.Module == "eq_callback" && len(order) > 0 && order[len(order)-1] != "eq_callback/check" {
			order = append(order, r.Module+"/"+r.Action+mediaOf(r))
		}
	}
	want := "eq/reinstall eq/create_pxe eq/boot_dev:pxe eq/reboot eq_callback/check eq/boot_dev:disk eq/clear_pxe"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	st, _ := e.st.Sim.Server(40101)
	if st.PXE || st.BootDev != "disk" || st.Installs != 1 {
		t.Errorf("server left with PXE=%v boot_dev=%s installs=%d", st.PXE, st.BootDev, st.Installs)
	}
	// The clean-up works: a later reboot does not reinstall the server.
	if r := toolstest.CallWith(t, e.st.MCP, "eq_status", map[string]any{"id": 40101}); r.IsError {
		t.Fatal(toolstest.Text(r))
	}
}

func mediaOf(r sim.Request) string {
	if m := r.Form.Get("media"); m != "" {
		return ":" + m
	}
	return ""
}

func TestPXEFailureInTheMiddleStillCleansUp(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	e.st.Sim.Inject(sim.Fault{Module: "eq", Action: "reboot", Kind: sim.Fault5xx})
	res, err := e.call(t, t.Context(), workflows.ReinstallPXETool, map[string]any{"id": 40101, "os_id": 187, "root_pass": "Secret-pass1"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(toolstest.Text(res), "eq/reboot") {
		t.Fatalf("a failed reboot should fail the workflow: %s", toolstest.Text(res))
	}
	if e.sent("eq", "reboot") != 1 {
		t.Errorf("the failed reboot was retried: %d", e.sent("eq", "reboot"))
	}
	disk := 0
	for _, r := range e.st.Sent("eq", "boot_dev") {
		if r.Form.Get("media") == "disk" {
			disk++
		}
	}
	if disk != 1 || e.sent("eq", "clear_pxe") != 1 {
		t.Errorf("clean-up: boot_dev disk %d, clear_pxe %d; want 1 and 1", disk, e.sent("eq", "clear_pxe"))
	}
	if st, _ := e.st.Sim.Server(40101); st.PXE || st.BootDev != "disk" {
		t.Errorf("server left with PXE=%v boot_dev=%s", st.PXE, st.BootDev)
	}
}

func TestCancelAbortsAndCleansUp(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	// Over stdio, as a desktop client runs it: cancelling sends notifications/cancelled.
	e.st.MCP = toolstest.ConnectStdio(t, e.st.Server, e.human, mcp.ProtocolVersion20251125)
	ctx, cancel := context.WithCancel(t.Context())
	polls := atomic.Int32{}
	e.sleep = func(sctx context.Context, d time.Duration) error {
		if polls.Add(1) < 2 {
			e.st.Sim.Advance(d)
			return nil
		}
		cancel() // the user cancels the call while the install runs
		<-sctx.Done()
		return sctx.Err()
	}
	_, err := e.call(t, ctx, workflows.ReinstallPXETool, map[string]any{"id": 40101, "os_id": 187, "root_pass": "Secret-pass1"})
	if err == nil {
		t.Log("the call returned a result after cancellation")
	}
	deadline := time.Now().Add(5 * time.Second)
	// The clean-up sends clear_pxe, then the job ends: wait for both (it flaked once, read
	// between the two).
	for (e.sent("eq", "clear_pxe") == 0 || e.wf.Jobs(40101)[0].State == workflows.Running) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.sent("eq", "abort_reinstall") != 1 || e.sent("eq", "clear_pxe") != 1 {
		t.Errorf("after cancel: abort_reinstall %d, clear_pxe %d; want 1 and 1", e.sent("eq", "abort_reinstall"), e.sent("eq", "clear_pxe"))
	}
	jobs := e.wf.Jobs(40101)
	if len(jobs) != 1 || jobs[0].State != workflows.Cancelled {
		t.Errorf("jobs: %+v", jobs)
	}
	if lines := e.audit.ByTool(workflows.CancelTool); len(lines) != 1 || lines[0].Decision != string(policy.DecisionAllowed) || lines[0].Action != "abort_reinstall" {
		t.Errorf("the cancel was not audited: %+v", lines)
	}
}

func TestTimeoutThenResume(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	gate := e.gated()
	args := reinstallArgs()
	args["wait_seconds"] = 0
	res, err := e.call(t, t.Context(), workflows.ReinstallTool, args)
	if err != nil {
		t.Fatal(err)
	}
	sc := jobInfo(t, res)
	if res.IsError || sc.State != workflows.Running || !strings.Contains(toolstest.Text(res), "server_job_watch") {
		t.Fatalf("expected a handle to a running job: %s", toolstest.Text(res))
	}
	// Nothing more is sent while nobody watches, and a second reinstall is refused.
	again := toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, reinstallArgs())
	if !again.IsError || !strings.Contains(toolstest.Text(again), sc.ID) {
		t.Errorf("second reinstall while one runs: %s", toolstest.Text(again))
	}
	close(gate)
	watch := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": sc.ID, "wait_seconds": 30})
	if watch.IsError || !strings.Contains(toolstest.Text(watch), "finished") {
		t.Fatalf("resume: %s", toolstest.Text(watch))
	}
	if e.sent("eq", "order_instance") != 1 {
		t.Errorf("order_instance sent %d times", e.sent("eq", "order_instance"))
	}
}

func TestOrderValidatesBeforeOrdering(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	base := map[string]any{"location_name": "NL", "preset": "108", "os_id": 187, "traffic_plan": 25, "deploy_period": "monthly", "root_pass": "Secret-pass1"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{with("preset", "no-such-preset"), "not offered"},
		{with("os_id", 99999), "OS 99999"},
		{with("soft_id", 49), "not compatible"},
		{with("traffic_plan", 424242), "traffic plan"},
	} {
		res := toolstest.CallWith(t, e.st.MCP, workflows.OrderTool, c.args)
		if !res.IsError || !strings.Contains(toolstest.Text(res), c.want) {
			t.Errorf("%v: %s", c.args, toolstest.Text(res))
		}
	}
	if e.sent("eq", "order_instance") != 0 || e.human.asked.Load() != 0 {
		t.Fatalf("an invalid order reached invapi or the human")
	}
	res, err := e.call(t, t.Context(), workflows.OrderTool, base)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("order: %s", toolstest.Text(res))
	}
	if e.sent("eq", "order_instance") != 1 || e.sent("eq", "update_servers") < 1 {
		t.Errorf("order_instance %d, update_servers %d", e.sent("eq", "order_instance"), e.sent("eq", "update_servers"))
	}
	info := jobInfo(t, res)
	if info.Result["id"] == nil {
		t.Errorf("the new server's id is not reported: %+v", info.Result)
	}
}

// jobInfo decodes a workflow result's structured content as the client received it.
func jobInfo(t *testing.T, res *mcp.CallToolResult) workflows.JobInfo {
	t.Helper()
	var info workflows.JobInfo
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	return info
}

// gated makes the install wait between checks until the test opens the gate.
func (e *env) gated() chan struct{} {
	gate := make(chan struct{})
	e.sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		e.st.Sim.Advance(d)
		return nil
	}
	return gate
}

func TestAWatcherGoingAwayDoesNotAbort(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	gate := e.gated()
	args := reinstallArgs()
	args["wait_seconds"] = 0
	// Over stdio, which forwards the watcher's cancellation (notifications/cancelled); the
	// job is the stdio session's, so it may watch it.
	stdio := toolstest.ConnectStdio(t, e.st.Server, e.human, mcp.ProtocolVersion20251125)
	info := jobInfo(t, toolstest.CallWith(t, stdio, workflows.ReinstallTool, args))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = workflows.WatchTool, map[string]any{"job_id": info.ID, "wait_seconds": 60}
	if _, err := stdio.CallTool(ctx, req); err == nil {
		t.Fatal("the watch should have timed out on the client side")
	}
	time.Sleep(100 * time.Millisecond)
	if e.sent("eq", "abort_reinstall") != 0 {
		t.Fatal("a watcher's timeout aborted the reinstall")
	}
	close(gate)
	res := toolstest.CallWith(t, stdio, workflows.WatchTool, map[string]any{"job_id": info.ID, "wait_seconds": 30})
	if jobInfo(t, res).State != workflows.Done {
		t.Errorf("job after the watcher left: %s", toolstest.Text(res))
	}
}

func TestParallelConfirmationsReinstallOnce(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	gate := e.gated()
	defer close(gate)
	args := reinstallArgs()
	args["wait_seconds"] = 0
	var wg sync.WaitGroup
	results := make(chan *mcp.CallToolResult, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args)
		}()
	}
	wg.Wait()
	close(results)
	// Each of the others is refused: the server already has a running job or one awaiting
	// its confirmation, or the session already has the most confirmations waiting.
	refused := 0
	var texts []string
	for r := range results {
		text := toolstest.Text(r)
		texts = append(texts, text)
		if r.IsError && (strings.Contains(text, "already has a running") || strings.Contains(text, "awaiting a human's confirmation") || strings.Contains(text, "already waiting for the user")) {
			refused++
		}
	}
	// The accepted call returned a handle at once; its job sends the order right after.
	for i := 0; i < 400 && e.sent("eq_callback", "check") == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if refused != 3 || e.sent("eq", "order_instance") != 1 {
		t.Logf("results: %q", texts)
		t.Errorf("4 parallel reinstalls: %d refused, %d order_instance sent; want 3 and 1", refused, e.sent("eq", "order_instance"))
	}
}

func TestShutdownCleansUpAPXEReinstall(t *testing.T) {
	e := newEnv(t, mcp.ElicitationResponseActionAccept)
	_ = e.gated() // never opened: the install is in progress at shutdown
	args := map[string]any{"id": 40101, "os_id": 187, "root_pass": "Secret-pass1", "wait_seconds": 0}
	if res := toolstest.CallWith(t, e.st.MCP, workflows.ReinstallPXETool, args); res.IsError {
		t.Fatal(toolstest.Text(res))
	}
	for i := 0; i < 400 && e.sent("eq_callback", "check") == 0; i++ {
		time.Sleep(5 * time.Millisecond) // the install is under way
	}
	if st, _ := e.st.Sim.Server(40101); !st.PXE {
		t.Fatal("the PXE config should be set while the install runs")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	e.wf.Shutdown(ctx)
	st, _ := e.st.Sim.Server(40101)
	if st.PXE || st.BootDev != "disk" || e.sent("eq", "abort_reinstall") != 1 {
		t.Errorf("after shutdown: PXE=%v boot_dev=%s abort_reinstall=%d", st.PXE, st.BootDev, e.sent("eq", "abort_reinstall"))
	}
}

func TestTaskModeCompletesAndCancels(t *testing.T) {
	for _, cancelIt := range []bool{false, true} {
		e := newEnv(t, mcp.ElicitationResponseActionAccept)
		gate := e.gated()
		c := toolstest.ConnectStdio(t, e.st.Server, e.human, mcp.ProtocolVersion20251125)
		// A task-augmented tools/call answers CreateTaskResult, which the Go client's
		// CallTool does not parse: send it through the client's transport.
		resp, err := c.GetTransport().SendRequest(t.Context(), transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(int64(1000)), Method: "tools/call",
			Params: map[string]any{"name": workflows.ReinstallPXETool, "task": map[string]any{},
				"arguments": map[string]any{"id": 40101, "os_id": 187, "root_pass": "Secret-pass1"}},
		})
		if err != nil || resp.Error != nil {
			t.Fatalf("task call: %v %+v", err, resp)
		}
		var created mcp.CreateTaskResult
		if err := json.Unmarshal(resp.Result, &created); err != nil || created.Task.TaskId == "" {
			t.Fatalf("CreateTaskResult %s: %v", resp.Result, err)
		}
		id := created.Task.TaskId
		// The job starts once the human confirmed inside the task; wait until the install
		// is under way.
		for i := 0; i < 1000 && e.sent("eq_callback", "check") == 0; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if cancelIt {
			cr := mcp.CancelTaskRequest{}
			cr.Params.TaskId = id
			if _, err := c.CancelTask(t.Context(), cr); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for e.sent("eq", "clear_pxe") == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if e.sent("eq", "abort_reinstall") != 1 || e.sent("eq", "clear_pxe") != 1 {
				t.Errorf("tasks/cancel: abort_reinstall %d, clear_pxe %d", e.sent("eq", "abort_reinstall"), e.sent("eq", "clear_pxe"))
			}
			if lines := e.audit.ByTool(workflows.CancelTool); len(lines) != 1 || lines[0].Decision != string(policy.DecisionAllowed) || !strings.Contains(lines[0].Reason, "tasks/cancel") {
				t.Errorf("tasks/cancel not audited: %+v", lines)
			}
			close(gate)
			continue
		}
		close(gate)
		gr := mcp.GetTaskRequest{}
		gr.Params.TaskId = id
		done, err := c.WaitForTask(t.Context(), gr, 10*time.Millisecond)
		if err != nil || done.Status != mcp.TaskStatusCompleted {
			t.Fatalf("task: %+v %v", done, err)
		}
		tr := mcp.TaskResultRequest{}
		tr.Params.TaskId = id
		if out, err := c.TaskResult(t.Context(), tr); err != nil || out.IsError {
			t.Fatalf("task result: %+v %v", out, err)
		}
		if st, _ := e.st.Sim.Server(40101); st.Installs != 1 || st.PXE {
			t.Errorf("server after the task: %+v", st)
		}
	}
}

// TestInstallCallbackCompletesTheJob: with a public URL, the reinstall carries a
// post_install_callback; when the freshly installed server calls it, the job checks at
// once instead of waiting for its next poll (an hour away here), and invapi confirms.
func TestInstallCallbackCompletesTheJob(t *testing.T) {
	var rcv *webhook.Receiver
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rcv.Handler().ServeHTTP(w, r) }))
	defer hooks.Close()
	// The stack wires the receiver's callbacks into the jobs and wakes them on arrival.
	e := newEnvStack(t, mcp.ElicitationResponseActionAccept, func(o *stack.Options) {
		o.Receiver = webhook.Config{PublicURL: hooks.URL}
	}, func(o *workflows.Options) {
		o.Sleep = nil // real waiting: only the callback can cut the hour short
		o.PollInitial, o.PollMax = time.Hour, time.Hour
	})
	rcv = e.st.Full.Receiver
	args := reinstallArgs()
	args["wait_seconds"] = 0
	info := jobInfo(t, toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args))
	for i := 0; i < 400 && e.sent("eq_callback", "check") == 0; i++ {
		time.Sleep(5 * time.Millisecond) // the job orders, checks once, then sleeps an hour
	}
	orders := e.st.Sent("eq", "order_instance")
	if len(orders) != 1 || !strings.HasPrefix(orders[0].Form.Get("post_install_callback"), hooks.URL+"/cb/install/") {
		t.Fatalf("order_instance did not carry the callback URL: %v", orders)
	}
	e.st.Sim.Advance(25 * time.Minute) // the install finishes; the fresh server calls back
	res := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": info.ID, "wait_seconds": 10})
	if got := jobInfo(t, res); got.State != workflows.Done {
		t.Fatalf("after the callback: %s", toolstest.Text(res))
	}
	if strings.Contains(toolstest.Text(res), "/cb/install/") {
		t.Error("the callback secret reached the model")
	}
}
