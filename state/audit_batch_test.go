package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/state"
)

// Batches from two processes, beside single appends, form one chain; a batch with a
// failing sealer writes none of its lines.
func TestAuditBatchVerifies(t *testing.T) {
	each(t, func(t *testing.T, _ string, open func() state.Store) {
		stores := []state.Store{open(), open()}
		seal := func(w, i int) state.Sealer {
			return func(prev string) ([]byte, string, error) {
				return audit.Seal(audit.Entry{Time: time.Now(), Tool: "eq_show", Decision: "allowed", Session: fmt.Sprint(w, "-", i), Prev: prev})
			}
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					var err error
					if w%2 == 0 {
						_, err = stores[w%2].(state.AuditBatcher).AppendAuditBatch(ctx, []state.Sealer{seal(w, i), seal(w, i+100), seal(w, i+200)})
					} else {
						_, err = stores[w%2].AppendAudit(ctx, seal(w, i))
					}
					if err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		const want = 2*5*3 + 2*5
		var buf bytes.Buffer
		if n := must(stores[1].ExportAudit(ctx, &buf)).ok(t); n != want {
			t.Fatalf("exported %d lines, want %d", n, want)
		}
		if lines, err := audit.Verify(&buf); err != nil || lines != want {
			t.Fatalf("verify: %d lines, %v", lines, err)
		}
		boom := func(string) ([]byte, string, error) { return nil, "", errors.New("boom") }
		if _, err := stores[0].(state.AuditBatcher).AppendAuditBatch(ctx, []state.Sealer{seal(9, 9), boom}); err == nil {
			t.Fatal("a failing sealer did not fail the batch")
		}
		if seq, _, _ := stores[0].AuditHead(ctx); seq != want {
			t.Fatalf("head moved to %d after a failed batch", seq)
		}
	})
}
