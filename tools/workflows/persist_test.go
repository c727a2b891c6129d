package workflows_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
	"github.com/hostkey/hostkey-mcp/webhook"
)

func openStore(t *testing.T, path string) state.Store {
	t.Helper()
	st, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// A job whose process stops is taken over by the next process on the store and followed
// to its end there; the request that was sent is never sent again (issue "Processes are
// replicas": jobs survive their process).
func TestJobTakenOverByAnotherProcess(t *testing.T) {
	jobTakenOver(t, filepath.Join(t.TempDir(), state.FileName))
}

func TestJobTakenOverByAnotherProcessPostgres(t *testing.T) {
	jobTakenOver(t, statetest.PostgresURL(t))
}

func jobTakenOver(t *testing.T, path string) {
	var opts workflows.Options
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store = openStore(t, path)
		o.Owner = "process-a"
		opts = *o
	})
	gate := e.gated()
	args := reinstallArgs()
	args["wait_seconds"] = 0
	res, err := e.call(t, t.Context(), workflows.ReinstallTool, args)
	if err != nil {
		t.Fatal(err)
	}
	info := jobInfo(t, res)
	if info.State != workflows.Running || !strings.Contains(toolstest.Text(res), "takes the job over") {
		t.Fatalf("handle: %s", toolstest.Text(res))
	}
	// Process A stops once the install is under way: it hands the job over.
	for e.wf.Jobs(0)[0].Key == "" {
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	e.wf.Shutdown(sctx)
	cancel()
	if got := e.wf.Jobs(0); len(got) != 1 || got[0].State != workflows.Detached {
		t.Fatalf("after shutdown A shows %+v", got)
	}
	// Process B, on the same store and invapi, takes it over and follows it to its end.
	opts.Store, opts.Owner, opts.Operator = openStore(t, path), "process-b", true
	b, err := workflows.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	tctx, stop := context.WithCancel(t.Context())
	defer stop()
	go b.TakeOver(tctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		jobs := b.Jobs(0)
		if len(jobs) == 1 && jobs[0].State != workflows.Running {
			if jobs[0].State != workflows.Done || jobs[0].ID != info.ID {
				t.Fatalf("taken-over job ended %+v", jobs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process B did not finish the job: %+v", jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.sent("eq", "order_instance"); n != 1 {
		t.Fatalf("order_instance sent %d times, want 1", n)
	}
	wf, err := opts.Store.Workflow(t.Context(), info.ID)
	if err != nil || wf.State != state.WorkflowDone || wf.Owner != "" && wf.Owner != "process-b" {
		t.Fatalf("stored job %+v %v", wf, err)
	}
	for _, s := range wf.Steps {
		if strings.Contains(string(s.Intent)+string(s.Result), "Secret-pass1") {
			t.Fatal("the root password was stored with the job")
		}
	}
}

// An intent without a result (the process died while sending) is never repeated: the
// process that takes the job over asks invapi and, unable to settle it, ends the job
// saying what to check.
func TestTakenOverJobDoesNotRepeatUnknownStep(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), state.FileName)
	st := openStore(t, path)
	l, err := st.CreateWorkflow(ctx, state.Workflow{ID: "job-00000000000000aa", Kind: workflows.ReinstallTool, State: state.WorkflowRunning,
		Input: []byte(`{"server_id":40102}`), Created: time.Now()}, "dead", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StepIntent(ctx, l, "eq_order_instance", []byte(`{"action":"eq/order_instance"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.ReleaseLease(ctx, l); err != nil { // as if its lease had expired
		t.Fatal(err)
	}
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner, o.Operator = st, "cli", true
	})
	res := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": "job-00000000000000aa", "wait_seconds": 10})
	text := toolstest.Text(res)
	if !res.IsError || !strings.Contains(text, "not sent again") || !strings.Contains(text, "eq_show id=40102") {
		t.Fatalf("watch of a job that died mid-send: %s", text)
	}
	if n := e.sent("eq", "order_instance"); n != 0 {
		t.Fatalf("order_instance sent %d times by the process that took the job over", n)
	}
}

// A process that dies keeps its lease until it expires; then a server takes the job over
// and finishes it. (The dead process is simulated by a store it can no longer write to.)
func TestJobTakenOverAfterLeaseExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), state.FileName)
	var opts workflows.Options
	deadStore, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner, o.LeaseTTL = deadStore, "dies", 300*time.Millisecond
		opts = *o
	})
	gate := e.gated()
	args := reinstallArgs()
	args["wait_seconds"] = 0
	info := jobInfo(t, toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args))
	for e.wf.Jobs(0)[0].Key == "" {
		time.Sleep(5 * time.Millisecond)
	}
	_ = deadStore.Close() // the process is gone: no renewal, no writes, and (its gate
	// never opens) no more requests
	// The dead process's lease is short so the test need not wait; the new owner's is
	// longer, so a late renewal on a loaded machine cannot fence its own steps.
	opts.Store, opts.Owner, opts.LeaseTTL = openStore(t, path), "server", 2*time.Second
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		e.st.Sim.Advance(d)
		return ctx.Err()
	}
	b, err := workflows.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tctx, stop := context.WithCancel(t.Context())
	defer stop()
	go b.TakeOver(tctx)
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Jobs(0)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job of the dead process was not taken over after its lease expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer close(gate)
	for {
		if jobs := b.Jobs(0); jobs[0].State != workflows.Running {
			if jobs[0].State != workflows.Done || jobs[0].ID != info.ID {
				t.Fatalf("taken-over job ended %+v", jobs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the taken-over job did not finish: %+v", b.Jobs(0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.sent("eq", "order_instance"); n != 1 {
		t.Fatalf("order_instance sent %d times, want 1", n)
	}
	e.wf.Shutdown(t.Context())
}

// A job taken over whose install key invapi no longer knows (the install ended while no
// process followed it) ends at once saying so, instead of polling a dead key.
func TestTakenOverJobWithForgottenKey(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), state.FileName))
	deadJob(t, st, "job-00000000000000bb",
		[3]string{"eq_order_instance", `{"action":"eq/order_instance"}`, `{"ok":true,"key":"00000000000000000000000000000000"}`})
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner, o.Operator = st, "cli", true
	})
	res := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": "job-00000000000000bb", "wait_seconds": 10})
	if text := toolstest.Text(res); !res.IsError || !strings.Contains(text, "no longer knows the install key") {
		t.Fatalf("watch of a job whose key is gone: %s", text)
	}
}

// invapi answers an install's final state once and then forgets the key. A job taken over
// after its install finished got that answer from its first question, ignored it, asked
// again, and polled a forgotten key until its watch ran out (seen in the multi-process
// test under -race). It now ends done from that first answer.
func TestTakenOverJobWhoseInstallAlreadyFinished(t *testing.T) {
	ctx := t.Context()
	st := openStore(t, filepath.Join(t.TempDir(), state.FileName))
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner, o.Operator = st, "cli", true
	})
	// The install a dead process started, finished by now.
	resp, err := e.st.Client.Do(ctx, &invapi.Request{Module: "eq", Action: "order_instance", Params: map[string]any{
		"id": 40102, "location_name": "NL", "os_id": 187, "root_pass": "Secret-pass1", "pin": e.st.Sim.PIN()}})
	if err != nil {
		t.Fatal(err)
	}
	key := resp.Key
	if key == "" {
		t.Fatalf("no install key in %s", resp.Body)
	}
	e.st.Sim.Advance(time.Hour)
	deadJob(t, st, "job-00000000000000cc",
		[3]string{"eq_order_instance", `{"action":"eq/order_instance"}`, `{"ok":true,"key":"` + key + `"}`})
	res := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": "job-00000000000000cc", "wait_seconds": 10})
	if text := toolstest.Text(res); res.IsError || !strings.Contains(text, "done") {
		t.Fatalf("watch of a job whose install had finished: %s", text)
	}
	if n := e.sent("eq_callback", "check"); n != 1 {
		t.Errorf("asked invapi %d times; the first answer was final", n)
	}
}

// deadJob records a reinstall job of server 40102 as a process that died would leave
// it: running, its steps (name, intent, result) done, its lease released.
func deadJob(t *testing.T, st state.Store, id string, steps ...[3]string) {
	t.Helper()
	ctx := t.Context()
	l, err := st.CreateWorkflow(ctx, state.Workflow{ID: id, Kind: workflows.ReinstallTool, State: state.WorkflowRunning,
		Input: []byte(`{"server_id":40102}`), Created: time.Now()}, "dead", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if _, err := st.StepIntent(ctx, l, s[0], []byte(s[1])); err != nil {
			t.Fatal(err)
		}
		if err := st.StepDone(ctx, l, s[0], []byte(s[2])); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
}

// blockingFinish holds FinishWorkflow until released, so a test can look at the job
// while its end is being written to the store.
type blockingFinish struct {
	state.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingFinish) FinishWorkflow(ctx context.Context, l state.Lease, st string, result []byte) error {
	close(b.entered)
	<-b.release
	return b.Store.FinishWorkflow(ctx, l, st, result)
}

// A job is reported ended only once its end is in the store: otherwise a second process
// (or server_job_watch from a new CLI) reads "running" for a job this process already
// reported done.
func TestJobEndIsStoredBeforeItIsVisible(t *testing.T) {
	bs := &blockingFinish{Store: openStore(t, filepath.Join(t.TempDir(), state.FileName)),
		entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner = bs, "process-a"
	})
	args := reinstallArgs()
	args["wait_seconds"] = 0
	res, err := e.call(t, t.Context(), workflows.ReinstallTool, args)
	if err != nil {
		t.Fatal(err)
	}
	info := jobInfo(t, res)
	select {
	case <-bs.entered:
	case <-time.After(30 * time.Second):
		close(bs.release)
		t.Fatalf("the job's end was never written: %+v", e.wf.Jobs(0))
	}
	// The end is being written: nobody may see the job ended yet.
	jobs := e.wf.Jobs(0)
	close(bs.release)
	if len(jobs) != 1 || jobs[0].State != workflows.Running {
		t.Fatalf("while its end was not yet stored, the job showed %+v", jobs)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if jobs := e.wf.Jobs(0); len(jobs) == 1 && jobs[0].State != workflows.Running {
			wf, err := bs.Workflow(t.Context(), info.ID)
			if err != nil || wf.State != state.WorkflowDone || jobs[0].State != workflows.Done {
				t.Fatalf("job ended %+v; stored %+v %v", jobs[0], wf, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not end: %+v", e.wf.Jobs(0))
		}
	}
}

// dyingChecker is the first process's invapi: when the install's final answer ("done")
// arrives, the process dies before it can record or report it (its store is closed, and
// nothing more happens in it). invapi answered the final state once and forgot the key.
type dyingChecker struct {
	workflows.Checker
	die  func()
	dead chan struct{}
}

func (d *dyingChecker) CheckCallback(ctx context.Context, key string) (*invapi.CallbackStatus, error) {
	st, err := d.Checker.CheckCallback(ctx, key)
	if err == nil && st.Done {
		d.die()
		close(d.dead)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return st, err
}

// A process died right after invapi told it the install was done (the multi-replica test
// saw it after kill -9): the next process finds the key forgotten. With the install's
// callback in the shared event log it ends the job done, once, sending nothing; without
// one it cannot tell, and says so (issues #15/#16).
func TestTakenOverJobAfterFinalAnswerLost(t *testing.T) {
	for _, cb := range []bool{true, false} {
		t.Run(map[bool]string{true: "callback", false: "no-callback"}[cb], func(t *testing.T) {
			finalAnswerLost(t, filepath.Join(t.TempDir(), state.FileName), cb)
		})
	}
}

func TestTakenOverJobAfterFinalAnswerLostPostgres(t *testing.T) {
	for _, cb := range []bool{true, false} {
		t.Run(map[bool]string{true: "callback", false: "no-callback"}[cb], func(t *testing.T) {
			finalAnswerLost(t, statetest.PostgresURL(t), cb)
		})
	}
}

func finalAnswerLost(t *testing.T, path string, withCallback bool) {
	var rcv *webhook.Receiver
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rcv.Handler().ServeHTTP(w, r) }))
	defer hooks.Close()
	deadStore, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var opts workflows.Options
	dc := &dyingChecker{die: func() { _ = deadStore.Close() }, dead: make(chan struct{})}
	e := newEnvStack(t, mcp.ElicitationResponseActionAccept, func(o *stack.Options) {
		if withCallback {
			o.Receiver = webhook.Config{PublicURL: hooks.URL}
		}
	}, func(o *workflows.Options) {
		opts = *o
		dc.Checker = o.Checker
		// A lease long enough that a loaded machine does not let it lapse before the
		// process dies (its steps need a live lease); the next process waits it out.
		o.Store, o.Owner, o.LeaseTTL, o.Checker = deadStore, "dies", time.Second, dc
	})
	rcv = e.st.Full.Receiver
	args := reinstallArgs()
	args["wait_seconds"] = 0
	info := jobInfo(t, toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args))
	select {
	case <-dc.dead:
	case <-time.After(30 * time.Second):
		t.Fatalf("the install never finished: %+v", e.wf.Jobs(0))
	}
	if sv, _ := e.st.Sim.Server(40102); len(sv.Callbacks) != map[bool]int{true: 1, false: 0}[withCallback] ||
		withCallback && sv.Callbacks[0].Status != http.StatusOK {
		t.Fatalf("the install's callbacks: %+v", sv.Callbacks)
	}
	opts.Store, opts.Owner, opts.LeaseTTL = openStore(t, path), "server", time.Second
	end, stop := takeOverUntilEnd(t, opts)
	defer stop()
	wf, err := opts.Store.Workflow(t.Context(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if withCallback {
		if end.ID != info.ID || end.State != workflows.Done || wf.State != state.WorkflowDone {
			t.Fatalf("taken-over job ended %+v; stored %s", end, wf.State)
		}
	} else if end.State != workflows.Failed || !strings.Contains(end.Message, "no longer knows the install key") || wf.State != state.WorkflowFailed {
		t.Fatalf("without a callback the job ended %+v; stored %s", end, wf.State)
	}
	if n := e.sent("eq", "order_instance"); n != 1 {
		t.Fatalf("order_instance sent %d times, want 1", n)
	}
	if n := e.sent("eq", "abort_reinstall"); n != 0 {
		t.Fatalf("abort_reinstall sent %d times", n)
	}
	for _, s := range wf.Steps {
		if strings.Contains(string(s.Intent)+string(s.Result), "/cb/install/") {
			t.Fatal("the callback URL (a secret) was stored with the job")
		}
	}
	stop()
	e.wf.Shutdown(t.Context())
}

// takeOverUntilEnd runs a new process's Workflows with opts, lets it take over the job of
// a dead one and returns the job once it has ended; stop ends the takeover loop.
func takeOverUntilEnd(t *testing.T, opts workflows.Options) (workflows.JobInfo, context.CancelFunc) {
	t.Helper()
	b, err := workflows.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tctx, stop := context.WithCancel(t.Context())
	go b.TakeOver(tctx)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if jobs := b.Jobs(0); len(jobs) == 1 && jobs[0].State != workflows.Running {
			return jobs[0], stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the job of the dead process was not taken over and ended: %+v", b.Jobs(0))
		}
	}
}

// dyingFinish is the first process's store: the process dies as it goes to record the
// job's end (the store is closed; nothing more is written).
type dyingFinish struct {
	state.Store
	dead chan struct{}
}

func (d *dyingFinish) FinishWorkflow(ctx context.Context, l state.Lease, st string, result []byte) error {
	_ = d.Store.Close()
	close(d.dead)
	return errors.New("the process died")
}

// The final answer of eq_callback/check is recorded with the job before it is acted on:
// a process that dies after that (here: while recording the job's end) leaves it to the
// next process, which ends the job done without asking invapi (which has forgotten the
// key) and without a callback to go by.
func TestTakenOverJobEndsFromRecordedFinalAnswer(t *testing.T) {
	recordedFinalAnswer(t, filepath.Join(t.TempDir(), state.FileName))
}

func TestTakenOverJobEndsFromRecordedFinalAnswerPostgres(t *testing.T) {
	recordedFinalAnswer(t, statetest.PostgresURL(t))
}

func recordedFinalAnswer(t *testing.T, path string) {
	first, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ds := &dyingFinish{Store: first, dead: make(chan struct{})}
	var opts workflows.Options
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		opts = *o
		o.Store, o.Owner, o.LeaseTTL = ds, "dies", time.Second
	})
	args := reinstallArgs()
	args["wait_seconds"] = 0
	info := jobInfo(t, toolstest.CallWith(t, e.st.MCP, workflows.ReinstallTool, args))
	select {
	case <-ds.dead:
	case <-time.After(30 * time.Second):
		t.Fatalf("the job never ended: %+v", e.wf.Jobs(0))
	}
	checks := e.sent("eq_callback", "check")
	opts.Store, opts.Owner, opts.LeaseTTL = openStore(t, path), "server", time.Second
	end, stop := takeOverUntilEnd(t, opts)
	defer stop()
	wf, err := opts.Store.Workflow(t.Context(), info.ID)
	if err != nil || end.ID != info.ID || end.State != workflows.Done || wf.State != state.WorkflowDone {
		t.Fatalf("taken-over job ended %+v; stored %+v %v", end, wf.State, err)
	}
	if n := e.sent("eq_callback", "check"); n != checks {
		t.Errorf("the process taking over asked invapi %d times; the recorded answer was final", n-checks)
	}
	if n := e.sent("eq", "order_instance"); n != 1 {
		t.Fatalf("order_instance sent %d times, want 1", n)
	}
	stop()
	e.wf.Shutdown(t.Context())
}

// A recorded final "failed" ends the job taken over failed with the installer's words,
// without asking invapi (which has forgotten the key).
func TestTakenOverJobWithRecordedFailure(t *testing.T) {
	ctx := t.Context()
	st := openStore(t, filepath.Join(t.TempDir(), state.FileName))
	deadJob(t, st, "job-00000000000000dd",
		[3]string{"eq_order_instance", `{"action":"eq/order_instance"}`, `{"ok":true,"key":"00000000000000000000000000000000"}`},
		[3]string{"eq_callback_check:final", `{"action":"eq_callback/check"}`, `{"ok":true,"key":"00000000000000000000000000000000","final":"failed","error":"error partitioning failed"}`})
	e := newEnv(t, mcp.ElicitationResponseActionAccept, func(o *workflows.Options) {
		o.Store, o.Owner, o.Operator = st, "cli", true
	})
	res := toolstest.CallWith(t, e.st.MCP, workflows.WatchTool, map[string]any{"job_id": "job-00000000000000dd", "wait_seconds": 10})
	if text := toolstest.Text(res); !res.IsError || !strings.Contains(text, "partitioning failed") || strings.Contains(text, "no longer knows") {
		t.Fatalf("watch of a job whose install failed: %s", text)
	}
	if n := e.sent("eq_callback", "check"); n != 0 {
		t.Errorf("asked invapi %d times; the recorded answer was final", n)
	}
	if wf, err := st.Workflow(ctx, "job-00000000000000dd"); err != nil || wf.State != state.WorkflowFailed {
		t.Fatalf("stored %+v %v", wf.State, err)
	}
}
