package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hostkey/hostkey-mcp/state"
)

func openShared(t *testing.T, target string) *Shared {
	t.Helper()
	s, err := OpenShared(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
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
	// What an earlier version left after retention removed cursors 1 and 2: their
	// events are gone, a stale dedupe key (k1) still points at one of them.
	writeEventsDB(t, path, legacyDB{
		seq: 4,
		events: []Event{
			{Cursor: 3, ID: "ev_3", Kind: KindLoginAlert, Time: t0.Add(2 * time.Hour), Data: map[string]any{"n": 2}},
			{Cursor: 4, ID: "ev_4", Kind: KindLoginAlert, Time: t0.Add(3 * time.Hour), Data: map[string]any{"n": 3}},
		},
		dedupe:  map[string]uint64{"k1": 1, "k3": 3, "k4": 4},
		jobs:    []Job{{ID: "job1", SecretHash: []byte("hash1"), ServerID: 9, Action: "eq_order_instance", Created: t0.Add(3 * time.Hour), State: JobPending}},
		secrets: map[string]string{"login_alerts": "tok-123"},
	})

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
	writeEventsDB(t, path, legacyDB{seq: 0})
	b, err := bolt.Open(path, 0o600, nil) // an older process still runs on it
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

// legacyDB is the content of an events.db of an earlier version.
type legacyDB struct {
	seq     uint64 // the events bucket's sequence: the last cursor issued
	events  []Event
	dedupe  map[string]uint64 // dedupe key → cursor
	jobs    []Job
	secrets map[string]string
}

// writeEventsDB writes db at path in the bucket layout of the retired bbolt store (the
// product only reads it: ImportBolt).
func writeEventsDB(t *testing.T, path string, db legacyDB) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	cursorKey := func(c uint64) []byte { return binary.BigEndian.AppendUint64(nil, c) }
	err = b.Update(func(tx *bolt.Tx) error {
		bk := map[string]*bolt.Bucket{}
		for _, name := range []string{"events", "dedupe", "jobs", "secrets", "meta"} {
			if bk[name], err = tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := bk["events"].SetSequence(db.seq); err != nil {
			return err
		}
		for _, ev := range db.events {
			v, _ := json.Marshal(ev)
			if err := bk["events"].Put(cursorKey(ev.Cursor), v); err != nil {
				return err
			}
		}
		for k, c := range db.dedupe {
			if err := bk["dedupe"].Put([]byte(k), cursorKey(c)); err != nil {
				return err
			}
		}
		for _, j := range db.jobs {
			v, _ := json.Marshal(j)
			if err := bk["jobs"].Put([]byte(j.ID), v); err != nil {
				return err
			}
			if err := bk["secrets"].Put(j.SecretHash, []byte(j.ID)); err != nil {
				return err
			}
		}
		for name, v := range db.secrets {
			if err := bk["meta"].Put([]byte("secret/"+name), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
