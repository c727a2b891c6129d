package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestBatchHeadCountSurvivesRollback runs one batch by hand: the batch counts the log
// head itself and writes it at commit, so a write rolled back to its savepoint must
// give its cursor back, and a key claimed earlier in the same batch must make a
// duplicate. The cursors stay gap-free and the stored head ends at the last one.
func TestBatchHeadCountSurvivesRollback(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	first := app(t, s, "k0") // the head the batch starts from is not 0

	var a, b, dupOfA Event
	var dup bool
	req := func(plain bool, fn func(*wtx) error) *writeReq {
		return &writeReq{fn: fn, done: make(chan error, 1), plain: plain}
	}
	boom := errors.New("boom")
	batch := []*writeReq{
		req(true, func(w *wtx) (err error) { a, _, err = appendTx(w, Event{Kind: "k"}, "ka"); return }),
		req(false, func(w *wtx) error { // appends, then fails: rolled back to its savepoint
			if _, _, err := appendTx(w, Event{Kind: "k"}, "kx"); err != nil {
				return err
			}
			return boom
		}),
		req(true, func(w *wtx) (err error) { b, _, err = appendTx(w, Event{Kind: "k"}, "kb"); return }),
		req(true, func(w *wtx) (err error) { dupOfA, dup, err = appendTx(w, Event{Kind: "k"}, "ka"); return }),
	}
	errs, fatal := s.tryBatch(batch)
	if fatal != nil {
		t.Fatal(fatal)
	}
	if errs[0] != nil || !errors.Is(errs[1], boom) || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errors %v, want only the second write's", errs)
	}
	if a.Cursor != first.Cursor+1 || b.Cursor != first.Cursor+2 {
		t.Errorf("cursors %d, %d after %d: want the next two, the rolled-back write's given back", a.Cursor, b.Cursor, first.Cursor)
	}
	if !dup || dupOfA.Cursor != a.Cursor || dupOfA.ID != a.ID {
		t.Errorf("same key later in the batch: dup %v, cursor %d (id %s), want a duplicate of %d (%s)", dup, dupOfA.Cursor, dupOfA.ID, a.Cursor, a.ID)
	}
	last, err := s.LastCursor(ctx)
	if err != nil || last != b.Cursor {
		t.Fatalf("stored head %d (%v), want %d", last, err, b.Cursor)
	}
	page, err := s.Since(ctx, 0, 10, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 3 {
		t.Fatalf("%d events stored, want 3: %+v", len(page.Events), page.Events)
	}
	for i, e := range page.Events {
		if e.Cursor != first.Cursor+uint64(i) {
			t.Errorf("event %d has cursor %d, want %d (gap-free)", i, e.Cursor, first.Cursor+uint64(i))
		}
	}
	// The rolled-back key is free again; a later append continues after the head.
	c := app(t, s, "kx")
	if c.Cursor != b.Cursor+1 {
		t.Errorf("next append got cursor %d, want %d", c.Cursor, b.Cursor+1)
	}
}

func app(t *testing.T, s *sqlStore, key string) Event {
	t.Helper()
	e, dup, err := s.Append(context.Background(), Event{Kind: "k"}, key)
	if err != nil || dup {
		t.Fatalf("append %s: dup %v, %v", key, dup, err)
	}
	return e
}

// TestWriterConnPragmas checks that every pragma of the writer's connection is applied
// (it is several statements in one Exec).
func TestWriterConnPragmas(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	var cache, ckpt int64
	err = s.write(ctx, func(w *wtx) error {
		if err := w.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
			return err
		}
		return w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&ckpt)
	})
	if err != nil {
		t.Fatal(err)
	}
	if cache != -16384 || ckpt != 4000 {
		t.Errorf("writer connection: cache_size %d, wal_autocheckpoint %d; want -16384, 4000", cache, ckpt)
	}
}
