package state

import (
	"context"
	"errors"
	"fmt"
)

// AuditBatcher is implemented by the stores of this package: several audit lines in one
// commit (a background writer's queue), chained in order.
type AuditBatcher interface {
	// AppendAuditBatch calls each sealer in order with the hash of the line before, under
	// the head's lock, and stores every line or none.
	AppendAuditBatch(ctx context.Context, seals []Sealer) ([]AuditLine, error)
}

var _ AuditBatcher = (*sqlStore)(nil)

// AppendAuditBatch implements AuditBatcher.
func (s *sqlStore) AppendAuditBatch(ctx context.Context, seals []Sealer) ([]AuditLine, error) {
	var out []AuditLine
	err := s.write(ctx, func(w *wtx) error {
		out = out[:0]
		var seq int64
		var prev string
		if err := w.queryRow(`SELECT seq, hash FROM audit_head WHERE id = 1`+w.d.forUpdate).Scan(&seq, &prev); err != nil {
			return fmt.Errorf("state: audit head: %w", err)
		}
		for _, seal := range seals {
			line, hash, err := seal(prev)
			if err != nil {
				return err
			}
			if hash == "" || len(line) == 0 {
				return errors.New("state: audit: the sealer returned an empty line or hash")
			}
			seq++
			if _, err := w.exec(`INSERT INTO audit_lines (seq, hash, line) VALUES ($1, $2, $3)`, seq, hash, line); err != nil {
				return fmt.Errorf("state: audit line: %w", err)
			}
			out = append(out, AuditLine{Seq: seq, Hash: hash, Line: line})
			prev = hash
		}
		if _, err := w.exec(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, seq, prev); err != nil {
			return fmt.Errorf("state: audit head: %w", err)
		}
		return nil
	})
	return out, err
}
