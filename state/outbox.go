package state

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The outbox holds outbound deliveries (chat-ops webhooks): one row per event and
// destination, with its attempts, next attempt and outcome.
//
// Rows are written by a follower, not by the event append path: the destination's lease
// holder reads the event log by cursor and, in one transaction, inserts the rows for the
// events it read and moves the destination's cursor ("through") past them. That cannot
// miss an event: cursors are gapless and commit in order (appendTx), and the rows and
// the cursor commit together, so a crash leaves either both or neither. It is preferred
// to writing rows inside Append because destinations are configuration of the
// delivering process (flags, secrets), not of the process that appends: the webhook
// receiver, a workflow or a replica without --notify-url appends, and the events still
// reach every destination. An event pruned before its destination's follower read it
// is the one loss, and retention is days while the follower runs within seconds.

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead" // given up: dead letter
)

// OutboxLease is the right of one owner to deliver a destination's rows. Writes carry it
// and fail with ErrFenced once another owner took the destination over (new epoch).
type OutboxLease struct {
	Dest  string
	Owner string
	Epoch int64
	Until time.Time
	// Through is the destination's cursor when the lease was taken: its rows exist for
	// every wanted event up to it.
	Through uint64
	// Disabled says why the destination is disabled (410 Gone), "" when it is not.
	Disabled string
}

// Delivery is one event to deliver to one destination.
type Delivery struct {
	Dest        string
	WebhookID   string // stable per event and destination: the receiver dedupes on it
	Event       Event  // a copy: retention may prune the log before delivery ends
	State       string
	Attempts    int
	NextAttempt time.Time
	Created     time.Time
	DoneAt      time.Time
	LastError   string
}

// DeliveryOutcome is the result of one attempt at the delivery of Cursor.
type DeliveryOutcome struct {
	Cursor      uint64
	Delivered   bool
	Dead        bool      // give up (dead letter)
	NextAttempt time.Time // when neither: retry then
	Error       string    // what went wrong, in words (never a response body)
}

// DestinationStats describes one destination for doctor, /metrics and operators.
type DestinationStats struct {
	Dest           string
	Through        uint64
	Pending        int
	Delivered      int
	Dead           int
	Owner          string
	LeaseUntil     time.Time
	Disabled       string // why, when disabled
	DisabledAt     time.Time
	OldestPending  time.Time
	NextAttempt    time.Time
	LastError      string
	LastErrorCount int // attempts of the oldest pending delivery
}

// Outbox is the durable queue of outbound deliveries.
type Outbox interface {
	// ClaimDestination registers dest (its cursor starts at start) when it is new, and
	// leases it to owner: taken over when free or expired (new epoch), renewed when owner
	// holds it. ErrLeaseHeld when another owner's lease is live.
	ClaimDestination(ctx context.Context, dest, owner string, start uint64, ttl time.Duration) (OutboxLease, error)
	// Enqueue inserts a pending delivery for each event (cursors above the destination's
	// and in order) and moves the destination's cursor to upTo, in one commit. Events the
	// destination does not want are simply left out; upTo covers them.
	Enqueue(ctx context.Context, l OutboxLease, events []Event, upTo uint64) error
	// PendingDeliveries returns up to limit pending deliveries of dest in cursor order.
	PendingDeliveries(ctx context.Context, dest string, limit int) ([]Delivery, error)
	// RecordOutcomes records attempts: delivered, dead, or retried at NextAttempt.
	RecordOutcomes(ctx context.Context, l OutboxLease, outs []DeliveryOutcome) error
	// DisableDestination stops deliveries to dest (410 Gone) until EnableDestination.
	DisableDestination(ctx context.Context, l OutboxLease, reason string) error
	// EnableDestination lets a disabled destination deliver again (an operator's fix).
	EnableDestination(ctx context.Context, dest string) error
	// OutboxStats describes every destination.
	OutboxStats(ctx context.Context) ([]DestinationStats, error)
	// DeadLetters returns up to limit dead deliveries of dest ("" for all), newest first.
	DeadLetters(ctx context.Context, dest string, limit int) ([]Delivery, error)
	// PruneOutbox forgets deliveries delivered before delivered and dead letters given up
	// before dead (retention); pending ones are kept.
	PruneOutbox(ctx context.Context, delivered, dead time.Time) (int, error)
}

var _ Outbox = (*sqlStore)(nil)

// WebhookID is the stable id of event eventID's delivery to dest.
func WebhookID(dest, eventID string) string {
	h := sha256.Sum256([]byte(dest + "\x00" + eventID))
	return "msg_" + hex.EncodeToString(h[:12])
}

// ClaimDestination implements Outbox.
func (s *sqlStore) ClaimDestination(ctx context.Context, dest, owner string, start uint64, ttl time.Duration) (OutboxLease, error) {
	if dest == "" || owner == "" || ttl <= 0 {
		return OutboxLease{}, errors.New("state: claim destination: a destination, an owner and a lease duration are needed")
	}
	var l OutboxLease
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		if _, err := w.exec(`INSERT INTO outbox_dests (dest, through, owner, epoch, lease_ns, disabled_ns, disabled_reason)
VALUES ($1, $2, '', 0, 0, 0, '') ON CONFLICT (dest) DO NOTHING`, dest, int64(start)); err != nil {
			return fmt.Errorf("state: register destination: %w", err)
		}
		var cur, disabled string
		var epoch, lease, through int64
		if err := w.queryRow(`SELECT owner, epoch, lease_ns, disabled_reason, through FROM outbox_dests WHERE dest = $1`+w.d.forUpdate, dest).
			Scan(&cur, &epoch, &lease, &disabled, &through); err != nil {
			return fmt.Errorf("state: claim destination: %w", err)
		}
		switch {
		case cur == owner:
		case lease > now:
			return fmt.Errorf("destination %s (owner %s, %s left): %w", dest, cur, time.Duration(lease-now).Round(time.Millisecond), ErrLeaseHeld)
		default:
			epoch++
		}
		until := now + int64(ttl)
		if _, err := w.exec(`UPDATE outbox_dests SET owner = $1, epoch = $2, lease_ns = $3 WHERE dest = $4`, owner, epoch, until, dest); err != nil {
			return fmt.Errorf("state: claim destination: %w", err)
		}
		l = OutboxLease{Dest: dest, Owner: owner, Epoch: epoch, Until: fromNS(until), Disabled: disabled, Through: uint64(through)}
		return nil
	})
	return l, err
}

// fenceDest checks that l is still the destination's lease (same owner and epoch: no
// one took it over) and returns its cursor and the store's time, which every fenced
// write stamps.
func fenceDest(w *wtx, l OutboxLease) (through, now int64, err error) {
	var owner string
	var epoch int64
	err = w.queryRow(`SELECT owner, epoch, through FROM outbox_dests WHERE dest = $1`+w.d.forUpdate, l.Dest).Scan(&owner, &epoch, &through)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("destination %s: %w", l.Dest, ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("state: destination %s: %w", l.Dest, err)
	}
	if owner != l.Owner || epoch != l.Epoch {
		return 0, 0, fmt.Errorf("destination %s: %w", l.Dest, ErrFenced)
	}
	now, err = w.now()
	return through, now, err
}

// Enqueue implements Outbox.
func (s *sqlStore) Enqueue(ctx context.Context, l OutboxLease, events []Event, upTo uint64) error {
	return s.write(ctx, func(w *wtx) error {
		through, now, err := fenceDest(w, l)
		if err != nil {
			return err
		}
		last := uint64(through)
		for _, ev := range events {
			if ev.Cursor <= last || ev.Cursor > upTo {
				return fmt.Errorf("state: enqueue to %s: event cursor %d is not above %d and at most %d", l.Dest, ev.Cursor, last, upTo)
			}
			last = ev.Cursor
			if _, err := w.exec(`INSERT INTO outbox (dest, pos, webhook_id, event_id, kind, server_id, at_ns, data, state, attempts, next_ns, created_ns, done_ns, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10, 0, '')`,
				l.Dest, int64(ev.Cursor), WebhookID(l.Dest, ev.ID), ev.ID, ev.Kind, ev.ServerID, ns(ev.Time), nonNil(ev.Data), DeliveryPending, now); err != nil {
				return fmt.Errorf("state: enqueue event %d to %s: %w", ev.Cursor, l.Dest, err)
			}
		}
		if upTo > uint64(through) {
			if _, err := w.exec(`UPDATE outbox_dests SET through = $1 WHERE dest = $2`, int64(upTo), l.Dest); err != nil {
				return fmt.Errorf("state: enqueue to %s: %w", l.Dest, err)
			}
		}
		return nil
	})
}

const deliveryCols = `dest, pos, webhook_id, event_id, kind, server_id, at_ns, data, state, attempts, next_ns, created_ns, done_ns, last_error`

func scanDeliveries(rows *sql.Rows) ([]Delivery, error) {
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var pos, at, next, created, done int64
		if err := rows.Scan(&d.Dest, &pos, &d.WebhookID, &d.Event.ID, &d.Event.Kind, &d.Event.ServerID, &at, &d.Event.Data,
			&d.State, &d.Attempts, &next, &created, &done, &d.LastError); err != nil {
			return nil, fmt.Errorf("state: read deliveries: %w", err)
		}
		d.Event.Cursor, d.Event.Time = uint64(pos), fromNS(at)
		d.NextAttempt, d.Created, d.DoneAt = fromNS(next), fromNS(created), fromNS(done)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PendingDeliveries implements Outbox.
func (s *sqlStore) PendingDeliveries(ctx context.Context, dest string, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE dest = $1 AND state = $2 ORDER BY pos LIMIT $3`, dest, DeliveryPending, limit)
	if err != nil {
		return nil, fmt.Errorf("state: read deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

// RecordOutcomes implements Outbox.
func (s *sqlStore) RecordOutcomes(ctx context.Context, l OutboxLease, outs []DeliveryOutcome) error {
	return s.write(ctx, func(w *wtx) error {
		_, now, err := fenceDest(w, l)
		if err != nil {
			return err
		}
		for _, o := range outs {
			var err error
			switch {
			case o.Delivered:
				_, err = w.exec(`UPDATE outbox SET state = $1, attempts = attempts + 1, done_ns = $2, last_error = '' WHERE dest = $3 AND pos = $4 AND state = $5`,
					DeliveryDelivered, now, l.Dest, int64(o.Cursor), DeliveryPending)
			case o.Dead:
				_, err = w.exec(`UPDATE outbox SET state = $1, attempts = attempts + 1, done_ns = $2, last_error = $3 WHERE dest = $4 AND pos = $5 AND state = $6`,
					DeliveryDead, now, o.Error, l.Dest, int64(o.Cursor), DeliveryPending)
			default:
				_, err = w.exec(`UPDATE outbox SET attempts = attempts + 1, next_ns = $1, last_error = $2 WHERE dest = $3 AND pos = $4 AND state = $5`,
					ns(o.NextAttempt), o.Error, l.Dest, int64(o.Cursor), DeliveryPending)
			}
			if err != nil {
				return fmt.Errorf("state: record delivery %d to %s: %w", o.Cursor, l.Dest, err)
			}
		}
		return nil
	})
}

// DisableDestination implements Outbox.
func (s *sqlStore) DisableDestination(ctx context.Context, l OutboxLease, reason string) error {
	return s.write(ctx, func(w *wtx) error {
		_, now, err := fenceDest(w, l)
		if err != nil {
			return err
		}
		_, err = w.exec(`UPDATE outbox_dests SET disabled_ns = $1, disabled_reason = $2 WHERE dest = $3`, now, reason, l.Dest)
		return err
	})
}

// EnableDestination implements Outbox.
func (s *sqlStore) EnableDestination(ctx context.Context, dest string) error {
	return s.write(ctx, func(w *wtx) error {
		n, err := affected(w.exec(`UPDATE outbox_dests SET disabled_ns = 0, disabled_reason = '' WHERE dest = $1`, dest))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("destination %s: %w", dest, ErrNotFound)
		}
		return nil
	})
}

// OutboxStats implements Outbox.
func (s *sqlStore) OutboxStats(ctx context.Context) ([]DestinationStats, error) {
	rows, err := s.query(ctx, `SELECT d.dest, d.through, d.owner, d.lease_ns, d.disabled_ns, d.disabled_reason,
 (SELECT COUNT(*) FROM outbox o WHERE o.dest = d.dest AND o.state = 'pending'),
 (SELECT COUNT(*) FROM outbox o WHERE o.dest = d.dest AND o.state = 'delivered'),
 (SELECT COUNT(*) FROM outbox o WHERE o.dest = d.dest AND o.state = 'dead')
FROM outbox_dests d ORDER BY d.dest`)
	if err != nil {
		return nil, fmt.Errorf("state: outbox stats: %w", err)
	}
	var out []DestinationStats
	for rows.Next() {
		var st DestinationStats
		var through, lease, disabled int64
		if err := rows.Scan(&st.Dest, &through, &st.Owner, &lease, &disabled, &st.Disabled, &st.Pending, &st.Delivered, &st.Dead); err != nil {
			rows.Close()
			return nil, fmt.Errorf("state: outbox stats: %w", err)
		}
		st.Through, st.LeaseUntil, st.DisabledAt = uint64(through), fromNS(lease), fromNS(disabled)
		out = append(out, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: outbox stats: %w", err)
	}
	for i := range out {
		p, err := s.PendingDeliveries(ctx, out[i].Dest, 1)
		if err != nil {
			return nil, err
		}
		if len(p) == 1 {
			out[i].OldestPending, out[i].NextAttempt = p[0].Created, p[0].NextAttempt
			out[i].LastError, out[i].LastErrorCount = p[0].LastError, p[0].Attempts
		}
	}
	return out, nil
}

// DeadLetters implements Outbox.
func (s *sqlStore) DeadLetters(ctx context.Context, dest string, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT `+deliveryCols+` FROM outbox WHERE state = $1 AND ($2 = '' OR dest = $2) ORDER BY done_ns DESC, pos DESC LIMIT $3`,
		DeliveryDead, dest, limit)
	if err != nil {
		return nil, fmt.Errorf("state: dead letters: %w", err)
	}
	return scanDeliveries(rows)
}

// PruneOutbox implements Outbox.
func (s *sqlStore) PruneOutbox(ctx context.Context, delivered, dead time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(w *wtx) error {
		a, err := affected(w.exec(`DELETE FROM outbox WHERE state = $1 AND done_ns < $2`, DeliveryDelivered, ns(delivered)))
		if err != nil {
			return fmt.Errorf("state: prune the outbox: %w", err)
		}
		b, err := affected(w.exec(`DELETE FROM outbox WHERE state = $1 AND done_ns < $2`, DeliveryDead, ns(dead)))
		if err != nil {
			return fmt.Errorf("state: prune the outbox: %w", err)
		}
		n = a + b
		return nil
	})
	return int(n), err
}
