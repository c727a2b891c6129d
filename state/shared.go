package state

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

const approvalCols = `id, akey, session, state, via, data, created_ns, expires_ns, decided_ns, used_ns`

func scanApproval(r rowScanner) (Approval, error) {
	var a Approval
	var created, expires, decided, used int64
	if err := r.Scan(&a.ID, &a.Key, &a.Session, &a.State, &a.Via, &a.Data, &created, &expires, &decided, &used); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Approval{}, ErrNotFound
		}
		return Approval{}, err
	}
	a.Created, a.Expires, a.DecidedAt, a.UsedAt = fromNS(created), fromNS(expires), fromNS(decided), fromNS(used)
	return a, nil
}

// CreateApproval implements Approvals.
func (s *sqlStore) CreateApproval(ctx context.Context, a Approval) error {
	if a.ID == "" || a.Expires.IsZero() {
		return errors.New("state: an approval needs an ID and an expiry")
	}
	if a.Created.IsZero() {
		a.Created = time.Now().UTC()
	}
	return s.write(ctx, func(w *wtx) error {
		return insertNew(w, "create approval", "approval "+a.ID, `INSERT INTO approvals (`+approvalCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0) ON CONFLICT DO NOTHING`,
			a.ID, a.Key, a.Session, ApprovalPending, a.Via, nonNil(a.Data), ns(a.Created), ns(a.Expires))
	})
}

// Approval implements Approvals.
func (s *sqlStore) Approval(ctx context.Context, id string) (Approval, error) {
	a, err := scanApproval(s.queryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = $1 AND expires_ns > $2`, id, time.Now().UnixNano()))
	if err != nil {
		return Approval{}, fmt.Errorf("approval %s: %w", id, err)
	}
	return a, nil
}

// ApprovalByKey implements Approvals.
func (s *sqlStore) ApprovalByKey(ctx context.Context, key string) (Approval, error) {
	a, err := scanApproval(s.queryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE akey = $1 AND state <> $2 AND expires_ns > $3 ORDER BY created_ns DESC LIMIT 1`,
		key, ApprovalUsed, time.Now().UnixNano()))
	if err != nil {
		return Approval{}, fmt.Errorf("approval by key: %w", err)
	}
	return a, nil
}

// DecideApproval implements Approvals.
func (s *sqlStore) DecideApproval(ctx context.Context, id string, approve bool, via string) (Approval, error) {
	state := ApprovalDeclined
	if approve {
		state = ApprovalApproved
	}
	var a Approval
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		var err error
		a, err = scanApproval(w.queryRow(`UPDATE approvals SET state = $1, via = $2, decided_ns = $3 WHERE id = $4 AND state = $5 AND expires_ns > $3 RETURNING `+approvalCols,
			state, via, now, id, ApprovalPending))
		if errors.Is(err, ErrNotFound) {
			cur, err := scanApproval(w.queryRow(`SELECT `+approvalCols+` FROM approvals WHERE id = $1 AND expires_ns > $2`, id, now))
			if err != nil {
				return fmt.Errorf("approval %s: %w", id, err)
			}
			a = cur
			return fmt.Errorf("approval %s is %s: %w", id, cur.State, ErrDecided)
		}
		if err != nil {
			return fmt.Errorf("state: decide approval %s: %w", id, err)
		}
		w.touch(TopicApprovals)
		return nil
	})
	return a, err
}

// UseApproval implements Approvals: one conditional UPDATE ... RETURNING, so of any
// number of concurrent users exactly one sees the row.
func (s *sqlStore) UseApproval(ctx context.Context, id, session string) (Approval, error) {
	var a Approval
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		var err error
		a, err = scanApproval(w.queryRow(`UPDATE approvals SET state = $1, used_ns = $2 WHERE id = $3 AND session = $4 AND state = $5 AND expires_ns > $2 RETURNING `+approvalCols,
			ApprovalUsed, now, id, session, ApprovalApproved))
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("approval %s: %w", id, ErrNotGranted)
		}
		if err != nil {
			return fmt.Errorf("state: use approval %s: %w", id, err)
		}
		return nil
	})
	return a, err
}

// DeleteApproval implements Approvals.
func (s *sqlStore) DeleteApproval(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		_, err := w.exec(`DELETE FROM approvals WHERE id = $1`, id)
		if err == nil {
			w.touch(TopicApprovals) // waiters see it gone
		}
		return err
	})
}

// PutHandle implements Handles.
func (s *sqlStore) PutHandle(ctx context.Context, id string, data []byte, expires time.Time) error {
	return s.write(ctx, func(w *wtx) error {
		// Like TakeHandle's, the error names no ID (the client holds it as requestState).
		return insertNew(w, "put handle", "handle", `INSERT INTO handles (id, data, expires_ns) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, nonNil(data), ns(expires))
	})
}

// TakeHandle implements Handles.
func (s *sqlStore) TakeHandle(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		var expires int64
		err := w.queryRow(`DELETE FROM handles WHERE id = $1 RETURNING data, expires_ns`, id).Scan(&data, &expires)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now) {
			return fmt.Errorf("handle: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("state: take handle: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// StartCooldown implements Cooldowns.
func (s *sqlStore) StartCooldown(ctx context.Context, name string, d time.Duration) (Cooldown, error) {
	var c Cooldown
	err := s.writeNow(ctx, func(w *wtx, now int64) error {
		var failures, until int64
		err := w.queryRow(`INSERT INTO cooldowns (name, failures, until_ns) VALUES ($1, 1, $2)
ON CONFLICT (name) DO UPDATE SET failures = cooldowns.failures + 1,
	until_ns = CASE WHEN cooldowns.until_ns > excluded.until_ns THEN cooldowns.until_ns ELSE excluded.until_ns END
RETURNING failures, until_ns`, name, now+int64(d)).Scan(&failures, &until)
		if err != nil {
			return fmt.Errorf("state: start cool-down %s: %w", name, err)
		}
		c = Cooldown{Failures: int(failures), Until: fromNS(until)}
		return nil
	})
	return c, err
}

// Cooldown implements Cooldowns.
func (s *sqlStore) Cooldown(ctx context.Context, name string) (Cooldown, error) {
	var failures, until int64
	err := s.queryRow(ctx, `SELECT failures, until_ns FROM cooldowns WHERE name = $1`, name).Scan(&failures, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return Cooldown{}, nil
	}
	if err != nil {
		return Cooldown{}, fmt.Errorf("state: cool-down %s: %w", name, err)
	}
	return Cooldown{Failures: int(failures), Until: fromNS(until)}, nil
}

// ResetCooldown implements Cooldowns.
func (s *sqlStore) ResetCooldown(ctx context.Context, name string) error {
	return s.write(ctx, func(w *wtx) error {
		_, err := w.exec(`DELETE FROM cooldowns WHERE name = $1`, name)
		return err
	})
}

// mergeRequests sums requests per bucket and sorts them by name: rows are locked in
// name order, so two transactions never wait for each other in a cycle.
func mergeRequests(reqs []TokenRequest) ([]TokenRequest, error) {
	at := map[string]int{}
	var out []TokenRequest
	for _, r := range reqs {
		if r.Bucket == "" || r.N <= 0 || r.Rate < 0 || r.Burst <= 0 || math.IsNaN(r.N+r.Rate+r.Burst) {
			return nil, fmt.Errorf("state: token request for bucket %q: needs a bucket name, N > 0, rate >= 0 and burst > 0", r.Bucket)
		}
		if i, ok := at[r.Bucket]; ok {
			out[i].N += r.N
			continue
		}
		at[r.Bucket] = len(out)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket < out[j].Bucket })
	return out, nil
}

// bucketLevels locks the buckets (creating them full) and returns their current tokens,
// refilled up to now.
func bucketLevels(w *wtx, reqs []TokenRequest, now int64) ([]float64, error) {
	levels := make([]float64, len(reqs))
	for i, r := range reqs {
		if _, err := w.exec(`INSERT INTO rate_buckets (name, tokens, updated_ns) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, r.Bucket, r.Burst, now); err != nil {
			return nil, fmt.Errorf("state: bucket %s: %w", r.Bucket, err)
		}
		var tokens float64
		var updated int64
		if err := w.queryRow(`SELECT tokens, updated_ns FROM rate_buckets WHERE name = $1`+w.d.forUpdate, r.Bucket).Scan(&tokens, &updated); err != nil {
			return nil, fmt.Errorf("state: bucket %s: %w", r.Bucket, err)
		}
		if el := now - updated; el > 0 {
			tokens += float64(el) / float64(time.Second) * r.Rate
		}
		levels[i] = math.Min(tokens, r.Burst)
	}
	return levels, nil
}

// setLevels stores level(i) as bucket i's tokens, refilled as of now.
func setLevels(w *wtx, reqs []TokenRequest, now int64, level func(i int) float64) error {
	for i, r := range reqs {
		if _, err := w.exec(`UPDATE rate_buckets SET tokens = $1, updated_ns = $2 WHERE name = $3`, level(i), now, r.Bucket); err != nil {
			return fmt.Errorf("state: bucket %s: %w", r.Bucket, err)
		}
	}
	return nil
}

// TakeTokens implements RateLimits.
func (s *sqlStore) TakeTokens(ctx context.Context, reqs []TokenRequest) (TakeResult, error) {
	merged, err := mergeRequests(reqs)
	if err != nil {
		return TakeResult{}, err
	}
	var res TakeResult
	err = s.writeNow(ctx, func(w *wtx, now int64) error {
		res = TakeResult{}
		levels, err := bucketLevels(w, merged, now)
		if err != nil {
			return err
		}
		for i, r := range merged {
			if levels[i] >= r.N {
				continue
			}
			wait := time.Duration(math.MaxInt64)
			if r.Rate > 0 && r.N <= r.Burst {
				wait = time.Duration((r.N - levels[i]) / r.Rate * float64(time.Second))
			}
			if res.Blocked == "" || wait > res.RetryAfter {
				res.Blocked, res.RetryAfter = r.Bucket, wait
			}
		}
		if res.Blocked != "" {
			return nil // nothing taken, nothing written
		}
		if err := setLevels(w, merged, now, func(i int) float64 { return levels[i] - merged[i].N }); err != nil {
			return err
		}
		res.OK = true
		return nil
	})
	if err != nil {
		return TakeResult{}, err
	}
	return res, nil
}

// RefundTokens implements RateLimits.
func (s *sqlStore) RefundTokens(ctx context.Context, reqs []TokenRequest) error {
	merged, err := mergeRequests(reqs)
	if err != nil {
		return err
	}
	return s.writeNow(ctx, func(w *wtx, now int64) error {
		levels, err := bucketLevels(w, merged, now)
		if err != nil {
			return err
		}
		return setLevels(w, merged, now, func(i int) float64 { return math.Min(levels[i]+merged[i].N, merged[i].Burst) })
	})
}

// AppendAudit implements Audit: a batch of one (AppendAuditBatch holds the head row's
// lock — PostgreSQL FOR UPDATE; the SQLite write lock — while seal chains the line).
func (s *sqlStore) AppendAudit(ctx context.Context, seal Sealer) (AuditLine, error) {
	lines, err := s.AppendAuditBatch(ctx, []Sealer{seal})
	if err != nil {
		return AuditLine{}, err
	}
	return lines[0], nil
}

// AuditHead implements Audit.
func (s *sqlStore) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	if err := s.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("state: audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditLines implements Audit.
func (s *sqlStore) AuditLines(ctx context.Context, after int64, limit int) ([]AuditLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.query(ctx, `SELECT seq, hash, line FROM audit_lines WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("state: audit lines: %w", err)
	}
	defer rows.Close()
	var out []AuditLine
	for rows.Next() {
		var l AuditLine
		if err := rows.Scan(&l.Seq, &l.Hash, &l.Line); err != nil {
			return nil, fmt.Errorf("state: audit lines: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ExportAudit implements Audit.
func (s *sqlStore) ExportAudit(ctx context.Context, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	var after int64
	for {
		lines, err := s.AuditLines(ctx, after, 1000)
		if err != nil {
			return n, err
		}
		if len(lines) == 0 {
			break
		}
		for _, l := range lines {
			if _, err := bw.Write(l.Line); err != nil {
				return n, fmt.Errorf("state: export audit: %w", err)
			}
			n++
			after = l.Seq
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("state: export audit: %w", err)
	}
	return n, nil
}

// Secret implements Secrets.
func (s *sqlStore) Secret(ctx context.Context, name string, generate func() (string, error)) (string, error) {
	var val string
	err := s.queryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&val)
	if err == nil {
		return val, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("state: secret %s: %w", name, err)
	}
	fresh, err := generate()
	if err != nil {
		return "", err
	}
	err = s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(`INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return err
		}
		return w.queryRow(`SELECT value FROM secrets WHERE name = $1`, name).Scan(&val)
	})
	if err != nil {
		return "", fmt.Errorf("state: secret %s: %w", name, err)
	}
	return val, nil
}

// SetSecret implements Secrets.
func (s *sqlStore) SetSecret(ctx context.Context, name, value string) error {
	return s.write(ctx, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		if err != nil {
			return fmt.Errorf("state: set secret %s: %w", name, err)
		}
		return nil
	})
}

// Prune implements Store in one commit.
func (s *sqlStore) Prune(ctx context.Context, cutoff time.Time) (PruneResult, error) {
	var res PruneResult
	err := s.write(ctx, func(w *wtx) error {
		res = PruneResult{}
		if w.d.trySingleton != "" {
			// One replica prunes at a time; the others skip this round (retention runs
			// again within the hour) instead of queueing behind its row locks.
			var got bool
			if err := w.queryRow(w.d.trySingleton, "prune").Scan(&got); err != nil || !got {
				return err
			}
		}
		now, err := w.now()
		if err != nil {
			return err
		}
		if res.Events, err = pruneEvents(w, cutoff); err != nil {
			return err
		}
		c := ns(cutoff)
		for _, p := range []struct {
			n *int
			q string
			a []any
		}{
			{&res.InstallJobs, `DELETE FROM install_jobs WHERE (state = $1 AND done_ns < $2) OR (state <> $1 AND created_ns < $2)`, []any{JobDone, c}},
			{&res.Workflows, `DELETE FROM workflows WHERE state <> $1 AND updated_ns < $2`, []any{WorkflowRunning, c}},
			{nil, `DELETE FROM workflow_steps WHERE job_id NOT IN (SELECT id FROM workflows)`, nil},
			{&res.Approvals, `DELETE FROM approvals WHERE expires_ns <= $1`, []any{now}},
			{&res.Handles, `DELETE FROM handles WHERE expires_ns <= $1`, []any{now}},
		} {
			n, err := affected(w.exec(p.q, p.a...))
			if err != nil {
				return fmt.Errorf("state: prune: %w", err)
			}
			if p.n != nil {
				*p.n = int(n)
			}
		}
		return nil
	})
	return res, err
}
