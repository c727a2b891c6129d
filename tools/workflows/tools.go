package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
)

// Tool names.
const (
	OrderTool        = "server_order"
	ReinstallTool    = "server_reinstall"
	ReinstallPXETool = "server_reinstall_pxe"
	WatchTool        = "server_job_watch"
	CancelTool       = "server_job_cancel"
)

// Tools returns the workflow tools. Their inputs are composed from the catalog's own
// parameter schemas (eq/order_instance, eq/create_pxe), so a catalog fix reaches them.
func (w *Workflows) Tools() []server.ServerTool {
	wait := map[string]any{"type": "integer", "minimum": 0, "maximum": 3600,
		"description": "seconds to wait before returning a job handle (default 50); the job goes on"}
	jobID := map[string]any{"type": "string", "pattern": "^job-[0-9a-f]{16}$", "description": "job_id from a workflow tool"}
	// job is one of the three destructive workflow tools: its input is base's parameters
	// (the catalog's), restricted to props, plus wait_seconds.
	job := func(name, title, description, base string, required, props []string, handler server.ToolHandlerFunc) server.ServerTool {
		return server.ServerTool{Tool: mcp.Tool{
			Name: name, Title: title, Description: description,
			RawInputSchema: w.compose(base, required, props, map[string]any{"wait_seconds": wait}),
			Annotations: mcp.ToolAnnotation{Title: title, ReadOnlyHint: mcp.ToBoolPtr(false), DestructiveHint: mcp.ToBoolPtr(true),
				IdempotentHint: mcp.ToBoolPtr(false), OpenWorldHint: mcp.ToBoolPtr(true)},
			Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional},
		}, Handler: handler}
	}
	out := []server.ServerTool{
		job(OrderTool, "Order an instant server",
			"Order an instant server: checks location, preset, OS, software and traffic plan against the live lists (explaining incompatibilities) before ordering, then follows the deploy. One human confirmation; the PIN is supplied by the server.",
			"eq_order_instance", []string{"location_name", "preset", "os_id", "traffic_plan", "deploy_period", "root_pass"},
			[]string{"location_name", "preset", "os_id", "own_os", "soft_id", "traffic_plan", "deploy_period", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size"},
			w.handleOrder),
		job(ReinstallTool, "Reinstall a server",
			"Reinstall a server's OS through order_instance (location filled in from eq/show), refusing while another install runs, then follows the 5 install stages. Wipes the disks. One human confirmation; the PIN is supplied by the server.",
			"eq_order_instance", []string{"id", "os_id", "root_pass"},
			[]string{"id", "os_id", "own_os", "soft_id", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size"},
			w.handleReinstall),
		job(ReinstallPXETool, "PXE reinstall",
			"Full PXE reinstall: eq/reinstall, create_pxe, boot from PXE, reboot, follow the 5 stages, then always boot from disk and clear the PXE config (even on failure); abort_reinstall on cancel. Wipes the disks. One human confirmation.",
			"eq_create_pxe", []string{"id", "os_id", "root_pass"},
			[]string{"id", "os_id", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size", "uefi", "jenkins_task"},
			w.handleReinstallPXE),
		{Tool: mcp.Tool{
			Name: WatchTool, Title: "Watch a workflow job",
			Description: "Follow a workflow job this session started (after a timed-out call) until it ends or the wait passes; without job_id lists this session's recent jobs, optionally of one server.",
			RawInputSchema: mustJSON(map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"job_id": jobID, "server_id": map[string]any{"type": "integer", "description": "list the jobs of this server"}, "wait_seconds": wait}}),
			Annotations: mcp.ToolAnnotation{Title: "Watch a workflow job", ReadOnlyHint: mcp.ToBoolPtr(true), DestructiveHint: mcp.ToBoolPtr(false),
				IdempotentHint: mcp.ToBoolPtr(true), OpenWorldHint: mcp.ToBoolPtr(false)},
		}, Handler: w.handleWatch},
		{Tool: mcp.Tool{
			Name: CancelTool, Title: "Cancel a workflow job",
			Description: "Stop a running workflow job this session started: stops watching, aborts the reinstall where invapi allows (eq/abort_reinstall, stated in the job's confirmation) and runs the PXE clean-up.",
			RawInputSchema: mustJSON(map[string]any{"type": "object", "additionalProperties": false, "required": []string{"job_id"},
				"properties": map[string]any{"job_id": jobID}}),
			Annotations: mcp.ToolAnnotation{Title: "Cancel a workflow job", ReadOnlyHint: mcp.ToBoolPtr(false), DestructiveHint: mcp.ToBoolPtr(true),
				IdempotentHint: mcp.ToBoolPtr(true), OpenWorldHint: mcp.ToBoolPtr(true)},
		}, Handler: w.handleCancel},
	}
	for i := range out {
		out[i].Handler = w.entry(out[i].Tool.RawInputSchema, out[i].Handler)
	}
	return out
}

// compose builds a tool schema from a catalog tool's properties.
func (w *Workflows) compose(tool string, required, props []string, extra map[string]any) json.RawMessage {
	a, ok := w.o.Catalog.Tool(tool)
	if !ok {
		panic("workflows: catalog has no " + tool)
	}
	var src struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(a.InputSchema, &src); err != nil {
		panic(err)
	}
	out := map[string]any{}
	for _, p := range props {
		s, ok := src.Properties[p]
		if !ok {
			panic(fmt.Sprintf("workflows: %s has no %s", tool, p))
		}
		out[p] = s
	}
	for k, v := range extra {
		out[k] = v
	}
	return mustJSON(map[string]any{"type": "object", "additionalProperties": false, "required": required, "properties": out})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// pick copies the named arguments that are present.
func pick(args map[string]any, names ...string) map[string]any {
	out := map[string]any{}
	for _, n := range names {
		if v, ok := args[n]; ok && v != nil {
			out[n] = v
		}
	}
	return out
}

func intArg(args map[string]any, name string) int64 { return intOf(args[name]) }

func (w *Workflows) handleWatch(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	id, _ := args["job_id"].(string)
	if id == "" {
		// Only this session's jobs: another session's job is not this one's to see.
		jobs, others := w.jobs.listFor(intArg(args, "server_id"), tools.SessionID(ctx), false)
		var b strings.Builder
		if len(jobs) == 0 {
			b.WriteString("No workflow jobs of this session in this process. events_list (kind workflow) shows jobs of earlier runs.")
		}
		for _, j := range jobs {
			fmt.Fprintf(&b, "%s %s server %d: %s (stage %d/%d, %s)\n", j.ID, j.Tool, j.ServerID, j.State, j.Stage, j.Stages, j.Message)
		}
		if others > 0 {
			fmt.Fprintf(&b, "\n%d job(s) of other MCP sessions are not shown: only the session that started a job can watch or cancel it.", others)
		}
		if jobs == nil {
			jobs = []JobInfo{}
		}
		return mcp.NewToolResultStructured(map[string]any{"jobs": jobs, "other_sessions": others}, strings.TrimSpace(b.String())), nil
	}
	j := w.jobs.get(id)
	if j == nil && w.o.Operator {
		// The operator at the terminal takes over a job no process follows any more.
		claimed, text := w.claimForWatch(ctx, id)
		if claimed == nil {
			return mcp.NewToolResultText(text), nil
		}
		j = claimed
	}
	if j == nil || !w.mayFollow(ctx, j) {
		return mcp.NewToolResultError(fmt.Sprintf("No job %s of this MCP session in this process (a job started in another session or an earlier run is not shown: events_list shows recorded progress). server_job_watch without job_id lists this session's jobs.", id)), nil
	}
	// A watcher going away only stops watching: the job goes on.
	return w.follow(ctx, req, j, req.Params.Task != nil, false, waitFor(req, w.o.DefaultWait))
}

func (w *Workflows) handleCancel(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id, _ := req.GetArguments()["job_id"].(string)
	j := w.jobs.get(id)
	if j == nil || !w.mayFollow(ctx, j) {
		if j != nil {
			// Audited: someone tried to stop another session's job. Nothing is sent.
			w.o.Policy.Note(ctx, w.cancelCall(j), policy.DecisionDenied, "server_job_cancel from another MCP session: the job belongs to the session that started it", "")
		}
		return mcp.NewToolResultError(fmt.Sprintf("No job %s of this MCP session in this process; nothing was cancelled. server_job_watch lists this session's jobs.", id)), nil
	}
	if info := j.snapshot(); info.State != Running {
		w.o.Policy.Note(ctx, w.cancelCall(j), policy.DecisionDenied, "the job already ended: "+info.State, "")
		return mcp.NewToolResultStructured(info, fmt.Sprintf("Job %s already ended: %s.", id, info.State)), nil
	}
	w.noteCancel(ctx, j, "server_job_cancel")
	j.cancel()
	select {
	case <-j.done:
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	return finalResult(j.snapshot()), nil
}

// mayFollow: a job belongs to the MCP session that started it; a job taken over from a
// process that stopped belongs to no session, and only the operator at the terminal
// (Options.Operator) may watch it or stop following it.
func (w *Workflows) mayFollow(ctx context.Context, j *job) bool {
	j.mu.Lock()
	adopted := j.adopted
	j.mu.Unlock()
	if adopted {
		return w.o.Operator
	}
	return j.owner() == tools.SessionID(ctx)
}

// cancelCall is the policy's view of cancelling j: the action the cancel sends (none
// for a job whose cancel only stops following).
func (w *Workflows) cancelCall(j *job) *policy.Call {
	info := j.snapshot()
	c := &policy.Call{Tool: CancelTool, Class: schemas.Write, Args: map[string]any{"job_id": info.ID, "job_tool": info.Tool}}
	if info.ServerID != 0 {
		c.ServerIDs = []int64{info.ServerID}
	}
	if a, ok := w.o.Catalog.Tool(j.onCancel); ok {
		c.Module, c.Action, c.Class = a.Module, a.Action, a.Class
	}
	return c
}

// noteCancel audits a cancel by the job's own session. A cancel that sends a destructive
// action (eq/abort_reinstall) needs no new confirmation: the confirmation that started
// the job stated it, and holds for this session only.
func (w *Workflows) noteCancel(ctx context.Context, j *job, via string) {
	call := w.cancelCall(j)
	reason, how := via+": stops following; nothing is sent", policy.Channel("")
	if call.Action != "" {
		reason = fmt.Sprintf("%s: sends %s/%s under the approval that started the job (its confirmation text states it)", via, call.Module, call.Action)
		how = policy.ViaJobApproval
	}
	w.o.Policy.Note(ctx, call, policy.DecisionAllowed, reason, how)
}

// policyCall is the policy's view of a workflow: one destructive call on one server
// (none for a new order), needing the PIN, described by its first request.
func (w *Workflows) policyCall(tool string, serverID int64, args map[string]any, first string) *policy.Call {
	a, _ := w.o.Catalog.Tool(first)
	var ids []int64
	if serverID != 0 {
		ids = []int64{serverID}
	}
	return &policy.Call{Tool: tool, Module: a.Module, Action: a.Action, Class: schemas.Destructive, NeedsPIN: true, ServerIDs: ids, Args: args}
}
