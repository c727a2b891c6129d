package webhook

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// TestRetentionPrunesOldEvents: with a retention set, events older than it go at start
// and on every round; newer ones stay; /metrics counts what went.
func TestRetentionPrunesOldEvents(t *testing.T) {
	var clock atomic.Int64
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }

	st := sharedStore(t, state.Memory)
	ctx := context.Background()
	_, _, _ = st.Append(ctx, store.Event{Kind: store.KindLoginAlert, Time: start.Add(-48 * time.Hour)}, "")
	e := newEnv(t, envOpts{cfg: Config{Store: st, Now: now, Retention: 24 * time.Hour, PruneEvery: 10 * time.Millisecond}})

	waitFor(t, func() bool { return e.r.Metrics().PrunedEvents == 1 })
	page, _ := st.Since(ctx, 0, 10, store.Filter{})
	if len(page.Events) != 0 {
		t.Fatalf("the 2-day-old event is still there: %+v", page)
	}

	lu, _ := e.r.LoginAlertURL(ctx)
	do(t, http.MethodPost, lu, "application/json", strings.NewReader(`{"ip":"198.51.100.7"}`))
	time.Sleep(50 * time.Millisecond) // a few rounds: the fresh alert must survive them
	if page, _ := st.Since(ctx, 0, 10, store.Filter{}); len(page.Events) != 1 {
		t.Fatalf("the fresh alert was pruned: %+v", page)
	}

	clock.Store(start.Add(25 * time.Hour).UnixNano())
	waitFor(t, func() bool { return e.r.Metrics().PrunedEvents == 2 })
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(b), `hostkey_webhook_pruned_total{what="events"} 2`) {
		t.Fatalf("metrics:\n%s", b)
	}
	// A reader is told that what it asks for is gone, and where to go on from (events_list
	// says so in words: tools/events).
	if page, err := e.r.Since(ctx, 0, 10, store.Filter{}); err != nil || page.PrunedThrough != 2 || page.Next != 2 {
		t.Fatalf("read after pruning: %+v %v", page, err)
	}
	// Cursors keep counting after the log was emptied.
	if last, _ := st.LastCursor(ctx); last != 2 {
		t.Fatalf("last cursor %d", last)
	}
}

// TestRetentionOffKeepsEverything: without a retention nothing is ever removed.
func TestRetentionOffKeepsEverything(t *testing.T) {
	st := sharedStore(t, state.Memory)
	ctx := context.Background()
	_, _, _ = st.Append(ctx, store.Event{Kind: store.KindLoginAlert, Time: time.Now().Add(-1000 * time.Hour)}, "")
	e := newEnv(t, envOpts{cfg: Config{Store: st, PruneEvery: time.Millisecond}})
	time.Sleep(30 * time.Millisecond)
	if page, _ := st.Since(ctx, 0, 10, store.Filter{}); len(page.Events) != 1 || e.r.Metrics().PrunedEvents != 0 {
		t.Fatalf("pruned without a retention: %+v", page)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
