package workflows

// Jobs that survive their process. With Options.Store every job is recorded in the shared
// store (state.Workflows) under a lease that its process renews; each request it sends
// is an intent recorded before it leaves and a result recorded after. A process that
// stops hands its jobs over (releases the lease); one that dies lets the lease expire.
// The next process that runs takes the job over: a server at once (TakeOver), or the
// CLI's server_job_watch job_id=….
//
// A job taken over is followed, never re-run: it sends nothing that changes state
// (there is no human confirmation behind it in this process). An intent without a
// result means the request may or may not have reached invapi: the new process asks
// invapi (eq_callback/check with the job's key) and, when that cannot settle it, ends
// the job saying what to check, rather than repeat a non-idempotent request.
//
// invapi answers an install's final state once and then forgets the key. That answer is
// recorded (finalStep) before it is acted on; a process that died before recording it
// leaves a forgotten key, and the next process looks for the install's completion
// callback (the webhook job recorded with the step that carried its URL): arrived means
// done; absent means unknown, and the job ends saying what to check.
//
// Who may see a job taken over: its owning MCP session lived in the dead process, so no
// MCP session owns it any more. Only the operator at the terminal (Options.Operator:
// the CLI on the same data dir, who can read the store anyway) may watch or stop
// following it; MCP sessions of a server see it counted among other sessions' jobs, and
// its progress as workflow events (no arguments are recorded: the store holds the tool,
// the server and the keys, never root_pass or the PIN).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// jobLease is a job's current lease in the store.
type jobLease struct {
	mu sync.Mutex
	l  state.Lease
}

func (jl *jobLease) get() state.Lease {
	jl.mu.Lock()
	defer jl.mu.Unlock()
	return jl.l
}

func (jl *jobLease) set(l state.Lease) {
	jl.mu.Lock()
	jl.l = l
	jl.mu.Unlock()
}

// jobInput is what the store keeps of a job's arguments: nothing secret.
type jobInput struct {
	ServerID int64 `json:"server_id,omitempty"`
}

type stepIntent struct {
	Action string `json:"action"`
	// Callback is the webhook job awaiting the install's post_install_callback (its id,
	// not the URL): a process taking the job over reads whether the install called back.
	Callback string `json:"callback,omitempty"`
}

type stepResult struct {
	OK    bool   `json:"ok"`
	Key   string `json:"key,omitempty"` // the install key a later process follows
	Error string `json:"error,omitempty"`
	Final string `json:"final,omitempty"` // finalStep: "done" or "failed" (Error: the installer's words)
}

// finalStep records the final answer of eq_callback/check before it is acted on: invapi
// gives it once and then forgets the key, so a process taking the job over must not have
// to ask again. A read, never repeated as a request.
const finalStep = "eq_callback_check:final"

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("pid %d on %s (%s)", os.Getpid(), host, hex.EncodeToString(b))
}

// persist records a new job; nil lease when there is no store.
func (w *Workflows) persist(ctx context.Context, j *job) error {
	if w.o.Store == nil {
		return nil
	}
	in, _ := json.Marshal(jobInput{ServerID: j.info.ServerID})
	l, err := w.o.Store.CreateWorkflow(ctx, state.Workflow{ID: j.info.ID, Kind: j.info.Tool, Session: j.info.Session,
		State: state.WorkflowRunning, Input: in, Created: j.info.Started}, w.owner, w.o.LeaseTTL)
	if err != nil {
		return err
	}
	j.lease = &jobLease{l: l}
	return nil
}

// stepName names a request within its job (the two eq/boot_dev differ by media).
func stepName(tool string, args map[string]any) string {
	if m, ok := args["media"].(string); ok {
		return tool + ":" + m
	}
	return tool
}

// intent records that a request is about to leave. A lost lease stops the job: another
// process has taken it over.
func (w *Workflows) intent(ctx context.Context, j *job, name, action string) error {
	if j.lease == nil {
		return nil
	}
	j.mu.Lock()
	cb := j.callbackJob
	j.mu.Unlock()
	b, _ := json.Marshal(stepIntent{Action: action, Callback: cb})
	_, err := w.o.Store.StepIntent(context.WithoutCancel(ctx), j.lease.get(), name, b)
	if errors.Is(err, state.ErrFenced) {
		return fmt.Errorf("not sent: %w", err)
	}
	if err != nil {
		return fmt.Errorf("not sent: could not record the step durably: %w", err)
	}
	return nil
}

// stepDone records a request's outcome.
func (w *Workflows) stepDone(ctx context.Context, j *job, name string, r stepResult) {
	if j.lease == nil {
		return
	}
	b, _ := json.Marshal(r)
	if err := w.o.Store.StepDone(context.WithoutCancel(ctx), j.lease.get(), name, b); err != nil {
		w.log.Warn("could not record a step's result; a process taking the job over will ask invapi", zap.String("job", j.info.ID), zap.String("step", name), zap.Error(err))
	}
}

// recordFinal records the install's final answer (best effort: when it cannot, a process
// taking the job over falls back on the install's callback).
func (w *Workflows) recordFinal(ctx context.Context, j *job, key string, st *invapi.CallbackStatus) {
	if j.lease == nil {
		return
	}
	if err := w.intent(ctx, j, finalStep, "eq_callback/check"); err != nil {
		w.log.Warn("could not record the install's final state", zap.String("job", j.info.ID), zap.Error(err))
		return
	}
	r := stepResult{OK: true, Key: key, Final: "done"}
	if !st.Done {
		r.Final, r.Error = "failed", strings.TrimSpace(st.Result+" "+st.Scope)
	}
	w.stepDone(ctx, j, finalStep, r)
}

// keepLease renews the job's lease until it ends. A lost lease (another process took
// the job over after this one stalled) stops following here without aborting.
func (w *Workflows) keepLease(j *job) {
	if j.lease == nil {
		return
	}
	t := time.NewTicker(w.o.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-j.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.o.LeaseTTL/3)
		l, err := w.o.Store.RenewLease(ctx, j.lease.get(), w.o.LeaseTTL)
		cancel()
		switch {
		case err == nil:
			j.lease.set(l)
		case errors.Is(err, state.ErrFenced), errors.Is(err, state.ErrNotFound):
			w.log.Warn("workflow job: lease lost to another process; stopped following it here", zap.String("job", j.info.ID), zap.Error(err))
			j.mu.Lock()
			j.lost = true
			j.mu.Unlock()
			j.detach()
			j.cancel()
			return
		default:
			w.log.Warn("workflow job: could not renew the lease; retrying", zap.String("job", j.info.ID), zap.Error(err))
		}
	}
}

// settle writes the job's end to the store: finished, or handed over (released) when this
// process only stopped following it.
func (w *Workflows) settle(j *job, info JobInfo) {
	if j.lease == nil {
		return
	}
	j.mu.Lock()
	lost := j.lost
	j.mu.Unlock()
	if lost {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if info.State == Detached {
		err = w.o.Store.ReleaseLease(ctx, j.lease.get())
	} else {
		st := map[string]string{Done: state.WorkflowDone, Failed: state.WorkflowFailed, Cancelled: state.WorkflowCancelled}[info.State]
		b, _ := json.Marshal(info)
		err = w.o.Store.FinishWorkflow(ctx, j.lease.get(), st, b)
	}
	if err != nil {
		w.log.Warn("workflow job: could not record its end", zap.String("job", info.ID), zap.Error(err))
	}
}

// TakeOver adopts, until ctx ends, the jobs whose process died or stopped (their lease
// expired or was released) and follows them to their end. A server runs it; a CLI run
// takes a job over only when asked (server_job_watch job_id=…).
func (w *Workflows) TakeOver(ctx context.Context) {
	if w.o.Store == nil {
		return
	}
	every := min(w.o.LeaseTTL/3, 2*time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		leases, err := w.o.Store.ClaimExpired(cctx, w.owner, w.o.LeaseTTL, 10)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("workflow jobs: could not look for jobs to take over", zap.Error(err))
		}
		for _, l := range leases {
			if _, err := w.adopt(l); err != nil {
				w.log.Warn("workflow job: could not take it over", zap.String("job", l.JobID), zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// adopt follows a job this process now holds the lease of.
func (w *Workflows) adopt(l state.Lease) (*job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wf, err := w.o.Store.Workflow(ctx, l.JobID)
	if err != nil {
		return nil, err
	}
	var in jobInput
	_ = json.Unmarshal(wf.Input, &in)
	jctx, jcancel := context.WithCancel(context.Background())
	j := &job{
		info: JobInfo{ID: wf.ID, Tool: wf.Kind, ServerID: in.ServerID, State: Running, Stages: 5,
			Message: "taken over from a hostkey-mcp process that stopped", Started: wf.Created},
		cancel: jcancel, authCtx: context.Background(), adopted: true, lease: &jobLease{l: l},
		done: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	for _, s := range wf.Steps {
		if s.Name == finalStep {
			continue // a read recorded for resume, not a request
		}
		var si stepIntent
		var sr stepResult
		_ = json.Unmarshal(s.Intent, &si)
		_ = json.Unmarshal(s.Result, &sr)
		st := Step{Action: si.Action, OK: s.Done && sr.OK, Error: sr.Error}
		if !s.Done {
			st.Error = "unknown: the process stopped while sending it"
		}
		j.info.Steps = append(j.info.Steps, st)
	}
	if w.o.Events != nil {
		j.onChange = func(info JobInfo) { w.o.Events.RecordJob(context.Background(), info) }
	}
	w.jobs.add(j, "")
	w.log.Info("workflow job taken over from a process that stopped", zap.String("job", wf.ID), zap.String("tool", wf.Kind),
		zap.Int64("server", in.ServerID), zap.String("previous_owner", wf.Owner), zap.Int64("epoch", l.Epoch))
	call := &policy.Call{Tool: wf.Kind, Class: schemas.Read, Args: map[string]any{"job_id": wf.ID}}
	if in.ServerID != 0 {
		call.ServerIDs = []int64{in.ServerID}
	}
	w.o.Policy.Note(ctx, call, policy.DecisionAllowed, "job taken over from a process that stopped (previous owner "+wf.Owner+"): followed only, nothing is sent", "")
	j.update(func(*JobInfo) {})
	go w.keepLease(j)
	go w.runAdopted(jctx, j, wf)
	return j, nil
}

// runAdopted follows a taken-over job to its end, like run.
func (w *Workflows) runAdopted(ctx context.Context, j *job, wf state.Workflow) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
		w.end(j, err)
	}()
	err = w.resume(ctx, j, wf)
}

// resume decides from the recorded steps what a taken-over job can still follow.
func (w *Workflows) resume(ctx context.Context, j *job, wf state.Workflow) error {
	var key, callback string
	var final *stepResult
	var unknown []string
	sent := map[string]bool{}
	for _, s := range wf.Steps {
		var si stepIntent
		var sr stepResult
		_ = json.Unmarshal(s.Intent, &si)
		_ = json.Unmarshal(s.Result, &sr)
		name := strings.SplitN(s.Name, ":", 2)[0]
		if si.Callback != "" {
			callback = si.Callback
		}
		if s.Name == finalStep {
			if s.Done && sr.Final != "" {
				final = &sr
			}
			continue
		}
		if !s.Done {
			unknown = append(unknown, si.Action)
			sent[s.Name] = true // maybe
			continue
		}
		if sr.OK {
			sent[s.Name] = true
		}
		if sr.Key != "" && (name == "eq_order_instance" || name == "eq_reinstall") {
			key = sr.Key
		}
	}
	var owed string
	if j.info.Tool == ReinstallPXETool && sent["eq_create_pxe"] && !(sent["eq_boot_dev:disk"] && sent["eq_clear_pxe"]) {
		owed = fmt.Sprintf(" CLEAN-UP OWED: boot server %d from disk and clear its PXE config (eq_boot_dev id=%d media=disk, then eq_clear_pxe id=%d); a job taken over sends nothing without a new confirmation.", j.info.ServerID, j.info.ServerID, j.info.ServerID)
	}
	check := fmt.Sprintf("eq_show id=%d", j.info.ServerID)
	if j.info.Tool == OrderTool {
		check = "eq_list and the account's invoices"
	}
	if key == "" {
		if len(unknown) > 0 {
			return fmt.Errorf("the process running this job stopped while sending %s; whether invapi received it is unknown, and it is not sent again: check %s before starting the job again.%s",
				strings.Join(unknown, ", "), check, owed)
		}
		return fmt.Errorf("the process running this job stopped before the install began; nothing further is sent: check %s and start the job again if still wanted.%s", check, owed)
	}
	// The previous owner recorded invapi's final answer: invapi has forgotten the key.
	if final != nil && final.Final == "failed" {
		return fmt.Errorf("the installer reported %q.%s", final.Error, owed)
	}
	var st *invapi.CallbackStatus
	var err error
	if final != nil {
		st = &invapi.CallbackStatus{Done: true}
	} else {
		// Ask invapi first: a key it no longer knows means the install ended while nobody
		// followed it (the last check of the process that died may have been the final one).
		st, err = w.o.Checker.CheckCallback(ctx, key)
	}
	var ie *invapi.Error
	calledBack := false
	if errors.As(err, &ie) && (ie.Kind == invapi.KindAPI || ie.Kind == invapi.KindNotFound) {
		// The previous owner may have got the final answer and died before recording it.
		// The install's own callback (a secret URL only that install was given) settles it.
		if !w.installCalledBack(ctx, j, callback) {
			return fmt.Errorf("invapi no longer knows the install key (%s): the install probably ended while no process followed it; check %s.%s", ie.Message, check, owed)
		}
		st, err, calledBack = &invapi.CallbackStatus{Done: true}, nil, true
	}
	if len(unknown) > 0 {
		// An intent without a result: settle it by the install's progress.
		if err != nil || (st.Stage == 0 && !st.Done && !st.Failed) {
			why := "invapi shows no install progress yet"
			if err != nil {
				why = "invapi could not be asked: " + err.Error()
			}
			return fmt.Errorf("the process running this job stopped while sending %s (%s); it is not sent again: check %s (eq_callback_check reinstall_key=%s).%s",
				strings.Join(unknown, ", "), why, check, key, owed)
		}
	}
	// invapi answers the final state of an install once and then forgets the key: when
	// that first question already got it, the job ends here rather than asking again.
	switch {
	case err == nil && st.Done:
		msg := "install complete"
		if calledBack {
			msg = "install complete (invapi had forgotten its key; the freshly installed server had called back)"
		}
		j.update(func(i *JobInfo) { i.Stage, i.Message = 5, msg })
	case err == nil && st.Failed:
		return fmt.Errorf("the installer reported %q.%s", strings.TrimSpace(st.Result+" "+st.Scope), owed)
	default:
		if _, err := w.watchInstall(ctx, j, key); err != nil {
			if owed != "" {
				return fmt.Errorf("%w.%s", err, owed)
			}
			return err
		}
	}
	if owed != "" {
		return errors.New("the install finished." + owed)
	}
	if j.info.Tool == OrderTool {
		j.update(func(i *JobInfo) {
			i.Message = "deployed; call eq_update_servers to add the new server to the token's list"
		})
	}
	return nil
}

// installCalledBack reports whether the install's post_install_callback arrived: invapi
// calls it only after a successful deployment, so it means done.
func (w *Workflows) installCalledBack(ctx context.Context, j *job, id string) bool {
	cj, ok := w.o.Callbacks.(callbackJobs)
	if id == "" || !ok {
		return false
	}
	cb, err := cj.Job(ctx, id)
	if err != nil {
		w.log.Warn("workflow job: could not read its install callback", zap.String("job", j.info.ID), zap.String("callback_job", id), zap.Error(err))
		return false
	}
	if cb.State != store.JobDone {
		return false
	}
	w.log.Info("workflow job taken over: invapi forgot the install key, and the install had called back: done",
		zap.String("job", j.info.ID), zap.String("callback_job", id), zap.String("event", cb.EventID))
	return true
}

// claimForWatch takes over a job that no process follows, for the operator's
// server_job_watch. A nil job comes with the text to answer.
func (w *Workflows) claimForWatch(ctx context.Context, id string) (*job, string) {
	none := fmt.Sprintf("No job %s recorded on this data dir. server_job_watch without job_id lists this session's jobs; events_list (kind workflow) shows recorded progress.", id)
	if w.o.Store == nil {
		return nil, none
	}
	l, err := w.o.Store.ClaimWorkflow(ctx, id, w.owner, w.o.LeaseTTL)
	if err == nil {
		j, err := w.adopt(l)
		if err != nil {
			return nil, fmt.Sprintf("Job %s could not be taken over: %v.", id, err)
		}
		return j, ""
	}
	wf, rerr := w.o.Store.Workflow(ctx, id)
	switch {
	case errors.Is(rerr, state.ErrNotFound):
		return nil, none
	case rerr != nil:
		return nil, fmt.Sprintf("Job %s: the store could not be read: %v.", id, rerr)
	case errors.Is(err, state.ErrLeaseHeld):
		return nil, fmt.Sprintf("Job %s (%s) is followed by another hostkey-mcp process on this data dir (%s); its progress is in events_list (kind workflow).", id, wf.Kind, wf.Owner)
	case wf.State != state.WorkflowRunning:
		var info JobInfo
		if json.Unmarshal(wf.Result, &info) == nil && info.ID != "" {
			return nil, fmt.Sprintf("Job %s (%s, server %d) ended: %s — %s.", id, info.Tool, info.ServerID, info.State, info.Message)
		}
		return nil, fmt.Sprintf("Job %s (%s) ended: %s.", id, wf.Kind, wf.State)
	}
	return nil, fmt.Sprintf("Job %s could not be taken over: %v.", id, err)
}
