// Package workflows runs the vendor's multi-step procedures as single tools: ordering an
// instant server, reinstalling through order_instance, and the PXE reinstall with its
// mandatory clean-up. Each asks for one human confirmation showing the whole plan, runs
// as a job that outlives the call (MCP task where the client supports tasks, otherwise a
// call with progress notifications that returns a handle at its timeout), and records
// its progress as events.
// It may import tools, policy, webhook, invapi, schemas and state; never cmd.
package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// Authorizer is the policy: one decision for a whole workflow, and an audit line for
// every cancel (policy.Engine).
type Authorizer interface {
	Authorize(ctx context.Context, call *policy.Call, summary string) (context.Context, *mcp.CallToolResult, error)
	Done(ctx context.Context, call *policy.Call, err error, start time.Time)
	Note(ctx context.Context, call *policy.Call, decision policy.Decision, reason string, how policy.Channel)
}

// Checker reads install progress (the invapi client's eq_callback/check).
type Checker interface {
	CheckCallback(ctx context.Context, key string) (*invapi.CallbackStatus, error)
}

// Callbacks creates post_install_callback URLs (the webhook receiver); optional.
type Callbacks interface {
	NewInstallJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (string, error)
}

// callbackJobs is what the webhook receiver offers beyond Callbacks: the id of the job
// behind a callback URL, and that job's state. A process taking a job over reads it to
// tell an install that finished (its fresh server called back) from one that was lost.
type callbackJobs interface {
	NewJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (webhook.Job, string, error)
	Job(ctx context.Context, id string) (webhook.Job, error)
}

// EventSink records job progress durably (the webhook event store); optional.
type EventSink interface {
	RecordJob(ctx context.Context, info JobInfo)
}

// Options configure the workflows.
type Options struct {
	Catalog   *schemas.Catalog
	Client    tools.Caller // the policy-guarded client: writes leave only inside an authorization
	Checker   Checker
	Policy    Authorizer
	Facts     policy.FactsFunc
	Callbacks Callbacks
	Events    EventSink
	// Sleep waits between progress checks; tests advance the simulator's clock here.
	Sleep func(ctx context.Context, d time.Duration) error
	// PollInitial and PollMax bound the backoff between eq_callback/check calls.
	PollInitial, PollMax time.Duration
	// DefaultWait is how long a call waits before returning a handle (wait_seconds). It
	// stays under common client timeouts (~60 s), whose cancellation would otherwise read
	// as the user cancelling the job.
	DefaultWait time.Duration
	// MaxWatch bounds how long a job follows an install (an unpaid order never starts).
	MaxWatch time.Duration
	Logger   *zap.Logger
	Now      func() time.Time

	// Store keeps the jobs so they survive this process (see persist.go); nil keeps them
	// in this process only.
	Store state.Workflows
	// Owner names this process in the store's leases (default: pid, host and a nonce).
	Owner string
	// LeaseTTL is how long a job's lease lasts unrenewed: a process that died has its
	// jobs taken over after it (default 30s).
	LeaseTTL time.Duration
	// Operator: this process's sessions are the person at the terminal (the CLI), who
	// may watch and stop following jobs taken over from a process that stopped.
	Operator bool
}

// Workflows holds the running jobs and builds the tools.
type Workflows struct {
	o     Options
	jobs  *registry
	log   *zap.Logger
	owner string

	taskMu sync.Mutex
	tasks  map[string][]string // session/tool → task IDs created but not yet claimed
}

// New checks the options.
func New(o Options) (*Workflows, error) {
	if o.Client == nil || o.Checker == nil || o.Policy == nil {
		return nil, errors.New("workflows: Client, Checker and Policy are required")
	}
	if o.Catalog == nil {
		o.Catalog = schemas.Load()
	}
	if o.Facts == nil {
		o.Facts = policy.ShowFacts(o.Client)
	}
	if o.PollInitial <= 0 {
		o.PollInitial = 5 * time.Second
	}
	if o.PollMax <= 0 {
		o.PollMax = time.Minute
	}
	if o.DefaultWait <= 0 {
		o.DefaultWait = 50 * time.Second
	}
	if o.MaxWatch <= 0 {
		o.MaxWatch = 3 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	return &Workflows{o: o, jobs: newRegistry(), log: o.Logger, owner: o.Owner, tasks: map[string][]string{}}, nil
}

// LeaseTTL is how long a job stays with this process unrenewed (Options.LeaseTTL).
func (w *Workflows) LeaseTTL() time.Duration { return w.o.LeaseTTL }

// Wake makes the jobs on a server check their progress now (an install callback for it
// arrived). The callback alone never completes a running job: invapi confirms it. (Only a
// job taken over whose key invapi has already forgotten ends done on it: persist.go.)
func (w *Workflows) Wake(serverID int64) {
	if j := w.jobs.running(serverID); j != nil {
		select {
		case j.wake <- struct{}{}:
		default:
		}
	}
}

// Jobs lists the jobs of a server (0: all), newest first.
func (w *Workflows) Jobs(serverID int64) []JobInfo { return w.jobs.list(serverID) }

// AttachTaskHooks lets tasks/cancel reach the job behind a task: mcp-go runs task tools
// with a context that streamable HTTP cancels when the response is sent, so the job runs
// detached and only an explicit cancel aborts it.
func (w *Workflows) AttachTaskHooks(h *server.TaskHooks) {
	h.AddOnTaskCreated(func(_ context.Context, m server.TaskMetrics) {
		w.taskMu.Lock()
		k := m.SessionID + "/" + m.ToolName
		w.tasks[k] = append(w.tasks[k], m.TaskID)
		w.taskMu.Unlock()
	})
	h.AddOnTaskCancelled(func(ctx context.Context, m server.TaskMetrics) {
		w.jobs.mu.Lock()
		j := w.jobs.byTask[m.TaskID]
		w.jobs.mu.Unlock()
		if j == nil {
			return
		}
		if j.owner() != m.SessionID {
			w.o.Policy.Note(ctx, w.cancelCall(j), policy.DecisionDenied, "tasks/cancel from another MCP session: the job belongs to the session that started it", "")
			return
		}
		w.noteCancel(ctx, j, "tasks/cancel")
		j.cancel()
	})
}

// taskKey carries the task ID mcp-go created for a call that runs as a task.
type taskKey struct{}

// entry wraps every workflow handler: it claims the call's task ID first (so a handler
// that refuses early leaves no stale ID for the next call) and, on the task path, where
// mcp-go skips schema validation, validates the arguments itself.
func (w *Workflows) entry(schema json.RawMessage, h server.ToolHandlerFunc) server.ToolHandlerFunc {
	validate := compileSchema(schema)
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if req.Params.Task == nil {
			return h(ctx, req)
		}
		sid := tools.SessionID(ctx)
		w.taskMu.Lock()
		k := sid + "/" + req.Params.Name
		var id string
		if ids := w.tasks[k]; len(ids) > 0 {
			id, w.tasks[k] = ids[0], ids[1:]
		}
		w.taskMu.Unlock()
		if err := validate(req.GetArguments()); err != nil {
			return mcp.NewToolResultError(fmt.Sprintf("%s: invalid arguments: %v. Nothing was sent.", req.Params.Name, err)), nil
		}
		// mcp-go cancels a task's context as soon as the CreateTaskResult is sent (on every
		// transport): run detached; tasks/cancel reaches the job through the task hooks.
		return h(context.WithValue(context.WithoutCancel(ctx), taskKey{}, id), req)
	}
}

// plan is what a workflow will do, prepared (and validated) before anything is sent.
type plan struct {
	tool     string
	serverID int64
	summary  string
	call     *policy.Call
	run      func(ctx context.Context, j *job) error
	// abortOnShutdown: aborting and cleaning up beats leaving the job half done.
	abortOnShutdown bool
	// onCancel is the catalog tool a cancellation sends ("" when it only stops following).
	// start adds it to the confirmation text, so the human approves it with the job.
	onCancel string
}

// reads authorizes the reads a workflow makes before its confirmation (the server's
// facts, the catalog lists) like any tool call: refused outside the scope before anything
// is read, rate limited, audited. done closes the authorization; a non-nil result is the
// refusal to return.
func (w *Workflows) reads(ctx context.Context, tool, module, action string, serverID int64, args map[string]any) (rctx context.Context, done func(error), refusal *mcp.CallToolResult) {
	call := &policy.Call{Tool: tool, Module: module, Action: action, Class: schemas.Read, Args: args}
	if serverID != 0 {
		call.ServerIDs = []int64{serverID}
	}
	rctx, refusal, err := w.o.Policy.Authorize(ctx, call, "")
	if err != nil {
		return ctx, nil, mcp.NewToolResultError(fmt.Sprintf("%s: %v. Nothing was sent.", tool, err))
	}
	if refusal != nil {
		return ctx, nil, refusal
	}
	return rctx, func(err error) { w.o.Policy.Done(rctx, call, err, time.Time{}) }, nil
}

// start reserves the server, asks for the confirmation, starts the job and follows it
// (until it ends, the call's wait passes, or, on the task path, for the task's life).
func (w *Workflows) start(ctx context.Context, req mcp.CallToolRequest, p *plan) (*mcp.CallToolResult, error) {
	taskID, task := ctx.Value(taskKey{}).(string)
	base := ctx // on the task path, entry already detached it
	// Reserve the server before asking anyone: two calls confirmed in parallel must not
	// both reinstall it.
	release, busy := w.jobs.reserve(p.serverID)
	if busy != nil {
		if !strings.HasPrefix(busy.ID, "job-") {
			// A reservation: a workflow on this server waits for its confirmation.
			return mcp.NewToolResultError(fmt.Sprintf("Server %d already has a workflow awaiting a human's confirmation; nothing was sent. Wait for that answer: a second install is refused by invapi too.", p.serverID)), nil
		}
		if busy.Session != tools.SessionID(ctx) {
			// Another session's job: say that it exists, nothing about it.
			return mcp.NewToolResultError(fmt.Sprintf("Server %d already has a workflow job running, started in another MCP session; only that session can watch or cancel it. A second install is refused by invapi too.", p.serverID)), nil
		}
		return mcp.NewToolResultError(fmt.Sprintf("Server %d already has a running %s job (%s, %s). Watch it with server_job_watch job_id=%s; a second install is refused by invapi too.",
			p.serverID, busy.Tool, busy.ID, busy.Message, busy.ID)), nil
	}
	started := w.o.Now()
	if p.onCancel != "" {
		if a, ok := w.o.Catalog.Tool(p.onCancel); ok {
			p.summary += fmt.Sprintf(" Cancelling the job from this MCP session sends %s/%s.", a.Module, a.Action)
		}
	}
	p.call.Summary = p.summary
	actx, refusal, err := w.o.Policy.Authorize(base, p.call, p.summary)
	if err != nil || refusal != nil {
		release()
		return refusal, err
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(actx))
	j := &job{
		info: JobInfo{
			ID: newJobID(), Tool: p.tool, ServerID: p.serverID, Session: tools.SessionID(ctx),
			State: Running, Stages: 5, Message: "starting", Started: started,
		},
		cancel:          cancel,
		authCtx:         actx,
		abortOnShutdown: p.abortOnShutdown,
		onCancel:        p.onCancel,
		done:            make(chan struct{}),
		wake:            make(chan struct{}, 1),
	}
	if err := w.persist(base, j); err != nil {
		release()
		cancel()
		err = fmt.Errorf("could not record the job in the store: %w", err)
		w.o.Policy.Done(actx, p.call, err, started)
		return mcp.NewToolResultError(fmt.Sprintf("%s: %v. Nothing was sent.", p.tool, err)), nil
	}
	if w.o.Events != nil {
		j.onChange = func(info JobInfo) { w.o.Events.RecordJob(context.WithoutCancel(ctx), info) }
	}
	w.jobs.add(j, taskID)
	release()                   // the running job now holds the server
	j.update(func(*JobInfo) {}) // record "running"
	go w.keepLease(j)
	go w.run(jctx, actx, j, p, started)
	wait := waitFor(req, w.o.DefaultWait)
	if task {
		wait = -1 // a task lives until the job ends
	}
	return w.follow(ctx, req, j, task, true, wait)
}

// run executes the job; a panic fails the job instead of the server.
func (w *Workflows) run(jctx, actx context.Context, j *job, p *plan, started time.Time) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
			w.log.Error("workflow panicked", zap.String("job", j.info.ID), zap.Any("panic", r))
		}
		w.o.Policy.Done(actx, p.call, err, started)
		w.end(j, err)
	}()
	err = p.run(jctx, j)
}

// end records a job's outcome (in the store too) and releases it. The store is written
// before the outcome becomes visible here: a job this process reports ended must not
// still read "running" to another process or a new CLI.
func (w *Workflows) end(j *job, err error) {
	abortable := j.abortable() // read before update: update holds the job's lock
	finished := w.o.Now()      // one time for the stored and the visible outcome
	outcome := func(i *JobInfo) {
		i.Finished = finished
		switch {
		case err == nil:
			i.State, i.Message = Done, "finished"
			i.Stage = i.Stages
		case errors.Is(err, context.Canceled) && !abortable:
			i.State = Detached
		case errors.Is(err, context.Canceled):
			i.State, i.Message, i.Error = Cancelled, "cancelled", "cancelled"
		default:
			i.State, i.Error = Failed, err.Error()
			i.Message = "failed: " + err.Error()
		}
	}
	final := j.snapshot()
	outcome(&final)
	w.settle(j, final)
	j.update(outcome)
	j.cancel()
	close(j.done)
	w.jobs.finished(j)
}

// Shutdown stops following every running job before the process exits. A PXE reinstall
// is aborted and cleaned up (boot from disk, clear PXE): nobody would be left to do it
// after the install, and a forgotten PXE config reinstalls the server at a later reboot.
// Other jobs keep running at invapi; their last recorded event says they were detached.
func (w *Workflows) Shutdown(ctx context.Context) {
	for _, j := range w.jobs.runningJobs() {
		if j.abortOnShutdown {
			w.log.Warn("shutting down: aborting and cleaning up a PXE reinstall", zap.String("job", j.snapshot().ID))
		} else if j.lease != nil {
			j.update(func(i *JobInfo) {
				i.Message = "handed over at shutdown: the job stays recorded on this data dir and the next hostkey-mcp process takes it over " +
					"(a running server at once; or hostkey-mcp call server_job_watch job_id=" + i.ID + ")"
			})
			j.detach()
		} else {
			j.update(func(i *JobInfo) {
				i.Message = "detached at shutdown; still running at invapi (eq_callback_check key=" + i.Key + ")"
			})
			j.detach()
		}
		j.cancel()
	}
	for _, j := range w.jobs.runningJobs() {
		select {
		case <-j.done:
		case <-ctx.Done():
			return
		}
	}
}

// follow reports a job's progress to the call until the job ends, the call ends, or the
// wait passes (wait < 0: no limit). When the call that started the job is cancelled
// (abortOnCancel) the job is stopped, which aborts it where invapi allows; any other
// watcher going away only stops watching.
func (w *Workflows) follow(ctx context.Context, req mcp.CallToolRequest, j *job, task, abortOnCancel bool, wait time.Duration) (*mcp.CallToolResult, error) {
	if token := progressToken(req); token != nil {
		srv := server.ServerFromContext(ctx)
		sid := tools.SessionID(ctx)
		var mu sync.Mutex
		last := -1.0
		stopped := false
		stop := j.watch(func(info JobInfo) {
			// Progress must increase: stage k of 5 plus the finished step.
			p := float64(info.Stage)
			if info.State != Running {
				p = float64(info.Stages) + 1
			}
			mu.Lock()
			defer mu.Unlock()
			if stopped || p <= last || srv == nil {
				return
			}
			last = p
			params := map[string]any{"progressToken": token, "progress": p, "total": float64(info.Stages) + 1, "message": info.Message}
			if sid != "" {
				_ = srv.SendNotificationToSpecificClient(sid, "notifications/progress", params)
			} else {
				_ = srv.SendNotificationToClient(ctx, "notifications/progress", params)
			}
		})
		defer func() {
			stop()
			mu.Lock()
			stopped = true // no progress after the response
			mu.Unlock()
		}()
	}
	var timeout <-chan time.Time
	if wait >= 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}
	var callDone <-chan struct{}
	if !task {
		callDone = ctx.Done()
	}
	select {
	case <-j.done:
	case <-callDone:
		if !abortOnCancel {
			return nil, ctx.Err()
		}
		// The user cancelled the call that started the job: stop it (it aborts where invapi
		// allows and cleans up).
		w.noteCancel(ctx, j, "the call that started the job was cancelled")
		j.cancel()
		<-j.done
	case <-timeout:
		info := j.snapshot()
		text := fmt.Sprintf("%s on server %d is still running (%s; stage %d/%d). Nothing is lost: call server_job_watch with job_id=%s to keep watching, or server_job_cancel to stop it.",
			info.Tool, info.ServerID, info.Message, info.Stage, info.Stages, info.ID)
		if j.lease != nil {
			text += " The job is recorded on this data dir: if this process stops, the next hostkey-mcp process on it takes the job over and follows it to its end."
		} else {
			text += " This process keeps no store (--ephemeral): the job is followed only while it runs."
		}
		return mcp.NewToolResultStructured(info, text), nil
	}
	return finalResult(j.snapshot()), nil
}

func finalResult(info JobInfo) *mcp.CallToolResult {
	body, _ := json.Marshal(info)
	switch info.State {
	case Done:
		return mcp.NewToolResultStructured(info, fmt.Sprintf("%s finished on server %d.\n%s", info.Tool, info.ServerID, body))
	case Cancelled:
		res := mcp.NewToolResultStructured(info, fmt.Sprintf("%s on server %d was cancelled; clean-up steps ran: %s.", info.Tool, info.ServerID, stepList(info.Steps)))
		res.IsError = true
		return res
	default:
		res := mcp.NewToolResultStructured(info, fmt.Sprintf("%s on server %d failed: %s. Steps: %s.", info.Tool, info.ServerID, strings.TrimRight(info.Error, "."), stepList(info.Steps)))
		res.IsError = true
		return res
	}
}

func stepList(steps []Step) string {
	var parts []string
	for _, s := range steps {
		mark := "ok"
		if !s.OK {
			mark = "failed"
		}
		parts = append(parts, s.Action+" "+mark)
	}
	return strings.Join(parts, ", ")
}

func progressToken(req mcp.CallToolRequest) mcp.ProgressToken {
	if req.Params.Meta == nil {
		return nil
	}
	return req.Params.Meta.ProgressToken
}

func waitFor(req mcp.CallToolRequest, def time.Duration) time.Duration {
	if v, ok := req.GetArguments()["wait_seconds"].(float64); ok && v >= 0 {
		return time.Duration(v * float64(time.Second))
	}
	return def
}

// step sends one upstream request as part of a job and records it.
func (w *Workflows) step(ctx context.Context, j *job, tool string, args map[string]any) (*invapi.Response, error) {
	a, ok := w.o.Catalog.Tool(tool)
	if !ok {
		return nil, fmt.Errorf("catalog has no %s", tool)
	}
	name := stepName(tool, args)
	if err := w.intent(ctx, j, name, a.Module+"/"+a.Action); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", a.Module, a.Action, err)
	}
	resp, err := w.o.Client.Do(ctx, tools.RequestWithPIN(ctx, a, args, policy.PINFrom))
	st := Step{Action: a.Module + "/" + a.Action, OK: err == nil}
	if err != nil {
		st.Error = err.Error()
	}
	sr := stepResult{OK: err == nil, Error: st.Error}
	if resp != nil {
		sr.Key = resp.Key
	}
	w.stepDone(ctx, j, name, sr)
	j.update(func(i *JobInfo) { i.Steps = append(i.Steps, st) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.Action, err)
	}
	return resp, nil
}

// watchInstall polls eq_callback/check until the install is done, failed or cancelled,
// backing off between checks and checking at once when a callback wakes the job.
func (w *Workflows) watchInstall(ctx context.Context, j *job, key string) (*invapi.CallbackStatus, error) {
	j.update(func(i *JobInfo) { i.Key, i.Message = key, "waiting for the installer" })
	delay := w.o.PollInitial
	errorsInRow := 0
	var waited time.Duration
	for {
		if waited > w.o.MaxWatch {
			return nil, fmt.Errorf("not finished after %s of watching; it may still finish: eq_callback_check reinstall_key=%s", w.o.MaxWatch, key)
		}
		st, err := w.o.Checker.CheckCallback(ctx, key)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if errorsInRow++; errorsInRow > 5 {
				return nil, fmt.Errorf("eq_callback/check keeps failing: %w", err)
			}
		default:
			errorsInRow = 0
			if st.Done || st.Failed {
				w.recordFinal(ctx, j, key, st) // durable before it is acted on or reported
			}
			if st.Stage > 0 || st.Done {
				stage, msg := st.Stage, strings.TrimSpace(st.Scope)
				if st.Done {
					stage, msg = 5, "install complete"
				}
				j.update(func(i *JobInfo) {
					if stage > i.Stage {
						i.Stage = stage
					}
					if st.Stages > 0 {
						i.Stages = st.Stages
					}
					i.Message = msg
				})
			}
			if st.Done {
				return st, nil
			}
			if st.Failed {
				return st, fmt.Errorf("the installer reported %q", strings.TrimSpace(st.Result+" "+st.Scope))
			}
		}
		if err := w.sleep(ctx, j, delay); err != nil {
			return nil, err
		}
		waited += delay
		if delay *= 2; delay > w.o.PollMax {
			delay = w.o.PollMax
		}
	}
}

func (w *Workflows) sleep(ctx context.Context, j *job, d time.Duration) error {
	if w.o.Sleep != nil {
		return w.o.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-j.wake:
		return nil
	case <-t.C:
		return nil
	}
}

// callbackURL asks the webhook receiver for a post_install_callback URL, when configured.
// The receiver's job id is kept with the job (never the URL: its secret is a credential).
func (w *Workflows) callbackURL(ctx context.Context, j *job, serverID int64, tool string, ips []string) string {
	if w.o.Callbacks == nil {
		return ""
	}
	var u, id string
	var err error
	if cj, ok := w.o.Callbacks.(callbackJobs); ok {
		var cb webhook.Job
		cb, u, err = cj.NewJob(ctx, serverID, tool, tools.SessionID(ctx), ips)
		id = cb.ID
	} else {
		u, err = w.o.Callbacks.NewInstallJob(ctx, serverID, tool, tools.SessionID(ctx), ips)
	}
	if err != nil {
		w.log.Warn("no install callback; progress is polled", zap.Error(err))
		return ""
	}
	j.mu.Lock()
	j.callbackJob = id
	j.mu.Unlock()
	return u
}

// compileSchema returns a validator for a tool's input schema (the task path of mcp-go
// does not validate). The schema is compiled at the first validation, not at start-up:
// compiling them all cost a tenth of a start (TestToolSchemasCompile compiles each).
func compileSchema(raw json.RawMessage) func(map[string]any) error {
	compiled := sync.OnceValues(func() (*jsonschema.Schema, error) {
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, err
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("tool.json", doc); err != nil {
			return nil, err
		}
		return c.Compile("tool.json")
	})
	return func(args map[string]any) error {
		sch, err := compiled()
		if err != nil {
			return fmt.Errorf("the tool's input schema does not compile (a bug): %w", err)
		}
		var v any = map[string]any{}
		if args != nil {
			b, _ := json.Marshal(args)
			_ = json.Unmarshal(b, &v)
		}
		return sch.Validate(v)
	}
}
