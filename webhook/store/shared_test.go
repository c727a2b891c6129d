package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

func openShared(t *testing.T, target string) *Shared {
	t.Helper()
	st, err := state.Open(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	s := NewShared(st)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// An events.db of an earlier version is imported once on first start: events keep
// their cursors and dedupe keys, jobs and the login-alert secret come along, the file
// is renamed, and a second start imports nothing.
func TestImportBoltOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	b, err := OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{"k1", "k2", "k3", "k4"} {
		if _, _, err := b.Append(ctx, Event{Kind: KindLoginAlert, Time: t0.Add(time.Duration(i) * time.Hour), Data: map[string]any{"n": i}}, key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Prune(ctx, t0.Add(90*time.Minute)); err != nil { // cursors 1, 2 gone
		t.Fatal(err)
	}
	if err := b.CreateJob(ctx, Job{ID: "job1", SecretHash: []byte("hash1"), ServerID: 9, Action: "eq_order_instance", Created: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Secret(ctx, "login_alerts", func() (string, error) { return "tok-123", nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(dir, state.FileName)
	s := openShared(t, target)
	n, err := ImportBolt(ctx, path, s.State())
	if err != nil || n != 2 {
		t.Fatalf("import: %d events, %v", n, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("events.db still in place: %v", err)
	}
	if _, err := os.Stat(path + ".imported"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Since(ctx, 0, 10, Filter{})
	if err != nil || len(p.Events) != 2 || p.Events[0].Cursor != 3 || p.PrunedThrough != 2 || p.Events[1].Data["n"] != float64(3) {
		t.Fatalf("imported log: %+v %v", p, err)
	}
	if ev, dup, _ := s.Append(ctx, Event{Kind: KindLoginAlert}, "k4"); !dup || ev.Cursor != 4 {
		t.Fatalf("an imported dedupe key: %+v dup=%v", ev, dup)
	}
	if ev, dup, _ := s.Append(ctx, Event{Kind: KindLoginAlert}, "k1"); dup || ev.Cursor != 5 {
		t.Fatalf("a new event after the import: %+v dup=%v", ev, dup)
	}
	j, err := s.JobBySecretHash(ctx, []byte("hash1"))
	if err != nil || j.ID != "job1" || j.Action != "eq_order_instance" || j.State != JobPending {
		t.Fatalf("imported job: %+v %v", j, err)
	}
	if tok, err := s.Secret(ctx, "login_alerts", func() (string, error) { return "new", nil }); err != nil || tok != "tok-123" {
		t.Fatalf("imported secret: %q %v", tok, err)
	}
	// Second start: nothing to import, nothing changes.
	if n, err := ImportBolt(ctx, path, s.State()); err != nil || n != 0 {
		t.Fatalf("second import: %d %v", n, err)
	}
	// A stale copy put back is not imported twice (the marker says it was).
	if err := os.Rename(path+".imported", path); err != nil {
		t.Fatal(err)
	}
	if n, err := ImportBolt(ctx, path, s.State()); err != nil || n != 0 {
		t.Fatalf("re-import: %d %v", n, err)
	}
	if last, _ := s.LastCursor(ctx); last != 5 {
		t.Fatalf("last cursor %d", last)
	}
}

// A bbolt file held open by a running older process stops the start with a clear error.
func TestImportBoltLocked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	b, err := OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := openShared(t, filepath.Join(dir, state.FileName))
	if _, err := ImportBolt(context.Background(), path, s.State()); err == nil {
		t.Fatal("imported a file another process holds")
	} else {
		t.Log(err)
	}
}
