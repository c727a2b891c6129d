package outbound

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// BenchmarkDeliveryThroughput delivers b.N signed events from a SQLite store (in the
// data dir's configuration: WAL, fsync on commit) to a loopback receiver, one
// destination, in order. The figure in the README comes from `make bench`.
func BenchmarkDeliveryThroughput(b *testing.B) {
	st := openStore(b, "")
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == n {
			close(done)
		}
	}))
	defer srv.Close()
	d := Destination{URL: srv.URL, Secret: secret}
	if _, err := st.(state.Outbox).ClaimDestination(ctx, d.Key(), "setup", 0, time.Nanosecond); err != nil {
		b.Fatal(err)
	}
	// Appends in parallel: the store commits them in groups.
	var wg sync.WaitGroup
	per := (b.N + 15) / 16
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * per; i < min((w+1)*per, b.N); i++ {
				appendEvent(b, st, "login_alert", 0, "", map[string]any{"source_ip": "203.0.113.7"})
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	e, err := New(Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true})
	if err != nil {
		b.Fatal(err)
	}
	e.Start(ctx)
	defer e.Close()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
