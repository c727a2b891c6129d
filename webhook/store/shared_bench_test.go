package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// BenchmarkSharedCallback is what one install callback costs the receiver's store at 64
// concurrent callers: look the job up by its secret hash, then record the event and
// mark the job done in one durable commit.
func BenchmarkSharedCallback(b *testing.B) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(b.TempDir(), state.FileName))
	if err != nil {
		b.Fatal(err)
	}
	s := NewShared(st)
	defer s.Close()
	const jobs = 20000
	var wg sync.WaitGroup
	for w := range 64 { // concurrent, so the jobs share commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 64 {
				h := sha256.Sum256([]byte(fmt.Sprint(i)))
				if err := s.CreateJob(ctx, Job{ID: fmt.Sprint("job", i), SecretHash: h[:], ServerID: int64(i), Created: time.Now()}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) % jobs
			h := sha256.Sum256([]byte(fmt.Sprint(i)))
			j, err := s.JobBySecretHash(ctx, h[:])
			if err != nil {
				b.Error(err)
				return
			}
			if _, _, _, err := s.CompleteJob(ctx, j.ID, Event{Kind: KindInstallDone, ServerID: j.ServerID, JobID: j.ID, Data: map[string]any{"ok": true}}, j.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
