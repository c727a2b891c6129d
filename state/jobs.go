package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const installCols = `id, secret_hash, server_id, state, created_ns, done_ns, event_id, data`

type rowScanner interface{ Scan(...any) error }

func scanInstall(r rowScanner) (InstallJob, error) {
	var j InstallJob
	var created, done int64
	if err := r.Scan(&j.ID, &j.SecretHash, &j.ServerID, &j.State, &created, &done, &j.EventID, &j.Data); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return InstallJob{}, ErrNotFound
		}
		return InstallJob{}, err
	}
	j.Created, j.DoneAt = fromNS(created), fromNS(done)
	return j, nil
}

// CreateInstallJob implements InstallJobs.
func (s *sqlStore) CreateInstallJob(ctx context.Context, j InstallJob) error {
	if j.ID == "" || len(j.SecretHash) == 0 {
		return errors.New("state: install job needs an ID and a secret hash")
	}
	if j.State == "" {
		j.State = JobPending
	}
	if j.Created.IsZero() {
		j.Created = time.Now().UTC()
	}
	return s.write(ctx, func(w *wtx) error {
		// ON CONFLICT without a target covers both the ID and the secret hash.
		return insertNew(w, "create install job", "install job "+j.ID, `INSERT INTO install_jobs (`+installCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			j.ID, j.SecretHash, j.ServerID, j.State, ns(j.Created), ns(j.DoneAt), j.EventID, nonNil(j.Data))
	})
}

// InstallJob implements InstallJobs.
func (s *sqlStore) InstallJob(ctx context.Context, id string) (InstallJob, error) {
	j, err := scanInstall(s.queryRow(ctx, `SELECT `+installCols+` FROM install_jobs WHERE id = $1`, id))
	if err != nil {
		return InstallJob{}, fmt.Errorf("install job %s: %w", id, err)
	}
	return j, nil
}

// InstallJobBySecret implements InstallJobs.
func (s *sqlStore) InstallJobBySecret(ctx context.Context, hash []byte) (InstallJob, error) {
	j, err := scanInstall(s.queryRow(ctx, `SELECT `+installCols+` FROM install_jobs WHERE secret_hash = $1`, hash))
	if err != nil {
		return InstallJob{}, fmt.Errorf("install job by secret: %w", err)
	}
	return j, nil
}

func markDoneTx(w *wtx, id string, at time.Time, eventID string) (InstallJob, error) {
	j, err := scanInstall(w.queryRow(`UPDATE install_jobs SET state = $1, done_ns = $2, event_id = $3 WHERE id = $4 AND state <> $1 RETURNING `+installCols,
		JobDone, ns(at), eventID, id))
	if errors.Is(err, ErrNotFound) { // unknown, or done before: the first completion stays
		j, err = scanInstall(w.queryRow(`SELECT `+installCols+` FROM install_jobs WHERE id = $1`, id))
	}
	if err != nil {
		return InstallJob{}, fmt.Errorf("install job %s: %w", id, err)
	}
	return j, nil
}

// MarkInstallDone implements InstallJobs.
func (s *sqlStore) MarkInstallDone(ctx context.Context, id string, at time.Time, eventID string) (InstallJob, error) {
	var j InstallJob
	err := s.write(ctx, func(w *wtx) error {
		var err error
		j, err = markDoneTx(w, id, at, eventID)
		return err
	})
	return j, err
}

// CompleteInstallJob implements InstallJobs.
func (s *sqlStore) CompleteInstallJob(ctx context.Context, id string, ev Event, dedupeKey string) (Event, InstallJob, bool, error) {
	var (
		out Event
		j   InstallJob
		dup bool
	)
	// Plain: an unknown job (the only error not the database's) is rare, since the
	// receiver looked the job up first; it fails the batch, which is rerun write by write.
	err := s.writePlain(ctx, func(w *wtx) error {
		var err error
		if out, dup, err = appendTx(w, ev, dedupeKey); err != nil {
			return err
		}
		j, err = markDoneTx(w, id, out.Time, out.ID)
		return err
	})
	if err != nil {
		return Event{}, InstallJob{}, false, err
	}
	return out, j, dup, nil
}

// CompleteInstallJobBySecret implements InstallJobs: the lookup is part of the write,
// so a callback costs the store one batched write and no read of its own.
func (s *sqlStore) CompleteInstallJobBySecret(ctx context.Context, hash []byte, build func(InstallJob) (Event, string, error)) (Event, InstallJob, bool, error) {
	var (
		out     Event
		j       InstallJob
		dup     bool
		refused error // not found, or build's error: nothing was written
	)
	// Plain: every error returned is the database's; refusals are outputs.
	err := s.writePlain(ctx, func(w *wtx) error {
		out, dup, refused = Event{}, false, nil
		var err error
		j, err = scanInstall(w.queryRow(`SELECT `+installCols+` FROM install_jobs WHERE secret_hash = $1`, hash))
		if errors.Is(err, ErrNotFound) {
			refused = fmt.Errorf("install job by secret: %w", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("install job by secret: %w", err)
		}
		ev, key, err := build(j)
		if err != nil {
			refused = err
			return nil
		}
		if out, dup, err = appendTx(w, ev, key); err != nil {
			return err
		}
		// The first completion stays: another replica may have completed the job since
		// the SELECT (PostgreSQL); the dedupe key then made this a duplicate.
		// The values set are known: no RETURNING row to build and scan.
		done := ns(out.Time)
		n, err := affected(w.exec(`UPDATE install_jobs SET state = $1, done_ns = $2, event_id = $3 WHERE id = $4 AND state <> $1`,
			JobDone, done, out.ID, j.ID))
		switch {
		case err == nil && n == 1:
			j.State, j.EventID = JobDone, out.ID
		case err == nil:
			err = w.queryRow(`SELECT state, done_ns, event_id FROM install_jobs WHERE id = $1`, j.ID).Scan(&j.State, &done, &j.EventID)
		}
		if err != nil {
			return fmt.Errorf("install job %s: %w", j.ID, err)
		}
		j.DoneAt = fromNS(done)
		return nil
	})
	switch {
	case err != nil:
		return Event{}, InstallJob{}, false, err
	case refused != nil:
		return Event{}, j, false, refused
	}
	return out, j, dup, nil
}

const workflowCols = `id, kind, session, owner, epoch, lease_ns, state, input, result, created_ns, updated_ns`

func scanWorkflow(r rowScanner) (Workflow, error) {
	var wf Workflow
	var lease, created, updated int64
	if err := r.Scan(&wf.ID, &wf.Kind, &wf.Session, &wf.Owner, &wf.Epoch, &lease, &wf.State, &wf.Input, &wf.Result, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Workflow{}, ErrNotFound
		}
		return Workflow{}, err
	}
	wf.LeaseUntil, wf.Created, wf.Updated = fromNS(lease), fromNS(created), fromNS(updated)
	return wf, nil
}

// CreateWorkflow implements Workflows.
func (s *sqlStore) CreateWorkflow(ctx context.Context, wf Workflow, owner string, ttl time.Duration) (Lease, error) {
	if wf.ID == "" || owner == "" || ttl <= 0 {
		return Lease{}, errors.New("state: a workflow needs an ID, an owner and a lease duration")
	}
	var l Lease
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		until := now + int64(ttl)
		if err := insertNew(w, "create workflow", "workflow "+wf.ID, `INSERT INTO workflows (`+workflowCols+`) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING`,
			wf.ID, wf.Kind, wf.Session, owner, until, WorkflowRunning, nonNil(wf.Input), []byte{}, now); err != nil {
			return err
		}
		l = Lease{JobID: wf.ID, Owner: owner, Epoch: 1, Until: fromNS(until)}
		return nil
	})
	return l, err
}

// Workflow implements Workflows.
func (s *sqlStore) Workflow(ctx context.Context, id string) (Workflow, error) {
	wf, err := scanWorkflow(s.queryRow(ctx, `SELECT `+workflowCols+` FROM workflows WHERE id = $1`, id))
	if err != nil {
		return Workflow{}, fmt.Errorf("workflow %s: %w", id, err)
	}
	rows, err := s.query(ctx, `SELECT name, intent, intent_ns, intent_epoch, done, result, done_ns FROM workflow_steps WHERE job_id = $1 ORDER BY seq`, id)
	if err != nil {
		return Workflow{}, fmt.Errorf("workflow %s: steps: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st Step
		var intentNS, doneNS, done int64
		if err := rows.Scan(&st.Name, &st.Intent, &intentNS, &st.IntentEpoch, &done, &st.Result, &doneNS); err != nil {
			return Workflow{}, fmt.Errorf("workflow %s: steps: %w", id, err)
		}
		st.IntentAt, st.Done, st.DoneAt = fromNS(intentNS), done != 0, fromNS(doneNS)
		wf.Steps = append(wf.Steps, st)
	}
	if err := rows.Err(); err != nil {
		return Workflow{}, fmt.Errorf("workflow %s: steps: %w", id, err)
	}
	return wf, nil
}

// ClaimWorkflow implements Workflows.
func (s *sqlStore) ClaimWorkflow(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error) {
	if owner == "" || ttl <= 0 {
		return Lease{}, errors.New("state: claim: an owner and a lease duration are needed")
	}
	var l Lease
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		var cur Workflow
		var lease int64
		err := w.queryRow(`SELECT owner, epoch, lease_ns, state FROM workflows WHERE id = $1`+w.d.forUpdate, id).
			Scan(&cur.Owner, &cur.Epoch, &lease, &cur.State)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && cur.State != WorkflowRunning) {
			return fmt.Errorf("workflow %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("state: claim workflow %s: %w", id, err)
		}
		epoch := cur.Epoch
		switch {
		case cur.Owner == owner:
		case lease > now:
			return fmt.Errorf("workflow %s (owner %s, %s left): %w", id, cur.Owner, time.Duration(lease-now).Round(time.Millisecond), ErrLeaseHeld)
		default:
			epoch++
		}
		until := now + int64(ttl)
		if _, err := w.exec(`UPDATE workflows SET owner = $1, epoch = $2, lease_ns = $3, updated_ns = $4 WHERE id = $5`,
			owner, epoch, until, now, id); err != nil {
			return fmt.Errorf("state: claim workflow %s: %w", id, err)
		}
		l = Lease{JobID: id, Owner: owner, Epoch: epoch, Until: fromNS(until)}
		return nil
	})
	return l, err
}

// ClaimExpired implements Workflows.
func (s *sqlStore) ClaimExpired(ctx context.Context, owner string, ttl time.Duration, limit int) ([]Lease, error) {
	if owner == "" || ttl <= 0 {
		return nil, errors.New("state: claim: an owner and a lease duration are needed")
	}
	if limit <= 0 {
		limit = 10
	}
	var out []Lease
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		out = out[:0]
		rows, err := w.QueryContext(w.ctx, `SELECT id, epoch FROM workflows WHERE state = $1 AND lease_ns <= $2 ORDER BY lease_ns LIMIT $3`+w.d.skipLocked,
			WorkflowRunning, now, limit)
		if err != nil {
			return fmt.Errorf("state: find expired workflows: %w", err)
		}
		type claim struct {
			id    string
			epoch int64
		}
		var claims []claim
		for rows.Next() {
			var c claim
			if err := rows.Scan(&c.id, &c.epoch); err != nil {
				rows.Close()
				return err
			}
			claims = append(claims, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		until := now + int64(ttl)
		for _, c := range claims {
			if _, err := w.exec(`UPDATE workflows SET owner = $1, epoch = $2, lease_ns = $3, updated_ns = $4 WHERE id = $5`,
				owner, c.epoch+1, until, now, c.id); err != nil {
				return fmt.Errorf("state: claim workflow %s: %w", c.id, err)
			}
			out = append(out, Lease{JobID: c.id, Owner: owner, Epoch: c.epoch + 1, Until: fromNS(until)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fence checks that l is the job's current, unexpired lease of a running job, locking
// the row for the rest of the transaction.
func fence(w *wtx, l Lease, mustBeLive bool) (now int64, err error) {
	now, err = w.now()
	if err != nil {
		return 0, err
	}
	var owner, state string
	var epoch, lease int64
	err = w.queryRow(`SELECT owner, epoch, lease_ns, state FROM workflows WHERE id = $1`+w.d.forUpdate, l.JobID).
		Scan(&owner, &epoch, &lease, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("workflow %s: %w", l.JobID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("state: workflow %s: %w", l.JobID, err)
	}
	if owner != l.Owner || epoch != l.Epoch || state != WorkflowRunning || (mustBeLive && lease <= now) {
		return 0, fmt.Errorf("workflow %s (epoch %d, now %d): %w", l.JobID, l.Epoch, epoch, ErrFenced)
	}
	return now, nil
}

// RenewLease implements Workflows.
func (s *sqlStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	err := s.write(ctx, func(w *wtx) error {
		now, err := fence(w, l, false)
		if err != nil {
			return err
		}
		until := now + int64(ttl)
		if _, err := w.exec(`UPDATE workflows SET lease_ns = $1, updated_ns = $2 WHERE id = $3`, until, now, l.JobID); err != nil {
			return fmt.Errorf("state: renew lease of %s: %w", l.JobID, err)
		}
		l.Until = fromNS(until)
		return nil
	})
	if err != nil {
		return Lease{}, err
	}
	return l, nil
}

// StepIntent implements Workflows.
func (s *sqlStore) StepIntent(ctx context.Context, l Lease, step string, intent []byte) (Step, error) {
	var out Step
	err := s.write(ctx, func(w *wtx) error {
		now, err := fence(w, l, true)
		if err != nil {
			return err
		}
		var intentNS, doneNS, done int64
		err = w.queryRow(`SELECT intent, intent_ns, intent_epoch, done, result, done_ns FROM workflow_steps WHERE job_id = $1 AND name = $2`, l.JobID, step).
			Scan(&out.Intent, &intentNS, &out.IntentEpoch, &done, &out.Result, &doneNS)
		if err == nil {
			out.Name, out.IntentAt, out.Done, out.DoneAt = step, fromNS(intentNS), done != 0, fromNS(doneNS)
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("state: step %s of %s: %w", step, l.JobID, err)
		}
		if _, err := w.exec(`INSERT INTO workflow_steps (job_id, name, seq, intent, intent_ns, intent_epoch, done, result, done_ns)
SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, 0, $6, 0 FROM workflow_steps WHERE job_id = $1`,
			l.JobID, step, nonNil(intent), now, l.Epoch, []byte{}); err != nil {
			return fmt.Errorf("state: step %s of %s: %w", step, l.JobID, err)
		}
		if _, err := w.exec(`UPDATE workflows SET updated_ns = $1 WHERE id = $2`, now, l.JobID); err != nil {
			return fmt.Errorf("state: workflow %s: %w", l.JobID, err)
		}
		out = Step{Name: step, Intent: intent, IntentAt: fromNS(now), IntentEpoch: l.Epoch}
		return nil
	})
	if err != nil {
		return Step{}, err
	}
	return out, nil
}

// StepDone implements Workflows.
func (s *sqlStore) StepDone(ctx context.Context, l Lease, step string, result []byte) error {
	return s.write(ctx, func(w *wtx) error {
		now, err := fence(w, l, true)
		if err != nil {
			return err
		}
		n, err := affected(w.exec(`UPDATE workflow_steps SET done = 1, result = $1, done_ns = $2 WHERE job_id = $3 AND name = $4 AND done = 0`,
			nonNil(result), now, l.JobID, step))
		if err != nil {
			return fmt.Errorf("state: step %s of %s: %w", step, l.JobID, err)
		}
		if n == 0 {
			var done int64
			err := w.queryRow(`SELECT done FROM workflow_steps WHERE job_id = $1 AND name = $2`, l.JobID, step).Scan(&done)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("step %s of %s has no recorded intent: %w", step, l.JobID, ErrNotFound)
			}
			return err // already done: the first result stays
		}
		_, err = w.exec(`UPDATE workflows SET updated_ns = $1 WHERE id = $2`, now, l.JobID)
		return err
	})
}

// FinishWorkflow implements Workflows.
func (s *sqlStore) FinishWorkflow(ctx context.Context, l Lease, state string, result []byte) error {
	if state == WorkflowRunning || state == "" {
		return fmt.Errorf("state: finish workflow %s: %q is not a final state", l.JobID, state)
	}
	return s.write(ctx, func(w *wtx) error {
		now, err := fence(w, l, true)
		if err != nil {
			return err
		}
		_, err = w.exec(`UPDATE workflows SET state = $1, result = $2, lease_ns = 0, updated_ns = $3 WHERE id = $4`, state, nonNil(result), now, l.JobID)
		return err
	})
}

// ReleaseLease implements Workflows.
func (s *sqlStore) ReleaseLease(ctx context.Context, l Lease) error {
	return s.write(ctx, func(w *wtx) error {
		now, err := fence(w, l, false)
		if err != nil {
			return err
		}
		_, err = w.exec(`UPDATE workflows SET lease_ns = 0, updated_ns = $1 WHERE id = $2`, now, l.JobID)
		return err
	})
}
