package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
)

func eachStore(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, openShared(t, state.Memory)) })
	t.Run("sqlite", func(t *testing.T) { fn(t, openShared(t, filepath.Join(t.TempDir(), state.FileName))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openShared(t, statetest.PostgresURL(t))) })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestAppendDedupeAndCursor(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		a, dup, err := s.Append(ctx, Event{Kind: KindInstallDone, ServerID: 7, Time: t0}, "k1")
		if err != nil || dup {
			t.Fatalf("first append: %v dup=%v", err, dup)
		}
		if a.Cursor != 1 || a.ID == "" {
			t.Fatalf("cursor %d id %q", a.Cursor, a.ID)
		}
		again, dup, err := s.Append(ctx, Event{Kind: KindInstallDone, ServerID: 7, Time: t0.Add(time.Minute)}, "k1")
		if err != nil || !dup || again.ID != a.ID || again.Cursor != a.Cursor {
			t.Fatalf("replay: %+v dup=%v err=%v", again, dup, err)
		}
		b, _, _ := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0}, "")
		c, _, _ := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0}, "") // empty key: never deduplicated
		if b.Cursor != 2 || c.Cursor != 3 || b.ID == c.ID {
			t.Fatalf("cursors %d %d ids %s %s", b.Cursor, c.Cursor, b.ID, c.ID)
		}
		last, err := s.LastCursor(ctx)
		if err != nil || last != 3 {
			t.Fatalf("last cursor %d %v", last, err)
		}
	})
}

func TestSincePagingAndFilter(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for i := range 10 {
			kind := KindInstallDone
			if i%2 == 1 {
				kind = KindLoginAlert
			}
			if _, _, err := s.Append(ctx, Event{Kind: kind, ServerID: int64(i % 3), Time: t0}, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		p, err := s.Since(ctx, 0, 4, Filter{})
		if err != nil || len(p.Events) != 4 || p.Next != 4 || !p.More {
			t.Fatalf("page 1: %d events next %d more %v err %v", len(p.Events), p.Next, p.More, err)
		}
		p, _ = s.Since(ctx, p.Next, 100, Filter{})
		if len(p.Events) != 6 || p.Next != 10 || p.More || p.Events[0].Cursor != 5 {
			t.Fatalf("page 2: %d events next %d more %v", len(p.Events), p.Next, p.More)
		}
		p, _ = s.Since(ctx, 10, 100, Filter{})
		if len(p.Events) != 0 || p.Next != 10 {
			t.Fatalf("past the end: %+v", p)
		}
		p, _ = s.Since(ctx, 0, 100, Filter{Kinds: []string{KindLoginAlert}})
		if len(p.Events) != 5 || p.Next != 10 {
			t.Fatalf("kind filter: %d next %d", len(p.Events), p.Next)
		}
		for _, ev := range p.Events {
			if ev.Kind != KindLoginAlert {
				t.Fatalf("filter leaked %s", ev.Kind)
			}
		}
		p, _ = s.Since(ctx, 0, 100, Filter{ServerID: 2})
		if len(p.Events) != 3 {
			t.Fatalf("server filter: %d", len(p.Events))
		}
	})
}

func TestJobs(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		h := []byte("0123456789abcdef0123456789abcdef")
		j := Job{ID: "job_1", SecretHash: h, ServerID: 42, Action: "eq_order_instance", Session: "s1", ServerIPs: []string{"10.0.0.1"}, Created: t0}
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateJob(ctx, j); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate job: %v", err)
		}
		j2 := j
		j2.ID = "job_2"
		if err := s.CreateJob(ctx, j2); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate secret: %v", err)
		}
		got, err := s.JobBySecretHash(ctx, h)
		if err != nil || got.ID != "job_1" || got.State != JobPending || got.ServerIPs[0] != "10.0.0.1" {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if _, err := s.JobBySecretHash(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if _, err := s.GetJob(ctx, "job_x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		done, err := s.MarkDone(ctx, "job_1", t0.Add(time.Hour), "ev_a")
		if err != nil || done.State != JobDone || done.EventID != "ev_a" {
			t.Fatalf("mark done: %+v %v", done, err)
		}
		again, err := s.MarkDone(ctx, "job_1", t0.Add(2*time.Hour), "ev_b")
		if err != nil || again.EventID != "ev_a" || !again.DoneAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("second mark keeps the first completion: %+v %v", again, err)
		}
		if _, err := s.MarkDone(ctx, "job_x", t0, "e"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("mark unknown: %v", err)
		}
	})
}

func TestCompleteJobAtomic(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		jc := s.(JobCompleter)
		if err := s.CreateJob(ctx, Job{ID: "job_1", SecretHash: []byte("h1"), Created: t0}); err != nil {
			t.Fatal(err)
		}
		ev, job, dup, err := jc.CompleteJob(ctx, "job_1", Event{Kind: KindInstallDone, JobID: "job_1", Time: t0}, "install:job_1")
		if err != nil || dup || job.State != JobDone || job.EventID != ev.ID {
			t.Fatalf("complete: %+v %+v %v %v", ev, job, dup, err)
		}
		ev2, _, dup, err := jc.CompleteJob(ctx, "job_1", Event{Kind: KindInstallDone, JobID: "job_1", Time: t0}, "install:job_1")
		if err != nil || !dup || ev2.ID != ev.ID {
			t.Fatalf("replay: %+v %v %v", ev2, dup, err)
		}
		// A missing job must not leave an orphan event behind.
		if _, _, _, err := jc.CompleteJob(ctx, "job_x", Event{Kind: KindInstallDone, Time: t0}, "install:job_x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown job: %v", err)
		}
		if last, _ := s.LastCursor(ctx); last != 1 {
			t.Fatalf("orphan event written: last cursor %d", last)
		}
	})
}

func TestSecret(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		calls := 0
		gen := func() (string, error) { calls++; return fmt.Sprintf("tok%d", calls), nil }
		a, err := s.Secret(ctx, "login", gen)
		if err != nil || a != "tok1" {
			t.Fatal(a, err)
		}
		b, _ := s.Secret(ctx, "login", gen)
		if b != "tok1" || calls != 1 {
			t.Fatalf("secret regenerated: %s after %d calls", b, calls)
		}
		if err := s.SetSecret(ctx, "login", "rotated"); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Secret(ctx, "login", gen); c != "rotated" {
			t.Fatalf("after rotation %s", c)
		}
	})
}

func TestConcurrentAppendsUniqueCursors(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		const n = 200
		var wg sync.WaitGroup
		cursors := make([]uint64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Every second writer replays the key of the one before it.
				ev, _, err := s.Append(ctx, Event{Kind: KindInstallDone, Time: t0}, fmt.Sprint("k", i/2))
				cursors[i], errs[i] = ev.Cursor, err
			}()
		}
		wg.Wait()
		seen := map[uint64]int{}
		for i, c := range cursors {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			seen[c]++
		}
		if len(seen) != n/2 {
			t.Fatalf("%d distinct events for %d distinct keys", len(seen), n/2)
		}
		for c, k := range seen {
			if k != 2 {
				t.Fatalf("cursor %d returned %d times", c, k)
			}
		}
		p, _ := s.Since(ctx, 0, 1000, Filter{})
		if len(p.Events) != n/2 {
			t.Fatalf("stored %d events", len(p.Events))
		}
		for i := 1; i < len(p.Events); i++ {
			if p.Events[i].Cursor <= p.Events[i-1].Cursor {
				t.Fatal("cursors not increasing")
			}
		}
	})
}

// TestSurvivesReopen is the "process restarts between accept and read" case at the
// store level: whatever Append returned is there after Close and a new open of the file.
func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), state.FileName)
	b := openShared(t, path)
	ctx := context.Background()
	ev, _, err := b.Append(ctx, Event{Kind: KindInstallDone, ServerID: 9, Time: t0, Data: map[string]any{"x": "y"}}, "install:job_9")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateJob(ctx, Job{ID: "job_9", SecretHash: []byte("hash9"), Created: t0}); err != nil {
		t.Fatal(err)
	}
	tok, _ := b.Secret(ctx, "login", func() (string, error) { return "tok", nil })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(ctx, Event{Kind: KindWorkflow}, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	b2 := openShared(t, path)
	p, err := b2.Since(ctx, 0, 10, Filter{})
	if err != nil || len(p.Events) != 1 || p.Events[0].ID != ev.ID || p.Events[0].Data["x"] != "y" || !p.Events[0].Time.Equal(t0) {
		t.Fatalf("after reopen: %+v %v", p, err)
	}
	if _, dup, _ := b2.Append(ctx, Event{Kind: KindInstallDone}, "install:job_9"); !dup {
		t.Fatal("dedupe key forgotten across restart")
	}
	if j, err := b2.JobBySecretHash(ctx, []byte("hash9")); err != nil || j.ID != "job_9" {
		t.Fatalf("job after reopen: %+v %v", j, err)
	}
	if tok2, _ := b2.Secret(ctx, "login", func() (string, error) { return "other", nil }); tok2 != tok {
		t.Fatalf("secret changed across restart: %s", tok2)
	}
	next, _, _ := b2.Append(ctx, Event{Kind: KindWorkflow}, "")
	if next.Cursor != 2 {
		t.Fatalf("cursor restarted: %d", next.Cursor)
	}
}

// TestPrune: retention drops the oldest events with their dedupe keys and the expired
// jobs with their secrets; cursors are never reused, even after the log was emptied.
func TestPrune(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		p := s.(Pruner)
		for i := range 4 { // t0, t0+1h, t0+2h, t0+3h
			if _, _, err := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0.Add(time.Duration(i) * time.Hour)}, fmt.Sprintf("k%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		mkJob := func(id string, created time.Time) {
			if err := s.CreateJob(ctx, Job{ID: id, SecretHash: []byte("h-" + id), Created: created}); err != nil {
				t.Fatal(err)
			}
		}
		mkJob("old-done", t0)
		if _, err := s.MarkDone(ctx, "old-done", t0.Add(30*time.Minute), "ev"); err != nil {
			t.Fatal(err)
		}
		mkJob("old-pending", t0)
		mkJob("late-done", t0)
		if _, err := s.MarkDone(ctx, "late-done", t0.Add(5*time.Hour), "ev"); err != nil {
			t.Fatal(err)
		}
		mkJob("new-pending", t0.Add(4*time.Hour))

		res, err := p.Prune(ctx, t0.Add(90*time.Minute)) // drops the events at t0 and t0+1h
		if err != nil || res.Events != 2 || res.Jobs != 2 {
			t.Fatalf("prune: %+v %v", res, err)
		}
		page, _ := s.Since(ctx, 0, 10, Filter{})
		if len(page.Events) != 2 || page.Events[0].Cursor != 3 || page.Next != 4 || page.PrunedThrough != 2 {
			t.Fatalf("after prune: %+v", page)
		}
		if page, _ := s.Since(ctx, 2, 10, Filter{}); page.PrunedThrough != 0 || len(page.Events) != 2 {
			t.Fatalf("a reader already past the pruned events is told of a gap: %+v", page)
		}
		for _, id := range []string{"old-done", "old-pending"} {
			if _, err := s.GetJob(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("job %s survived: %v", id, err)
			}
			if _, err := s.JobBySecretHash(ctx, []byte("h-"+id)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("secret of %s survived: %v", id, err)
			}
		}
		for _, id := range []string{"late-done", "new-pending"} {
			if _, err := s.GetJob(ctx, id); err != nil {
				t.Fatalf("job %s pruned: %v", id, err)
			}
		}
		// The pruned event's dedupe key is gone: the same key is a new event, with a new cursor.
		ev, dup, err := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0.Add(6 * time.Hour)}, "k0")
		if err != nil || dup || ev.Cursor != 5 {
			t.Fatalf("re-append: %+v dup=%v %v", ev, dup, err)
		}
		// A kept event's key still deduplicates.
		if again, dup, _ := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0.Add(7 * time.Hour)}, "k3"); !dup || again.Cursor != 4 {
			t.Fatalf("kept key: %+v dup=%v", again, dup)
		}
		// Empty the log: the next cursor still follows the last one issued.
		if res, err := p.Prune(ctx, t0.Add(24*time.Hour)); err != nil || res.Events != 3 {
			t.Fatalf("prune all: %+v %v", res, err)
		}
		if last, _ := s.LastCursor(ctx); last != 5 {
			t.Fatalf("last cursor after emptying: %d", last)
		}
		// A reader behind an emptied log skips to its end instead of asking forever.
		if page, _ := s.Since(ctx, 1, 10, Filter{}); page.PrunedThrough != 5 || page.Next != 5 || len(page.Events) != 0 {
			t.Fatalf("behind an emptied log: %+v", page)
		}
		if ev, _, _ := s.Append(ctx, Event{Kind: KindLoginAlert, Time: t0.Add(25 * time.Hour)}, ""); ev.Cursor != 6 {
			t.Fatalf("cursor reused: %d", ev.Cursor)
		}
	})
}

// TestPruneMany: a prune that removes long runs leaves nothing behind (no entry skipped).
func TestPruneMany(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for i := range 300 {
			if _, _, err := s.Append(ctx, Event{Kind: KindWorkflow, Time: t0}, fmt.Sprintf("k%d", i)); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if err := s.CreateJob(ctx, Job{ID: fmt.Sprintf("j%d", i), SecretHash: []byte(fmt.Sprintf("h%d", i)), Created: t0}); err != nil {
					t.Fatal(err)
				}
			}
		}
		res, err := s.(Pruner).Prune(ctx, t0.Add(time.Second))
		if err != nil || res.Events != 300 || res.Jobs != 100 {
			t.Fatalf("prune: %+v %v", res, err)
		}
		if page, _ := s.Since(ctx, 0, 500, Filter{}); len(page.Events) != 0 {
			t.Fatalf("%d events left", len(page.Events))
		}
		for i := 0; i < 300; i += 3 {
			if _, err := s.JobBySecretHash(ctx, []byte(fmt.Sprintf("h%d", i))); !errors.Is(err, ErrNotFound) {
				t.Fatalf("job j%d left: %v", i, err)
			}
		}
		// Every dedupe key went with its event.
		for i := range 300 {
			if _, dup, _ := s.Append(ctx, Event{Kind: KindWorkflow, Time: t0}, fmt.Sprintf("k%d", i)); dup {
				t.Fatalf("dedupe key k%d survived", i)
			}
		}
	})
}
