package audit

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// Chain appends entries to the audit chain kept in the shared store: one chain for every
// process on it (the store locks the head row per append), exported as the JSON Lines
// that Verify and Check read. It is the policy's Auditor when a store is open.
type Chain struct {
	st      state.Audit
	timeout time.Duration

	once  sync.Once
	queue chan Entry     // AppendLater's entries, written by one goroutine
	idle  sync.WaitGroup // entries queued and not yet written
	onErr func(error)
}

// NewChain appends to st's chain. onErr (optional) hears of lines AppendLater could not
// write.
func NewChain(st state.Audit, onErr func(error)) *Chain {
	return &Chain{st: st, timeout: 10 * time.Second, onErr: onErr}
}

// laterQueue bounds the lines waiting for the writer; beyond it AppendLater writes at once.
const laterQueue = 4096

// AppendLater queues e for a background writer, in order: for the decisions that must
// not wait for a durable commit (reads let through). Flush writes what is queued; a
// process killed before that loses the queued lines (the log line of each decision is
// written at once).
func (c *Chain) AppendLater(e Entry) {
	c.once.Do(func() {
		c.queue = make(chan Entry, laterQueue)
		go c.writer()
	})
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.idle.Add(1)
	select {
	case c.queue <- e:
	default: // full: write it now rather than lose it
		c.idle.Done()
		if _, err := c.Append(e); err != nil && c.onErr != nil {
			c.onErr(err)
		}
	}
}

// maxBatch bounds the queued lines the writer commits at once.
const maxBatch = 256

// writer writes the queue in order: what has gathered while the last commit ran goes
// in one commit when the store can batch.
func (c *Chain) writer() {
	batcher, _ := c.st.(state.AuditBatcher)
	for e := range c.queue {
		batch := []Entry{e}
	more:
		for batcher != nil && len(batch) < maxBatch {
			select {
			case e := <-c.queue:
				batch = append(batch, e)
			default:
				break more
			}
		}
		var err error
		if len(batch) == 1 {
			_, err = c.Append(batch[0])
		} else {
			err = c.appendBatch(batcher, batch)
		}
		if err != nil && c.onErr != nil {
			c.onErr(err)
		}
		c.idle.Add(-len(batch))
	}
}

func (c *Chain) appendBatch(b state.AuditBatcher, batch []Entry) error {
	seals := make([]state.Sealer, len(batch))
	for i := range batch {
		e := batch[i]
		e.Time = e.Time.UTC()
		e.Hash = ""
		seals[i] = func(prev string) ([]byte, string, error) {
			e.Prev = prev
			return Seal(e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if _, err := b.AppendAuditBatch(ctx, seals); err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	return nil
}

// Flush waits until every queued line is written (at shutdown, before the store closes).
func (c *Chain) Flush() { c.idle.Wait() }

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
