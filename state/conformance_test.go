package state_test

// One suite for both engines (each): the semantics cannot drift between SQLite and
// PostgreSQL. "Another process" is a second Store opened on the same target.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/state"
)

var ctx = context.Background()

func TestEventsAppendDedupeFilterPages(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		s := open()
		a := app(t, s, ev("install_done", 1, "a"), "k1")
		if a.Cursor != 1 || a.ID == "" {
			t.Fatalf("first event: cursor %d id %q", a.Cursor, a.ID)
		}
		dup, isDup, err := s.Append(ctx, ev("install_done", 1, "other"), "k1")
		if err != nil || !isDup || dup.ID != a.ID || dup.Cursor != 1 || string(dup.Data) != `"a"` {
			t.Fatalf("duplicate: %+v dup=%v err=%v", dup, isDup, err)
		}
		app(t, s, ev("login_alert", 0, "b"), "")
		app(t, s, ev("install_done", 2, "c"), "k3")
		if last := must(s.LastCursor(ctx)).ok(t); last != 3 {
			t.Fatalf("last cursor %d, want 3", last)
		}
		p := must(s.Since(ctx, 0, 2, state.Filter{})).ok(t)
		if len(p.Events) != 2 || !p.More || p.Next != 2 || p.Events[0].Cursor != 1 || p.Events[1].Cursor != 2 {
			t.Fatalf("page 1: %+v", p)
		}
		p = must(s.Since(ctx, p.Next, 2, state.Filter{})).ok(t)
		if len(p.Events) != 1 || p.More || p.Next != 3 || string(p.Events[0].Data) != `"c"` {
			t.Fatalf("page 2: %+v", p)
		}
		// A filter that matches nothing after the cursor still moves Next to the end.
		p = must(s.Since(ctx, 0, 10, state.Filter{Kinds: []string{"login_alert"}})).ok(t)
		if len(p.Events) != 1 || p.Events[0].Cursor != 2 || p.Next != 3 {
			t.Fatalf("kind filter: %+v", p)
		}
		p = must(s.Since(ctx, 0, 10, state.Filter{ServerID: 2, Kinds: []string{"install_done", "workflow"}})).ok(t)
		if len(p.Events) != 1 || p.Events[0].Cursor != 3 {
			t.Fatalf("server filter: %+v", p)
		}
		p = must(s.Since(ctx, 3, 10, state.Filter{})).ok(t)
		if len(p.Events) != 0 || p.Next != 3 || p.More {
			t.Fatalf("read at the end: %+v", p)
		}
		if _, _, err := s.Append(ctx, state.Event{}, ""); err == nil {
			t.Fatal("an event without a kind was accepted")
		}
	})
}

// Concurrent appenders in two "processes": cursors are 1..N without gaps or repeats,
// each dedupe key is stored once, and every caller got the cursor that was stored.
func TestEventsConcurrentAppendsContiguous(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		stores := []state.Store{open(), open()}
		const workers, per = 8, 40
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[uint64]string{}
		dups := 0
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[w%2]
				for i := range per {
					key := fmt.Sprintf("w%d-%d", w, i)
					if i%4 == 0 {
						key = fmt.Sprintf("shared-%d", i) // every worker sends this one
					}
					e, dup, err := s.Append(ctx, ev("workflow", int64(w), key), key)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if dup {
						dups++
					} else if prev, ok := got[e.Cursor]; ok {
						t.Errorf("cursor %d issued twice (%s, %s)", e.Cursor, prev, key)
					} else {
						got[e.Cursor] = key
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		unique := workers*per - (workers-1)*(per/4)
		if len(got) != unique || dups != (workers-1)*(per/4) {
			t.Fatalf("%d cursors and %d duplicates, want %d and %d", len(got), dups, unique, (workers-1)*(per/4))
		}
		p := must(stores[1].Since(ctx, 0, 10000, state.Filter{})).ok(t)
		if len(p.Events) != unique {
			t.Fatalf("read %d events, want %d", len(p.Events), unique)
		}
		for i, e := range p.Events {
			if e.Cursor != uint64(i+1) {
				t.Fatalf("event %d has cursor %d: not contiguous", i, e.Cursor)
			}
			if fmt.Sprintf("%q", got[e.Cursor]) != string(e.Data) {
				t.Fatalf("cursor %d holds %s, the appender was told %q", e.Cursor, e.Data, got[e.Cursor])
			}
		}
	})
}

func TestEventsPruneNeverReusesCursors(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		s := open()
		old := time.Now().Add(-48 * time.Hour)
		for i := range 3 {
			e := ev("login_alert", 0, fmt.Sprint(i))
			e.Time = old
			app(t, s, e, fmt.Sprintf("old-%d", i))
		}
		app(t, s, ev("login_alert", 0, "new"), "new")
		e := ev("login_alert", 0, "old after new")
		e.Time = old
		app(t, s, e, "old-after") // behind a newer one: kept (the log stays contiguous)
		res := must(s.Prune(ctx, time.Now().Add(-time.Hour))).ok(t)
		if res.Events != 3 {
			t.Fatalf("pruned %d events, want 3", res.Events)
		}
		p := must(s.Since(ctx, 0, 10, state.Filter{})).ok(t)
		if p.PrunedThrough != 3 || len(p.Events) != 2 || p.Events[0].Cursor != 4 {
			t.Fatalf("after prune: %+v", p)
		}
		if p := must(s.Since(ctx, 3, 10, state.Filter{})).ok(t); p.PrunedThrough != 0 {
			t.Fatalf("a reader past the pruned range was told of a gap: %+v", p)
		}
		// The pruned key is free again; its new event gets a new cursor.
		n, dup, err := s.Append(ctx, ev("login_alert", 0, "again"), "old-0")
		if err != nil || dup || n.Cursor != 6 {
			t.Fatalf("append after prune: %+v dup=%v err=%v", n, dup, err)
		}
		// Pruning everything keeps the cursor count.
		must(s.Prune(ctx, time.Now().Add(time.Hour))).ok(t)
		if last := must(s.LastCursor(ctx)).ok(t); last != 6 {
			t.Fatalf("last cursor %d after pruning everything, want 6", last)
		}
		n = app(t, s, ev("login_alert", 0, "x"), "")
		if n.Cursor != 7 {
			t.Fatalf("cursor %d after pruning everything: reused", n.Cursor)
		}
		if p := must(s.Since(ctx, 2, 10, state.Filter{})).ok(t); p.PrunedThrough != 6 || len(p.Events) != 1 {
			t.Fatalf("read across an emptied log: %+v", p)
		}
	})
}

func app(t testing.TB, s state.Store, e state.Event, key string) state.Event {
	t.Helper()
	out, _, err := s.Append(ctx, e, key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A process is woken when another appends (SQLite by polling, PostgreSQL by NOTIFY).
func TestWakeAcrossProcesses(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		for _, topic := range []state.Topic{state.TopicEvents, state.TopicApprovals} {
			wake := b.Wake(topic)
			select {
			case <-wake:
				t.Fatal("woken before any change")
			default:
			}
			switch topic {
			case state.TopicEvents:
				app(t, a, ev("workflow", 0, "x"), "")
			case state.TopicApprovals:
				if err := a.CreateApproval(ctx, state.Approval{ID: "ap1", Session: "s", Expires: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				must(a.DecideApproval(ctx, "ap1", true, "bot")).ok(t)
			}
			select {
			case <-wake:
			case <-time.After(10 * time.Second):
				t.Fatalf("topic %d: the other process was not woken", topic)
			}
		}
	})
}

func TestInstallJobs(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		s := open()
		j := state.InstallJob{ID: "job1", SecretHash: []byte("hash1"), ServerID: 7, Data: []byte(`{"a":1}`)}
		if err := s.CreateInstallJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		for _, dup := range []state.InstallJob{{ID: "job1", SecretHash: []byte("other")}, {ID: "job2", SecretHash: []byte("hash1")}} {
			if err := s.CreateInstallJob(ctx, dup); !errors.Is(err, state.ErrExists) {
				t.Fatalf("duplicate %s: %v, want ErrExists", dup.ID, err)
			}
		}
		got := must(s.InstallJobBySecret(ctx, []byte("hash1"))).ok(t)
		if got.ID != "job1" || got.State != state.JobPending || got.ServerID != 7 || string(got.Data) != `{"a":1}` {
			t.Fatalf("by secret: %+v", got)
		}
		if _, err := s.InstallJobBySecret(ctx, []byte("nope")); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("unknown secret: %v", err)
		}
		e, job, dup, err := s.CompleteInstallJob(ctx, "job1", ev("install_done", 7, "done"), "job1")
		if err != nil || dup || job.State != state.JobDone || job.EventID != e.ID {
			t.Fatalf("complete: %+v %+v %v %v", e, job, dup, err)
		}
		e2, job2, dup, err := s.CompleteInstallJob(ctx, "job1", ev("install_done", 7, "again"), "job1")
		if err != nil || !dup || e2.ID != e.ID || job2.EventID != e.ID || !job2.DoneAt.Equal(job.DoneAt) {
			t.Fatalf("second complete: %+v %+v %v %v", e2, job2, dup, err)
		}
		if _, _, _, err := s.CompleteInstallJob(ctx, "nojob", ev("install_done", 7, "x"), "nojob"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("complete an unknown job: %v", err)
		}
		// All-or-nothing: the failed completion left no event behind.
		if last := must(s.LastCursor(ctx)).ok(t); last != 1 {
			t.Fatalf("last cursor %d: a failed completion appended its event", last)
		}
		res := must(s.Prune(ctx, time.Now().Add(time.Hour))).ok(t)
		if res.InstallJobs != 1 {
			t.Fatalf("prune removed %d install jobs", res.InstallJobs)
		}
		if _, err := s.InstallJobBySecret(ctx, []byte("hash1")); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("a pruned job's secret still matches: %v", err)
		}
	})
}

// TestInstallJobCompletedBySecret: the lookup by secret and the completion are one
// write; a refusal by build, or an unknown secret, writes nothing; of two processes
// completing the same job at once, one appends and the other sees a duplicate.
func TestInstallJobCompletedBySecret(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		s, other := open(), open()
		for i := range 3 {
			j := state.InstallJob{ID: fmt.Sprint("job", i), SecretHash: []byte(fmt.Sprint("hash", i)), ServerID: int64(10 + i), Data: []byte(`{"a":1}`)}
			if err := s.CreateInstallJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		build := func(j state.InstallJob) (state.Event, string, error) {
			return ev("install_done", j.ServerID, j.ID), "install:" + j.ID, nil
		}
		if _, _, _, err := s.CompleteInstallJobBySecret(ctx, []byte("nope"), build); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("unknown secret: %v, want ErrNotFound", err)
		}
		refuse := errors.New("not from the server's address")
		_, j, _, err := s.CompleteInstallJobBySecret(ctx, []byte("hash0"), func(state.InstallJob) (state.Event, string, error) {
			return state.Event{}, "", refuse
		})
		if !errors.Is(err, refuse) || j.ID != "job0" || j.ServerID != 10 {
			t.Fatalf("refused: %+v %v, want the job and the refusal", j, err)
		}
		if last := must(s.LastCursor(ctx)).ok(t); last != 0 {
			t.Fatalf("last cursor %d: a refused or unknown callback wrote an event", last)
		}
		if got := must(s.InstallJob(ctx, "job0")).ok(t); got.State != state.JobPending {
			t.Fatalf("a refused callback changed the job: %+v", got)
		}
		e, j, dup, err := s.CompleteInstallJobBySecret(ctx, []byte("hash0"), build)
		if err != nil || dup || e.Cursor != 1 || j.ID != "job0" || j.State != state.JobDone || j.EventID != e.ID || j.DoneAt.IsZero() || string(j.Data) != `{"a":1}` {
			t.Fatalf("complete: %+v %+v %v %v", e, j, dup, err)
		}
		stored := must(s.InstallJob(ctx, "job0")).ok(t)
		if stored.State != state.JobDone || stored.EventID != e.ID || !stored.DoneAt.Equal(j.DoneAt) {
			t.Fatalf("stored job %+v, returned %+v", stored, j)
		}
		e2, j2, dup, err := other.CompleteInstallJobBySecret(ctx, []byte("hash0"), build)
		if err != nil || !dup || e2.ID != e.ID || e2.Cursor != e.Cursor || j2.EventID != e.ID || !j2.DoneAt.Equal(j.DoneAt) {
			t.Fatalf("again from another process: %+v %+v %v %v", e2, j2, dup, err)
		}
		// Both processes at once, several times each: one event per job.
		var wg sync.WaitGroup
		var appended atomic.Int64
		for _, st := range []state.Store{s, other, s, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, h := range []string{"hash1", "hash2"} {
					_, j, dup, err := st.CompleteInstallJobBySecret(ctx, []byte(h), build)
					if err != nil || j.State != state.JobDone {
						t.Errorf("%s: %+v %v", h, j, err)
						return
					}
					if !dup {
						appended.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := appended.Load(); n != 2 {
			t.Fatalf("%d completions appended, want 2 (one per job)", n)
		}
		// A job completed another way first (MarkInstallDone), then a callback with a new
		// key: the event is new, but the job keeps its first completion.
		if err := s.CreateInstallJob(ctx, state.InstallJob{ID: "job9", SecretHash: []byte("hash9"), ServerID: 19}); err != nil {
			t.Fatal(err)
		}
		first := time.Unix(1000, 0).UTC()
		must(s.MarkInstallDone(ctx, "job9", first, "ev_first")).ok(t)
		e9, j9, dup, err := s.CompleteInstallJobBySecret(ctx, []byte("hash9"), build)
		if err != nil || dup || e9.Cursor != 4 || j9.State != state.JobDone || j9.EventID != "ev_first" || !j9.DoneAt.Equal(first) {
			t.Fatalf("callback for a job done before: %+v %+v %v %v, want the job's first completion (ev_first at %v)", e9, j9, dup, err, first)
		}
		if last := must(s.LastCursor(ctx)).ok(t); last != 4 {
			t.Fatalf("last cursor %d, want 4", last)
		}
	})
}

func TestWorkflowLeaseFencingAndSteps(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		la := must(a.CreateWorkflow(ctx, state.Workflow{ID: "wf1", Kind: "server_reinstall", Input: []byte(`{"id":1}`)}, "proc-a", time.Hour)).ok(t)
		if la.Epoch != 1 {
			t.Fatalf("epoch %d", la.Epoch)
		}
		if _, err := b.ClaimWorkflow(ctx, "wf1", "proc-b", time.Hour); !errors.Is(err, state.ErrLeaseHeld) {
			t.Fatalf("claim of a live lease: %v", err)
		}
		st := must(a.StepIntent(ctx, la, "reinstall", []byte(`{"os":1}`))).ok(t)
		if st.Done || st.IntentEpoch != 1 {
			t.Fatalf("intent: %+v", st)
		}
		// Process a stops without finishing: it releases its lease (or it expires).
		if err := a.ReleaseLease(ctx, la); err != nil {
			t.Fatal(err)
		}
		lb := must(b.ClaimWorkflow(ctx, "wf1", "proc-b", time.Hour)).ok(t)
		if lb.Epoch != 2 {
			t.Fatalf("takeover epoch %d, want 2", lb.Epoch)
		}
		// The stale owner is fenced off on every write.
		if _, err := a.StepIntent(ctx, la, "other", nil); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("stale intent: %v", err)
		}
		if err := a.StepDone(ctx, la, "reinstall", nil); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("stale done: %v", err)
		}
		if err := a.FinishWorkflow(ctx, la, state.WorkflowDone, nil); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("stale finish: %v", err)
		}
		if _, err := a.RenewLease(ctx, la, time.Hour); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("stale renew: %v", err)
		}
		// The new owner sees the intent without a result: ask invapi, do not repeat.
		wf := must(b.Workflow(ctx, "wf1")).ok(t)
		if len(wf.Steps) != 1 || wf.Steps[0].Done || wf.Steps[0].IntentEpoch != 1 || string(wf.Input) != `{"id":1}` {
			t.Fatalf("workflow after takeover: %+v", wf)
		}
		again := must(b.StepIntent(ctx, lb, "reinstall", []byte(`{"os":2}`))).ok(t)
		if string(again.Intent) != `{"os":1}` || again.IntentEpoch != 1 {
			t.Fatalf("a known step was recorded again: %+v", again)
		}
		if err := b.StepDone(ctx, lb, "reinstall", []byte(`"ok"`)); err != nil {
			t.Fatal(err)
		}
		if err := b.StepDone(ctx, lb, "never-intended", nil); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("done without intent: %v", err)
		}
		must(b.StepIntent(ctx, lb, "wait", nil)).ok(t)
		if err := b.FinishWorkflow(ctx, lb, state.WorkflowDone, []byte(`"finished"`)); err != nil {
			t.Fatal(err)
		}
		if err := b.FinishWorkflow(ctx, lb, state.WorkflowDone, nil); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("finished twice: %v", err)
		}
		wf = must(a.Workflow(ctx, "wf1")).ok(t)
		if wf.State != state.WorkflowDone || len(wf.Steps) != 2 || !wf.Steps[0].Done || wf.Steps[1].Name != "wait" || string(wf.Result) != `"finished"` {
			t.Fatalf("final workflow: %+v", wf)
		}
		if _, err := a.ClaimWorkflow(ctx, "wf1", "proc-a", time.Hour); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("claim of a finished job: %v", err)
		}
	})
}

// A lease that runs out lets another process take the job over, and fences the old owner.
func TestWorkflowLeaseExpiry(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		la := must(a.CreateWorkflow(ctx, state.Workflow{ID: "wf2"}, "proc-a", 50*time.Millisecond)).ok(t)
		var lb state.Lease
		deadline := time.Now().Add(10 * time.Second)
		for {
			l, err := b.ClaimWorkflow(ctx, "wf2", "proc-b", time.Hour)
			if err == nil {
				lb = l
				break
			}
			if !errors.Is(err, state.ErrLeaseHeld) || time.Now().After(deadline) {
				t.Fatalf("claim after expiry: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if lb.Epoch != 2 {
			t.Fatalf("epoch %d", lb.Epoch)
		}
		if _, err := a.StepIntent(ctx, la, "s", nil); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("write with an expired, taken-over lease: %v", err)
		}
	})
}

// Expired jobs are claimed by exactly one of many concurrent claimers.
func TestClaimExpiredOnce(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		stores := []state.Store{open(), open()}
		const jobs = 12
		for i := range jobs {
			l := must(stores[0].CreateWorkflow(ctx, state.Workflow{ID: fmt.Sprint("job", i)}, "dead", time.Hour)).ok(t)
			if err := stores[0].ReleaseLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		owners := map[string]string{}
		var wg sync.WaitGroup
		for c := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprint("claimer", c)
				for {
					ls, err := stores[c%2].ClaimExpired(ctx, owner, time.Hour, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ls) == 0 {
						return
					}
					mu.Lock()
					for _, l := range ls {
						if prev, ok := owners[l.JobID]; ok {
							t.Errorf("%s claimed by %s and %s", l.JobID, prev, owner)
						}
						owners[l.JobID] = owner
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(owners) != jobs {
			t.Fatalf("%d jobs claimed, want %d", len(owners), jobs)
		}
	})
}

func TestApprovalDecidedOnceUsedOnce(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		ap := state.Approval{ID: "ap", Key: "sess1|eq_reboot|h", Session: "sess1", Data: []byte(`"reboot 40101"`), Expires: time.Now().Add(time.Hour)}
		if err := a.CreateApproval(ctx, ap); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateApproval(ctx, ap); !errors.Is(err, state.ErrExists) {
			t.Fatalf("created twice: %v", err)
		}
		if _, err := b.UseApproval(ctx, "ap", "sess1"); !errors.Is(err, state.ErrNotGranted) {
			t.Fatalf("use before a decision: %v", err)
		}
		if got := must(b.ApprovalByKey(ctx, ap.Key)).ok(t); got.ID != "ap" || got.State != state.ApprovalPending {
			t.Fatalf("by key: %+v", got)
		}
		d := must(b.DecideApproval(ctx, "ap", true, "bot")).ok(t)
		if d.State != state.ApprovalApproved || d.Via != "bot" || d.DecidedAt.IsZero() {
			t.Fatalf("decided: %+v", d)
		}
		if _, err := a.DecideApproval(ctx, "ap", false, "page"); !errors.Is(err, state.ErrDecided) {
			t.Fatalf("decided twice: %v", err)
		}
		if _, err := a.UseApproval(ctx, "ap", "sess2"); !errors.Is(err, state.ErrNotGranted) {
			t.Fatalf("another session used it: %v", err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := []state.Store{a, b}[i%2]
				got, err := s.UseApproval(ctx, "ap", "sess1")
				switch {
				case err == nil:
					won.Add(1)
					if got.State != state.ApprovalUsed || string(got.Data) != `"reboot 40101"` {
						t.Errorf("used: %+v", got)
					}
				case !errors.Is(err, state.ErrNotGranted):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("approval used %d times, want once", won.Load())
		}
		if _, err := a.ApprovalByKey(ctx, ap.Key); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("a used approval is still found by key: %v", err)
		}
		// Expired approvals are gone for every purpose.
		if err := a.CreateApproval(ctx, state.Approval{ID: "old", Session: "s", Expires: time.Now().Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DecideApproval(ctx, "old", true, "bot"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("decided an expired approval: %v", err)
		}
		if res := must(a.Prune(ctx, time.Now().Add(-time.Hour))).ok(t); res.Approvals != 1 {
			t.Fatalf("pruned %d approvals", res.Approvals)
		}
	})
}

func TestHandlesTakenOnce(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		if err := a.PutHandle(ctx, "h1", []byte("state"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := a.PutHandle(ctx, "h1", nil, time.Now().Add(time.Hour)); !errors.Is(err, state.ErrExists) {
			t.Fatalf("put twice: %v", err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data, err := []state.Store{a, b}[i%2].TakeHandle(ctx, "h1")
				if err == nil && string(data) == "state" {
					won.Add(1)
				} else if !errors.Is(err, state.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("handle taken %d times", won.Load())
		}
		if err := a.PutHandle(ctx, "h2", []byte("x"), time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.TakeHandle(ctx, "h2"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("took an expired handle: %v", err)
		}
	})
}

func TestCooldownShared(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		if c := must(b.Cooldown(ctx, "pin")).ok(t); c.Failures != 0 || !c.Until.IsZero() {
			t.Fatalf("fresh cool-down: %+v", c)
		}
		c1 := must(a.StartCooldown(ctx, "pin", time.Hour)).ok(t)
		c2 := must(b.StartCooldown(ctx, "pin", time.Minute)).ok(t) // never shortens
		if c2.Failures != 2 || !c2.Until.Equal(c1.Until) {
			t.Fatalf("second failure: %+v after %+v", c2, c1)
		}
		if c := must(b.Cooldown(ctx, "pin")).ok(t); time.Until(c.Until) < 50*time.Minute {
			t.Fatalf("the other process sees %+v", c)
		}
		if err := b.ResetCooldown(ctx, "pin"); err != nil {
			t.Fatal(err)
		}
		if c := must(a.Cooldown(ctx, "pin")).ok(t); c.Failures != 0 {
			t.Fatalf("after reset: %+v", c)
		}
	})
}

func TestRateBucketsAllOrNothing(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		a, b := open(), open()
		req := func(name string, burst float64) state.TokenRequest {
			return state.TokenRequest{Bucket: name, N: 1, Rate: 0, Burst: burst}
		}
		both := []state.TokenRequest{req("global", 2), req("server:1", 1)}
		if r := must(a.TakeTokens(ctx, both)).ok(t); !r.OK {
			t.Fatalf("first take refused: %+v", r)
		}
		r := must(b.TakeTokens(ctx, both)).ok(t)
		if r.OK || r.Blocked != "server:1" {
			t.Fatalf("second take: %+v", r)
		}
		// Nothing was taken from "global" by the refused call.
		if r := must(b.TakeTokens(ctx, []state.TokenRequest{req("global", 2)})).ok(t); !r.OK {
			t.Fatalf("global was drained by a refused call: %+v", r)
		}
		if r := must(a.TakeTokens(ctx, []state.TokenRequest{req("global", 2)})).ok(t); r.OK {
			t.Fatal("global let a third call through with burst 2 and no refill")
		}
		if err := a.RefundTokens(ctx, []state.TokenRequest{req("global", 2), req("global", 2), req("global", 2)}); err != nil {
			t.Fatal(err)
		}
		// Refunds stop at the burst, and concurrent takers in two processes share it.
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := []state.Store{a, b}[i%2].TakeTokens(ctx, []state.TokenRequest{req("global", 2)})
				if err != nil {
					t.Error(err)
				} else if r.OK {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 2 {
			t.Fatalf("%d takes after refunds, want the burst (2)", ok.Load())
		}
		// With a refill rate the refusal says how long to wait.
		slow := state.TokenRequest{Bucket: "slow", N: 1, Rate: 0.5, Burst: 1}
		must(a.TakeTokens(ctx, []state.TokenRequest{slow})).ok(t)
		r = must(b.TakeTokens(ctx, []state.TokenRequest{slow})).ok(t)
		if r.OK || r.RetryAfter <= time.Second || r.RetryAfter > 2*time.Second {
			t.Fatalf("retry after: %+v", r)
		}
		if _, err := a.TakeTokens(ctx, []state.TokenRequest{{Bucket: "", N: 1, Burst: 1}}); err == nil {
			t.Fatal("a nameless bucket was accepted")
		}
	})
}

// Concurrent appends from two processes form one chain that audit.Verify accepts.
func TestAuditChainVerifies(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		stores := []state.Store{open(), open()}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 15 {
					_, err := stores[w%2].AppendAudit(ctx, func(prev string) ([]byte, string, error) {
						return audit.Seal(audit.Entry{Time: time.Now(), Tool: "eq_reboot", Decision: "allowed", Session: fmt.Sprint(w, "-", i), Prev: prev})
					})
					if err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		var buf bytes.Buffer
		n := must(stores[1].ExportAudit(ctx, &buf)).ok(t)
		if n != 60 {
			t.Fatalf("exported %d lines", n)
		}
		if lines, err := audit.Verify(&buf); err != nil || lines != 60 {
			t.Fatalf("verify: %d lines, %v", lines, err)
		}
		seq, hash, err := stores[0].AuditHead(ctx)
		if err != nil || seq != 60 || len(hash) != 64 {
			t.Fatalf("head: %d %q %v", seq, hash, err)
		}
		// A failing sealer writes nothing.
		if _, err := stores[0].AppendAudit(ctx, func(string) ([]byte, string, error) { return nil, "", errors.New("boom") }); err == nil {
			t.Fatal("a failing sealer did not fail the append")
		}
		if seq2, _, _ := stores[0].AuditHead(ctx); seq2 != 60 {
			t.Fatalf("head moved to %d after a failed append", seq2)
		}
	})
}

func TestSecretsRace(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		stores := []state.Store{open(), open()}
		vals := make([]string, 6)
		var wg sync.WaitGroup
		for i := range vals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				vals[i] = must(stores[i%2].Secret(ctx, "login", func() (string, error) { return fmt.Sprint("token-", i), nil })).ok(t)
			}()
		}
		wg.Wait()
		for _, v := range vals {
			if v != vals[0] || v == "" {
				t.Fatalf("processes disagree on the secret: %q", vals)
			}
		}
		if err := stores[0].SetSecret(ctx, "login", "rotated"); err != nil {
			t.Fatal(err)
		}
		if v := must(stores[1].Secret(ctx, "login", nil)).ok(t); v != "rotated" {
			t.Fatalf("after rotation: %q", v)
		}
	})
}

// Reopening migrates nothing twice, and Close makes later calls fail cleanly.
func TestReopenAndClose(t *testing.T) {
	each(t, func(t *testing.T, target string, open func() state.Store) {
		s := open()
		app(t, s, ev("workflow", 0, "x"), "")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Append(ctx, ev("workflow", 0, "y"), ""); !errors.Is(err, state.ErrClosed) {
			t.Fatalf("append after close: %v", err)
		}
		s2 := open()
		if last := must(s2.LastCursor(ctx)).ok(t); last != 1 {
			t.Fatalf("reopened: last cursor %d", last)
		}
		if err := s2.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNewerStoreRefused: a store migrated by a newer hostkey-mcp is refused at Open, on
// the read-only check every start makes as on the locked one.
func TestNewerStoreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), state.FileName)
	s, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := state.Open(ctx, path); err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this hostkey-mcp knows") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open a newer store: %v, want a refusal naming the version", err)
	}
	// Reopening a current store is quick and fine (the read-only check).
	if s, err := state.Open(ctx, filepath.Join(t.TempDir(), state.FileName)); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
}

// An unusable data dir is an error at Open, never a silent fall-back to memory.
func TestOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"", filepath.Join(file, "sub", "state.db"), file} {
		s, err := state.Open(ctx, target)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", target)
		}
		t.Logf("Open(%q): %v", target, err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if s, err := state.Open(ctx, ro); err == nil {
			s.Close()
			t.Fatal("Open of a read-only data dir succeeded")
		}
	}
	s, err := state.Open(ctx, "postgres://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2")
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable PostgreSQL succeeded")
	}
	if bytes.Contains([]byte(err.Error()), []byte("secretpw")) {
		t.Fatalf("the error repeats the password: %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	s, err := state.Open(ctx, state.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Engine() != "sqlite-memory" {
		t.Fatalf("engine %q", s.Engine())
	}
	app(t, s, ev("workflow", 0, "x"), "k")
	if _, dup, _ := s.Append(ctx, ev("workflow", 0, "x"), "k"); !dup {
		t.Fatal("dedupe in memory")
	}
}

// The store holds the login-alert token: its directory is 0700 and its files 0600.
func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := state.Open(ctx, dir+string(os.PathSeparator))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	app(t, s, ev("workflow", 0, "x"), "") // the WAL exists once something was written
	if st, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v", st.Mode())
	}
	for _, name := range []string{state.FileName, state.FileName + "-wal"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: mode %v", name, st.Mode())
		}
	}
}
