package audit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// Chain appends entries to the audit chain kept in the shared store: one chain for every
// process on it (the store locks the head row per append), exported as the JSON Lines
// that Verify and Check read. It is the policy's Auditor when a store is open.
type Chain struct {
	st      state.Audit
	timeout time.Duration
}

// NewChain appends to st's chain.
func NewChain(st state.Audit) *Chain { return &Chain{st: st, timeout: 10 * time.Second} }

// Append seals e after the chain's head and stores it; it returns the line's hash.
func (c *Chain) Append(e Entry) (string, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Hash = ""
	// Not the call's context: a decision is recorded even when its call was cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	line, err := c.st.AppendAudit(ctx, func(prev string) ([]byte, string, error) {
		e.Prev = prev
		return Seal(e)
	})
	if err != nil {
		return "", fmt.Errorf("audit chain: %w", err)
	}
	return line.Hash, nil
}

// Head returns the chain's line count and last hash: the anchor to keep elsewhere.
func (c *Chain) Head(ctx context.Context) (lines int, hash string, err error) {
	n, h, err := c.st.AuditHead(ctx)
	return int(n), h, err
}

// Export writes the whole chain to w as JSON Lines (what audit-verify checks).
func (c *Chain) Export(ctx context.Context, w io.Writer) (int, error) {
	return c.st.ExportAudit(ctx, w)
}
