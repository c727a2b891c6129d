// Package stack assembles the whole hostkey-mcp server from typed options: catalog,
// invapi client (real or the simulator's), policy engine, webhook receiver, workflows,
// the events tool, resources and notifier, the MCP server with its middleware in order,
// and the server instructions. cmd calls it after parsing flags; tests that need the full
// stack call it through toolstest, so the wiring exists once.
// It may import every package of the module but cmd; no package of tools imports it
// (only toolstest, which is for tests).
package stack

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/events"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// Options are the typed settings of a stack. The stack fills what it wires itself (the
// policy's Describe/Facts/Catalog, the receiver's ServerIPs, the workflows' client,
// checker, policy, callbacks, events and store); the Configure hooks run last.
type Options struct {
	Catalog *schemas.Catalog // default schemas.Load()
	Client  *invapi.Client   // required: invapi or the simulator behind it
	Version string
	Logger  *zap.Logger

	Policy   policy.Options
	Receiver webhook.Config // Store nil: events live in this process's memory
	// Workflows tunes the jobs (polling, waits, owner, operator); the stack sets the rest.
	Workflows workflows.Options

	Selection tools.Selection
	Dynamic   bool
	// Ephemeral and Sandbox are said in the instructions; SandboxInstall is how long a
	// simulated install takes (0: the real invapi).
	Ephemeral      bool
	SandboxInstall time.Duration

	// ConfigureWorkflows and ConfigureTools edit the assembled options last (tests).
	ConfigureWorkflows func(*workflows.Options)
	ConfigureTools     func(*tools.Options)
}

// Stack is an assembled server. Close stops it in the reverse order of assembly.
type Stack struct {
	Server    *tools.Server
	Policy    *policy.Engine
	Receiver  *webhook.Receiver
	Workflows *workflows.Workflows
	// ToolsOptions is what Server was built from (tools --sizes varies the selection).
	ToolsOptions tools.Options
	closers      []func()
}

// New assembles the stack. On error everything built so far is closed.
func New(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Client == nil {
		return nil, errors.New("stack: no invapi client")
	}
	if o.Catalog == nil {
		o.Catalog = schemas.Load()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	po := o.Policy
	if po.Describe == nil {
		po.Describe = tools.Describer(o.Catalog)
	}
	if po.Facts == nil {
		po.Facts = policy.ShowFacts(o.Client)
	}
	if po.Catalog == nil {
		po.Catalog = o.Catalog
	}
	eng, err := policy.New(po)
	if err != nil {
		return nil, err
	}
	s.Policy = eng
	s.closers = append(s.closers, eng.Close) // leased rate tokens go back before the store closes

	rc := o.Receiver
	if rc.Store == nil {
		mem, err := store.OpenShared(ctx, state.Memory)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = mem.Close() }) // after the receiver's
		rc.Store = mem
	}
	if rc.ServerIPs == nil {
		rc.ServerIPs = webhook.EqShowIPs(o.Client)
	}
	rcv, err := webhook.New(ctx, rc)
	if err != nil {
		return nil, err
	}
	s.Receiver = rcv
	s.closers = append(s.closers, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rcv.Close(cctx)
	})

	guarded := eng.Guard(o.Client)
	wo := o.Workflows
	wo.Catalog, wo.Client, wo.Checker, wo.Policy = o.Catalog, guarded, o.Client, eng
	wo.Facts = policy.ShowFacts(o.Client)
	wo.Events = jobEvents{rcv}
	if rc.PublicURL != "" {
		wo.Callbacks = rcv
	}
	// Jobs live in the shared store, so they survive this process.
	wo.Store = sharedWorkflows(rc.Store)
	if wo.Logger == nil {
		wo.Logger = o.Logger.Named("workflows")
	}
	if o.ConfigureWorkflows != nil {
		o.ConfigureWorkflows(&wo)
	}
	wf, err := workflows.New(wo)
	if err != nil {
		return nil, err
	}
	s.Workflows = wf

	hooks := &server.Hooks{}
	taskHooks := &server.TaskHooks{}
	wf.AttachTaskHooks(taskHooks)
	wf.AttachStatusHooks(hooks) // tasks/get shows the job's stage as statusMessage
	s.ToolsOptions = tools.Options{
		Version:      o.Version,
		Instructions: Instructions(o),
		Catalog:      o.Catalog,
		Client:       guarded,
		Sessions:     o.Client,
		Selection:    o.Selection,
		Dynamic:      o.Dynamic,
		PIN:          policy.PINFrom,
		// The policy decides first; the callback is injected innermost, so a job (and its
		// secret URL) exists only for a call that really goes to invapi.
		Middleware:    []server.ToolHandlerMiddleware{eng.Middleware, events.InjectCallback(rcv, o.Catalog, o.Logger.Named("webhook"))},
		ArgsValidated: true, // by eng.Middleware, which audits the rejects
		ServerAllowed: eng.ServerAllowed,
		Gate:          eng,
		ExtraTools:    []server.ServerTool{events.Tool(rcv)},
		ExtraToolsets: []tools.ExtraToolset{{
			Name:        "workflows",
			Description: "Order and reinstall servers as one confirmed, followed job (server_order, server_reinstall, server_reinstall_pxe, server_job_watch, server_job_cancel).",
			Tools:       wf.Tools(),
			With:        []string{"reinstall"},
		}},
		Hooks: hooks,
		ExtraOptions: []server.ServerOption{
			server.WithTaskCapabilities(true, true, true),
			server.WithTaskHooks(taskHooks),
		},
		Logger: o.Logger.Named("mcp"),
	}
	if o.ConfigureTools != nil {
		o.ConfigureTools(&s.ToolsOptions)
	}
	srv, err := tools.New(s.ToolsOptions)
	if err != nil {
		return nil, err
	}
	s.Server = srv
	n := events.NewNotifier(srv.MCP(), srv.Subscriptions(), tools.ServerURI)
	n.Attach(hooks)
	rcv.SetNotifier(wakeJobs{next: n, wf: wf})
	srv.MCP().AddResource(events.Resource(rcv))
	srv.MCP().AddResourceTemplate(events.ResourceTemplate(rcv))
	// Closers run last-in first-out: jobs stop (PXE jobs clean up) while the policy,
	// the receiver, the audit log and the session are still there.
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		wf.Shutdown(ctx)
	})
	return s, nil
}

// Close stops the stack: jobs first, then the receiver, then the policy.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// workflowToolsets name the workflow tools in a selection: they are not catalog actions.
var workflowToolsets = map[string]bool{"workflows": true, "reinstall": true, "all": true}

// WantsWorkflows reports whether the selection loads the workflow tools.
func WantsWorkflows(sel tools.Selection) bool {
	for _, t := range sel.Toolsets {
		if workflowToolsets[t] {
			return true
		}
	}
	return false
}

// Instructions is what the server tells the model at initialize.
func Instructions(o Options) string {
	var b strings.Builder
	b.WriteString("hostkey-mcp operates Hostkey servers through the invapi API. ")
	b.WriteString("Destructive tools (power, reinstall, order, delete, pay) are confirmed by a human outside this conversation and the account PIN is supplied by the server: never ask the user for the PIN. ")
	b.WriteString("Tools that start a long job return a key: follow it with eq_callback_check (loaded with them). ")
	if WantsWorkflows(o.Selection) {
		b.WriteString("Prefer server_order, server_reinstall and server_reinstall_pxe to raw actions: they validate, confirm once and follow progress; server_job_watch resumes a job. ")
	}
	b.WriteString("events_list shows install callbacks, login alerts and workflow progress, also from before you connected. ")
	if o.Dynamic {
		b.WriteString("Only some toolsets are loaded: use tools_search to find a tool and toolsets_enable to load it. ")
	}
	if o.Policy.ReadOnly {
		b.WriteString("Read-only mode: no tool changes anything. ")
	}
	if scope := allowlistText(o.Policy.Servers, o.Policy.ServerTags); scope != "" {
		// Listings still show every server of the token; say up front which ones are
		// off limits so the model does not offer actions that will be refused.
		b.WriteString("Scope: only " + scope + " may be acted on; calls naming other servers are refused before anything is sent. ")
	}
	if o.Ephemeral {
		b.WriteString("EPHEMERAL: events, jobs, approvals, rate limits, the PIN cool-down and the audit chain are kept in this process only and are lost when it exits. ")
	}
	if o.SandboxInstall > 0 {
		b.WriteString("SANDBOX: this is the built-in simulator with example servers; nothing real is changed and installs finish in about " + o.SandboxInstall.String() + ".")
	}
	return strings.TrimSpace(b.String())
}

// allowlistText describes the server allowlist for the instructions ("" when unset).
func allowlistText(servers []int64, tags []string) string {
	var parts []string
	if len(servers) > 0 {
		ids := make([]string, len(servers))
		for i, id := range servers {
			ids[i] = strconv.FormatInt(id, 10)
		}
		parts = append(parts, "servers "+strings.Join(ids, ", "))
	}
	if len(tags) > 0 {
		parts = append(parts, "servers tagged "+strings.Join(tags, " or "))
	}
	return strings.Join(parts, " and ")
}

// jobEvents records workflow progress in the receiver's durable store, one event per
// state/stage change (replays of the same change are one event).
type jobEvents struct{ r *webhook.Receiver }

func (j jobEvents) RecordJob(ctx context.Context, info workflows.JobInfo) {
	data := map[string]any{"state": info.State, "stage": info.Stage, "stages": info.Stages, "message": info.Message}
	if info.Error != "" {
		data["error"] = info.Error
	}
	if len(info.Result) > 0 {
		data["result"] = info.Result
	}
	key := fmt.Sprintf("%s/%s/%d", info.ID, info.State, info.Stage)
	_, _, _ = j.r.Record(ctx, webhook.Event{Kind: store.KindWorkflow, ServerID: info.ServerID, JobID: info.ID, Action: info.Tool, Session: info.Session, Data: data}, key)
}

// wakeJobs passes events to the MCP notifier and wakes the workflow watching a server
// whose install callback arrived (invapi then confirms the completion).
type wakeJobs struct {
	next webhook.Notifier
	wf   *workflows.Workflows
}

func (w wakeJobs) Notify(ctx context.Context, ev webhook.Event) {
	w.next.Notify(ctx, ev)
	if ev.Kind == store.KindInstallDone && ev.ServerID != 0 {
		w.wf.Wake(ev.ServerID)
	}
}

// sharedWorkflows is the store's workflow jobs; nil for a store of another kind or one
// in this process's memory (--ephemeral), where no other process could take a job over.
func sharedWorkflows(st store.Store) state.Workflows {
	if sh, ok := st.(*store.Shared); ok && sh.State().Engine() != "sqlite-memory" {
		return sh.State()
	}
	return nil
}
