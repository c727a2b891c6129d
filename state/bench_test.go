package state_test

// `make bench` runs these. Appends are durable (SQLite: WAL, synchronous=FULL; PostgreSQL:
// synchronous_commit on); the SQLite file is in the test's temp dir (HOSTKEY_BENCH_DIR
// picks another disk). PostgreSQL needs HOSTKEY_TEST_POSTGRES_URL.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

func benchTarget(b *testing.B, engine string) string {
	if engine == "postgres" {
		return freshSchema(b, postgresURL(b))
	}
	dir := os.Getenv("HOSTKEY_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "state.db")
}

func benchOpen(b *testing.B, engine string) state.Store {
	s, err := state.Open(ctx, benchTarget(b, engine))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// latencies collects per-operation times and reports p50 and p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	pct := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "appends/s")
}

// BenchmarkAppend64 is 64 concurrent durable appends with dedupe keys (the webhook
// receiver's callbacks at 64 connections); group commit shares each fsync.
func BenchmarkAppend64(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := benchOpen(b, engine)
			var lat latencies
			var seq sync.Mutex
			n := 0
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 goroutines
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					seq.Lock()
					n++
					key := fmt.Sprint("cb-", n)
					seq.Unlock()
					t0 := time.Now()
					if _, _, err := s.Append(ctx, ev("install_done", 1, key), key); err != nil {
						b.Error(err)
						return
					}
					lat.add(time.Since(t0))
				}
			})
			lat.report(b, time.Since(start))
		})
	}
}

// BenchmarkAppendOne is one caller alone: the latency of one durable append.
func BenchmarkAppendOne(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := benchOpen(b, engine)
			var lat latencies
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				t0 := time.Now()
				key := fmt.Sprint("one-", i)
				if _, _, err := s.Append(ctx, ev("install_done", 1, key), key); err != nil {
					b.Fatal(err)
				}
				lat.add(time.Since(t0))
			}
			lat.report(b, time.Since(start))
		})
	}
}

// BenchmarkSince reads 100 events after a cursor from a log of 10,000.
func BenchmarkSince(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := benchOpen(b, engine)
			var wg sync.WaitGroup
			for w := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 200 {
						if _, _, err := s.Append(ctx, ev("install_done", int64(i%7), fmt.Sprint(w, i)), ""); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ResetTimer()
			for i := range b.N {
				p, err := s.Since(ctx, uint64(i*97%9900), 100, state.Filter{})
				if err != nil || len(p.Events) != 100 {
					b.Fatalf("%d events, %v", len(p.Events), err)
				}
			}
		})
	}
}

// BenchmarkOpen is what a process start pays for the store: a first start (create the
// file, WAL, migrations) and a later one (check the schema version).
func BenchmarkOpen(b *testing.B) {
	for _, fresh := range []bool{true, false} {
		b.Run(map[bool]string{true: "first", false: "again"}[fresh], func(b *testing.B) {
			dir := b.TempDir()
			for i := range b.N {
				target := filepath.Join(dir, "state.db")
				if fresh {
					target = filepath.Join(dir, fmt.Sprint(i), "state.db")
				}
				s, err := state.Open(ctx, target)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
