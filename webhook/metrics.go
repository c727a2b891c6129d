package webhook

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Rejection reasons, the `reason` label of hostkey_webhook_rejected_total.
const (
	ReasonNotFound    = "not_found"    // unknown route or method
	ReasonBadSecret   = "bad_secret"   // install callback with an unknown or malformed secret
	ReasonBadToken    = "bad_token"    // login alert with a wrong path token
	ReasonSourceIP    = "source_ip"    // caller is not one of the server's IPs (check on)
	ReasonTooLarge    = "too_large"    // body over the limit
	ReasonBadRequest  = "bad_request"  // unreadable body
	ReasonRateLimited = "rate_limited" // per-source rate limit
	ReasonStoreError  = "store_error"  // the store failed: nothing was acknowledged
)

var allReasons = []string{ReasonNotFound, ReasonBadSecret, ReasonBadToken, ReasonSourceIP, ReasonTooLarge,
	ReasonBadRequest, ReasonRateLimited, ReasonStoreError}

// storeBuckets are the upper bounds (seconds) of the store latency histogram.
var storeBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// metrics are hand-written Prometheus counters: no client library, text format 0.0.4.
type metrics struct {
	accepted      sync.Map // kind → *atomic.Uint64
	rejected      sync.Map // reason → *atomic.Uint64
	duplicates    atomic.Uint64
	notifyDropped atomic.Uint64
	prunedEvents  atomic.Uint64
	prunedJobs    atomic.Uint64
	inflight      atomic.Int64

	histMu    sync.Mutex
	histCount []uint64 // per bucket, non-cumulative; last = +Inf
	histSum   float64
	histN     uint64
}

func newMetrics() *metrics {
	m := &metrics{histCount: make([]uint64, len(storeBuckets)+1)}
	for _, r := range allReasons {
		m.rejected.Store(r, new(atomic.Uint64))
	}
	return m
}

func counter(m *sync.Map, label string) *atomic.Uint64 {
	if v, ok := m.Load(label); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := m.LoadOrStore(label, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

func (m *metrics) accept(kind string)   { counter(&m.accepted, kind).Add(1) }
func (m *metrics) reject(reason string) { counter(&m.rejected, reason).Add(1) }

func (m *metrics) observeStore(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(storeBuckets, s) // first bucket with bound >= s
	m.histMu.Lock()
	m.histCount[i]++
	m.histSum += s
	m.histN++
	m.histMu.Unlock()
}

// Snapshot is a copy of the counters, for tests and the load test.
type Snapshot struct {
	Accepted      map[string]uint64
	Rejected      map[string]uint64
	Duplicates    uint64
	NotifyDropped uint64
	StoreWrites   uint64
	PrunedEvents  uint64
	PrunedJobs    uint64
}

func (m *metrics) snapshot() Snapshot {
	s := Snapshot{Accepted: map[string]uint64{}, Rejected: map[string]uint64{}}
	m.accepted.Range(func(k, v any) bool { s.Accepted[k.(string)] = v.(*atomic.Uint64).Load(); return true })
	m.rejected.Range(func(k, v any) bool { s.Rejected[k.(string)] = v.(*atomic.Uint64).Load(); return true })
	s.Duplicates = m.duplicates.Load()
	s.NotifyDropped = m.notifyDropped.Load()
	s.PrunedEvents, s.PrunedJobs = m.prunedEvents.Load(), m.prunedJobs.Load()
	m.histMu.Lock()
	s.StoreWrites = m.histN
	m.histMu.Unlock()
	return s
}

func sortedLabels(m *sync.Map) []string {
	var out []string
	m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	sort.Strings(out)
	return out
}

func (m *metrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP hostkey_webhook_accepted_total Events accepted and stored, by kind.")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_accepted_total counter")
	for _, k := range sortedLabels(&m.accepted) {
		fmt.Fprintf(w, "hostkey_webhook_accepted_total{kind=%q} %d\n", k, counter(&m.accepted, k).Load())
	}
	fmt.Fprintln(w, "# HELP hostkey_webhook_rejected_total Requests refused, by reason.")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_rejected_total counter")
	for _, r := range sortedLabels(&m.rejected) {
		fmt.Fprintf(w, "hostkey_webhook_rejected_total{reason=%q} %d\n", r, counter(&m.rejected, r).Load())
	}
	fmt.Fprintln(w, "# HELP hostkey_webhook_duplicates_total Replayed callbacks answered without a new event.")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_duplicates_total counter")
	fmt.Fprintf(w, "hostkey_webhook_duplicates_total %d\n", m.duplicates.Load())
	fmt.Fprintln(w, "# HELP hostkey_webhook_notify_dropped_total Events not pushed to MCP clients because the queue was full (still readable from the store).")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_notify_dropped_total counter")
	fmt.Fprintf(w, "hostkey_webhook_notify_dropped_total %d\n", m.notifyDropped.Load())
	fmt.Fprintln(w, "# HELP hostkey_webhook_pruned_total Events and jobs removed by the retention (--events-retention).")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_pruned_total counter")
	fmt.Fprintf(w, "hostkey_webhook_pruned_total{what=\"events\"} %d\n", m.prunedEvents.Load())
	fmt.Fprintf(w, "hostkey_webhook_pruned_total{what=\"jobs\"} %d\n", m.prunedJobs.Load())
	fmt.Fprintln(w, "# HELP hostkey_webhook_inflight_requests Webhook requests being handled.")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_inflight_requests gauge")
	fmt.Fprintf(w, "hostkey_webhook_inflight_requests %d\n", m.inflight.Load())

	m.histMu.Lock()
	counts := append([]uint64(nil), m.histCount...)
	sum, n := m.histSum, m.histN
	m.histMu.Unlock()
	fmt.Fprintln(w, "# HELP hostkey_webhook_store_seconds Latency of durable store writes (commit and fsync).")
	fmt.Fprintln(w, "# TYPE hostkey_webhook_store_seconds histogram")
	var cum uint64
	for i, b := range storeBuckets {
		cum += counts[i]
		fmt.Fprintf(w, "hostkey_webhook_store_seconds_bucket{le=%q} %d\n", formatFloat(b), cum)
	}
	cum += counts[len(storeBuckets)]
	fmt.Fprintf(w, "hostkey_webhook_store_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "hostkey_webhook_store_seconds_sum %s\n", formatFloat(sum))
	fmt.Fprintf(w, "hostkey_webhook_store_seconds_count %d\n", n)
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", f)
}

func (m *metrics) handler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}
