package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// The outbox over both engines: a destination's rows and cursor commit together, a
// lease fences a process that lost the destination, outcomes move rows to delivered or
// dead, and the webhook id is stable per event and destination.
func TestOutboxLeaseEnqueueOutcomes(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		s := open()
		ob, ok := s.(state.Outbox)
		if !ok {
			t.Fatal("the store does not implement state.Outbox")
		}
		a := app(t, s, ev("install_done", 1, "a"), "")
		b := app(t, s, ev("login_alert", 0, "b"), "")
		c := app(t, s, ev("workflow", 2, "c"), "")

		l1 := must(ob.ClaimDestination(ctx, "d1", "p1", 0, time.Minute)).ok(t)
		if _, err := ob.ClaimDestination(ctx, "d1", "p2", 0, time.Minute); !errors.Is(err, state.ErrLeaseHeld) {
			t.Fatalf("second owner while the lease is live: %v", err)
		}
		// b is filtered out by the caller: upTo still covers it.
		if err := ob.Enqueue(ctx, l1, []state.Event{a, c}, c.Cursor); err != nil {
			t.Fatal(err)
		}
		// Enqueuing again from the old cursor is refused: a row is never written twice.
		if err := ob.Enqueue(ctx, l1, []state.Event{c}, c.Cursor); err == nil {
			t.Fatal("enqueue of an event at or below the cursor was accepted")
		}
		p := must(ob.PendingDeliveries(ctx, "d1", 10)).ok(t)
		if len(p) != 2 || p[0].Event.Cursor != a.Cursor || p[1].Event.Cursor != c.Cursor || string(p[1].Event.Data) != `"c"` {
			t.Fatalf("pending: %+v", p)
		}
		if p[0].WebhookID != state.WebhookID("d1", a.ID) || p[0].WebhookID == state.WebhookID("d2", a.ID) {
			t.Fatalf("webhook id %q is not the stable one", p[0].WebhookID)
		}
		retry := time.Now().Add(time.Hour).UTC()
		if err := ob.RecordOutcomes(ctx, l1, []state.DeliveryOutcome{{Cursor: a.Cursor, Delivered: true}, {Cursor: c.Cursor, NextAttempt: retry, Error: "HTTP 503"}}); err != nil {
			t.Fatal(err)
		}
		p = must(ob.PendingDeliveries(ctx, "d1", 10)).ok(t)
		if len(p) != 1 || p[0].Attempts != 1 || p[0].LastError != "HTTP 503" || !p[0].NextAttempt.Equal(retry.Truncate(time.Microsecond)) && !p[0].NextAttempt.Equal(retry) {
			t.Fatalf("after outcomes: %+v", p)
		}

		// Another process takes the destination over once the lease expires: the old
		// owner is fenced off.
		s2 := open().(state.Outbox)
		short := must(ob.ClaimDestination(ctx, "d1", "p1", 0, time.Millisecond)).ok(t)
		if short.Epoch != l1.Epoch {
			t.Fatalf("renewal changed the epoch: %d → %d", l1.Epoch, short.Epoch)
		}
		time.Sleep(5 * time.Millisecond) // let the 1 ms lease lapse (not a timing assertion)
		l2 := must(s2.ClaimDestination(ctx, "d1", "p2", 0, time.Minute)).ok(t)
		if l2.Epoch != l1.Epoch+1 {
			t.Fatalf("takeover epoch %d, want %d", l2.Epoch, l1.Epoch+1)
		}
		if err := ob.RecordOutcomes(ctx, l1, []state.DeliveryOutcome{{Cursor: c.Cursor, Delivered: true}}); !errors.Is(err, state.ErrFenced) {
			t.Fatalf("old owner wrote after the takeover: %v", err)
		}
		if err := s2.RecordOutcomes(ctx, l2, []state.DeliveryOutcome{{Cursor: c.Cursor, Dead: true, Error: "gave up after 24h"}}); err != nil {
			t.Fatal(err)
		}
		dead := must(s2.DeadLetters(ctx, "", 10)).ok(t)
		if len(dead) != 1 || dead[0].Event.Cursor != c.Cursor || dead[0].LastError != "gave up after 24h" || dead[0].State != state.DeliveryDead {
			t.Fatalf("dead letters: %+v", dead)
		}
		if err := s2.DisableDestination(ctx, l2, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		st := must(ob.OutboxStats(ctx)).ok(t)
		if len(st) != 1 || st[0].Delivered != 1 || st[0].Dead != 1 || st[0].Pending != 0 || st[0].Disabled != "410 Gone" || st[0].Through != c.Cursor || st[0].Owner != "p2" {
			t.Fatalf("stats: %+v", st)
		}
		if l := must(s2.ClaimDestination(ctx, "d1", "p2", 0, time.Minute)).ok(t); l.Disabled != "410 Gone" {
			t.Fatalf("claim of a disabled destination: %+v", l)
		}
		if err := ob.EnableDestination(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		if l := must(s2.ClaimDestination(ctx, "d1", "p2", 0, time.Minute)).ok(t); l.Disabled != "" {
			t.Fatalf("re-enabled destination still disabled: %+v", l)
		}
		// Retention: delivered and dead rows older than the cutoffs go; the counts follow.
		if n := must(ob.PruneOutbox(ctx, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))).ok(t); n != 0 {
			t.Fatalf("pruned %d recent rows", n)
		}
		if n := must(ob.PruneOutbox(ctx, time.Now().Add(time.Hour), time.Now().Add(-time.Hour))).ok(t); n != 1 {
			t.Fatalf("pruned %d delivered rows, want 1", n)
		}
		if st := must(ob.OutboxStats(ctx)).ok(t); st[0].Delivered != 0 || st[0].Dead != 1 {
			t.Fatalf("after pruning: %+v", st)
		}
		// A new destination starts at the cursor it is given (not the whole history).
		l3 := must(ob.ClaimDestination(ctx, "d2", "p1", b.Cursor, time.Minute)).ok(t)
		if err := ob.Enqueue(ctx, l3, []state.Event{a}, c.Cursor); err == nil {
			t.Fatal("an event before the start cursor was enqueued")
		}
	})
}
