package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// appendTx is Append inside a write transaction. The cursor comes from the event_head
// row, not a sequence: its row lock (PostgreSQL) or the file lock (SQLite) makes
// cursors commit in order, so a reader that has seen cursor N never later finds a
// committed N-1.
func appendTx(w *wtx, ev Event, dedupeKey string) (Event, bool, error) {
	if ev.Kind == "" {
		return Event{}, false, errors.New("state: append: the event has no kind")
	}
	// Lock the head first (PostgreSQL; SQLite's writer holds the file): appenders in
	// every replica are then serialised before the dedupe lookup, so two of them cannot
	// both miss the same key, and every transaction takes this lock first.
	if w.d.forUpdate != "" && !w.headLocked {
		var head int64
		if err := w.queryRow(`SELECT last FROM event_head WHERE id = 1` + w.d.forUpdate).Scan(&head); err != nil {
			return Event{}, false, fmt.Errorf("state: append: lock the log head: %w", err)
		}
		w.headLocked = true
	}
	if w.d.appendEvent != "" { // one round trip: head, event and dedupe key in one statement
		if dedupeKey != "" {
			if prev, found, err := dedupeHit(w, dedupeKey); err != nil || found {
				return prev, found, err
			}
		}
		ev = fillEvent(ev)
		var pos int64
		if err := w.queryRow(w.d.appendEvent, ev.ID, ev.Kind, ev.ServerID, ns(ev.Time), nonNil(ev.Data), dedupeKey).Scan(&pos); err != nil {
			return Event{}, false, fmt.Errorf("state: append: %w", err)
		}
		ev.Cursor = uint64(pos)
		w.touch(TopicEvents)
		return ev, false, nil
	}
	// The batch assigns cursors from its own count of the head (the writer holds the
	// file, so nobody else appends) and writes the head once, at commit (flushHead).
	pos, err := w.nextCursor()
	if err != nil {
		return Event{}, false, err
	}
	if dedupeKey != "" {
		// Claiming the key first spares the lookup on the common path (a new key); a
		// key already there, from before or from this batch, makes a duplicate.
		n, err := affected(w.exec(`INSERT INTO event_dedupe (dkey, pos) VALUES ($1, $2) ON CONFLICT DO NOTHING`, dedupeKey, pos))
		if err != nil {
			return Event{}, false, fmt.Errorf("state: append: dedupe key: %w", err)
		}
		if n == 0 {
			prev, found, err := dedupeHit(w, dedupeKey)
			if err == nil && !found {
				err = errors.New("dedupe key vanished")
			}
			if err != nil {
				return Event{}, false, fmt.Errorf("state: append: dedupe lookup: %w", err)
			}
			return prev, true, nil
		}
	}
	ev = fillEvent(ev)
	ev.Cursor = uint64(pos)
	if _, err := w.exec(`INSERT INTO events (pos, id, kind, server_id, at_ns, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		pos, ev.ID, ev.Kind, ev.ServerID, ns(ev.Time), nonNil(ev.Data)); err != nil {
		return Event{}, false, fmt.Errorf("state: append: insert: %w", err)
	}
	w.head.last, w.head.dirty = pos, true
	w.touch(TopicEvents)
	return ev, false, nil
}

// dedupeHit returns the event recorded under key, if any.
func dedupeHit(w *wtx, key string) (Event, bool, error) {
	var pos int64
	err := w.queryRow(`SELECT pos FROM event_dedupe WHERE dkey = $1`, key).Scan(&pos)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Event{}, false, nil
	case err != nil:
		return Event{}, false, fmt.Errorf("state: append: dedupe lookup: %w", err)
	}
	prev, err := eventAt(w, pos)
	if err != nil {
		return Event{}, false, err
	}
	return prev, true, nil
}

func fillEvent(ev Event) Event {
	if ev.ID == "" {
		ev.ID = NewID("ev_")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	return ev
}

// nextCursor is the cursor the batch's next event gets: the head read once per batch,
// plus the events the batch has appended.
func (w *wtx) nextCursor() (int64, error) {
	if !w.head.read {
		if err := w.queryRow(`SELECT last FROM event_head WHERE id = 1`).Scan(&w.head.last); err != nil {
			return 0, fmt.Errorf("state: append: read the log head: %w", err)
		}
		w.head.read = true
	}
	return w.head.last + 1, nil
}

// flushHead writes the batch's count of the head, if it appended.
func (w *wtx) flushHead() error {
	if !w.head.dirty {
		return nil
	}
	if _, err := w.exec(`UPDATE event_head SET last = $1 WHERE id = 1`, w.head.last); err != nil {
		return fmt.Errorf("state: append: write the log head: %w", err)
	}
	w.head.dirty = false
	return nil
}

func eventAt(w *wtx, pos int64) (Event, error) {
	var ev Event
	var c, at int64
	err := w.queryRow(`SELECT pos, id, kind, server_id, at_ns, data FROM events WHERE pos = $1`, pos).
		Scan(&c, &ev.ID, &ev.Kind, &ev.ServerID, &at, &ev.Data)
	if err != nil {
		return Event{}, fmt.Errorf("state: event %d: %w", pos, err)
	}
	ev.Cursor, ev.Time = uint64(c), fromNS(at)
	return ev, nil
}

// Append implements Events.
func (s *sqlStore) Append(ctx context.Context, ev Event, dedupeKey string) (Event, bool, error) {
	if ev.Kind == "" {
		return Event{}, false, errors.New("state: append: the event has no kind")
	}
	var out Event
	var dup bool
	err := s.writePlain(ctx, func(w *wtx) error {
		var err error
		out, dup, err = appendTx(w, ev, dedupeKey)
		return err
	})
	if err != nil {
		return Event{}, false, err
	}
	return out, dup, nil
}

// Since implements Events. One statement reads the head and the events, so both come
// from one snapshot on either engine.
func (s *sqlStore) Since(ctx context.Context, cursor uint64, limit int, f Filter) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	var q strings.Builder
	args := []any{int64(cursor)}
	// Within one statement's snapshot no event is newer than the head (they commit
	// together), so the limited sub-select needs no bound from it.
	q.WriteString(`SELECT h.last, h.pruned, e.pos, e.id, e.kind, e.server_id, e.at_ns, e.data
FROM event_head h LEFT JOIN (SELECT pos, id, kind, server_id, at_ns, data FROM events WHERE pos > $1`)
	if f.ServerID != 0 {
		args = append(args, f.ServerID)
		q.WriteString(` AND server_id = $` + strconv.Itoa(len(args)))
	}
	if len(f.Kinds) > 0 {
		q.WriteString(` AND kind IN (`)
		for i, k := range f.Kinds {
			if i > 0 {
				q.WriteString(", ")
			}
			args = append(args, k)
			q.WriteString("$" + strconv.Itoa(len(args)))
		}
		q.WriteString(")")
	}
	args = append(args, limit+1)
	q.WriteString(` ORDER BY pos LIMIT $` + strconv.Itoa(len(args)) + `) e ON 1 = 1 WHERE h.id = 1 ORDER BY e.pos`)
	rows, err := s.query(ctx, q.String(), args...)
	if err != nil {
		return Page{}, fmt.Errorf("state: read events: %w", err)
	}
	defer rows.Close()
	page := Page{Next: cursor}
	var last, pruned int64
	for rows.Next() {
		var (
			pos, sid, at sql.NullInt64
			id, kind     sql.NullString
			data         []byte
		)
		if err := rows.Scan(&last, &pruned, &pos, &id, &kind, &sid, &at, &data); err != nil {
			return Page{}, fmt.Errorf("state: read events: %w", err)
		}
		if !pos.Valid {
			continue
		}
		if len(page.Events) == limit {
			page.More = true
			break
		}
		page.Events = append(page.Events, Event{Cursor: uint64(pos.Int64), ID: id.String, Kind: kind.String,
			ServerID: sid.Int64, Time: fromNS(at.Int64), Data: data})
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("state: read events: %w", err)
	}
	if uint64(pruned) > cursor {
		page.PrunedThrough = uint64(pruned)
	}
	switch {
	case page.More:
		page.Next = page.Events[len(page.Events)-1].Cursor
	case uint64(last) > cursor:
		page.Next = uint64(last)
	}
	return page, nil
}

// LastCursor implements Events.
func (s *sqlStore) LastCursor(ctx context.Context) (uint64, error) {
	var last int64
	if err := s.queryRow(ctx, `SELECT last FROM event_head WHERE id = 1`).Scan(&last); err != nil {
		return 0, fmt.Errorf("state: last cursor: %w", err)
	}
	return uint64(last), nil
}

// pruneEvents removes the events before cutoff, oldest first, stopping at the first
// newer one, with their dedupe keys; event_head.pruned remembers how far.
func pruneEvents(w *wtx, cutoff time.Time) (int, error) {
	var stop sql.NullInt64
	if err := w.queryRow(`SELECT MIN(pos) FROM events WHERE at_ns >= $1`, ns(cutoff)).Scan(&stop); err != nil {
		return 0, fmt.Errorf("state: prune events: %w", err)
	}
	var through int64
	if stop.Valid {
		through = stop.Int64 - 1
	} else if err := w.queryRow(`SELECT COALESCE(MAX(pos), 0) FROM events`).Scan(&through); err != nil {
		return 0, fmt.Errorf("state: prune events: %w", err)
	}
	n, err := affected(w.exec(`DELETE FROM events WHERE pos <= $1`, through))
	if err != nil {
		return 0, fmt.Errorf("state: prune events: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := w.exec(`DELETE FROM event_dedupe WHERE pos <= $1`, through); err != nil {
		return 0, fmt.Errorf("state: prune dedupe keys: %w", err)
	}
	if _, err := w.exec(`UPDATE event_head SET pruned = $1 WHERE id = 1 AND pruned < $1`, through); err != nil {
		return 0, fmt.Errorf("state: prune events: %w", err)
	}
	return int(n), nil
}

var _ Importer = (*sqlStore)(nil)

// ImportEvents implements Importer in one commit.
func (s *sqlStore) ImportEvents(ctx context.Context, events []Event, dedupe map[string]uint64, last uint64) error {
	for i, ev := range events {
		if ev.Cursor == 0 || ev.Kind == "" || ev.ID == "" || (i > 0 && ev.Cursor <= events[i-1].Cursor) || ev.Cursor > last {
			return fmt.Errorf("state: import: event %d (cursor %d): needs a kind, an ID and a cursor above the one before and not above %d", i, ev.Cursor, last)
		}
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.flushHead(); err != nil {
			return err
		}
		w.head = headCount{} // set below
		var head int64
		if err := w.queryRow(`SELECT last FROM event_head WHERE id = 1` + w.d.forUpdate).Scan(&head); err != nil {
			return fmt.Errorf("state: import: %w", err)
		}
		if head != 0 {
			return fmt.Errorf("state: import into a log that already has cursors up to %d: %w", head, ErrExists)
		}
		for _, ev := range events {
			if _, err := w.exec(`INSERT INTO events (pos, id, kind, server_id, at_ns, data) VALUES ($1, $2, $3, $4, $5, $6)`,
				int64(ev.Cursor), ev.ID, ev.Kind, ev.ServerID, ns(ev.Time), nonNil(ev.Data)); err != nil {
				return fmt.Errorf("state: import event %d: %w", ev.Cursor, err)
			}
		}
		for k, pos := range dedupe {
			if _, err := w.exec(`INSERT INTO event_dedupe (dkey, pos) VALUES ($1, $2)`, k, int64(pos)); err != nil {
				return fmt.Errorf("state: import dedupe key: %w", err)
			}
		}
		pruned := last
		if len(events) > 0 {
			pruned = events[0].Cursor - 1
		}
		if _, err := w.exec(`UPDATE event_head SET last = $1, pruned = $2 WHERE id = 1`, int64(last), int64(pruned)); err != nil {
			return fmt.Errorf("state: import: %w", err)
		}
		w.touch(TopicEvents)
		return nil
	})
}
