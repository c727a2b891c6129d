package audit_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/state"
)

// Two processes (two opens of one store) append concurrently to one chain; the export
// verifies, holds every line and matches the head.
func TestChainSharedByProcesses(t *testing.T) {
	target := filepath.Join(t.TempDir(), "state.db")
	var chains []*audit.Chain
	for range 2 {
		st, err := state.Open(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		chains = append(chains, audit.NewChain(st, nil))
	}
	const each = 20
	var wg sync.WaitGroup
	for i, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				e := audit.Entry{Time: time.Unix(int64(j), 0), Tool: "eq_show", Session: string(rune('a' + i)), Decision: "allowed"}
				if j%2 == 0 {
					c.AppendLater(e) // queued lines join the same chain
					continue
				}
				if _, err := c.Append(e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range chains {
		c.Flush()
	}
	var buf bytes.Buffer
	n, err := chains[1].Export(context.Background(), &buf)
	if err != nil || n != 2*each {
		t.Fatalf("export: %d lines, %v", n, err)
	}
	lines, head, err := chains[0].Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.Check(bytes.NewReader(buf.Bytes()), audit.Anchor{Lines: lines, Head: head})
	if err != nil || got.Lines != 2*each {
		t.Fatalf("the exported chain: %+v, %v", got, err)
	}
}
