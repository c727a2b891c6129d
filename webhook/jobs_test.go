package webhook

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/webhook/store"
)

func TestWaitJob(t *testing.T) {
	e := newEnv(t, envOpts{})
	u := e.job(8)
	j := jobIDOf(t, e.st, u)
	done := make(chan store.Job, 1)
	go func() {
		got, err := e.r.WaitJob(context.Background(), j.ID)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	time.Sleep(50 * time.Millisecond)
	get(t, u)
	select {
	case got := <-done:
		if got.State != store.JobDone || got.EventID == "" {
			t.Fatalf("%+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitJob did not return")
	}
	// Already done: returns at once. Unknown: ErrNotFound. Cancelled: ctx error.
	if got, err := e.r.WaitJob(context.Background(), j.ID); err != nil || got.State != store.JobDone {
		t.Fatal(got, err)
	}
	if _, err := e.r.WaitJob(context.Background(), "job_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.r.WaitJob(ctx, jobIDOf(t, e.st, e.job(9)).ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
