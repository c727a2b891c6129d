package outbound

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// latencyBuckets are the upper bounds (seconds) of the delivery latency histogram.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type destMetrics struct {
	delivered, retries, dead, gone uint64
	buckets                        []uint64 // non-cumulative; last = +Inf
	sum                            float64
	n                              uint64
}

// metrics are this process's counters, by destination key (never the URL).
type metrics struct {
	mu   sync.Mutex
	keys []string
	by   map[string]*destMetrics
}

func newMetrics(ds []*dest) *metrics {
	m := &metrics{by: map[string]*destMetrics{}}
	for _, d := range ds {
		m.keys = append(m.keys, d.key)
		m.by[d.key] = &destMetrics{buckets: make([]uint64, len(latencyBuckets)+1)}
	}
	return m
}

func (m *metrics) with(key string, f func(*destMetrics)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.by[key]; d != nil {
		f(d)
	}
}

func (m *metrics) delivered(key string) { m.with(key, func(d *destMetrics) { d.delivered++ }) }
func (m *metrics) retry(key string)     { m.with(key, func(d *destMetrics) { d.retries++ }) }
func (m *metrics) dead(key string)      { m.with(key, func(d *destMetrics) { d.dead++ }) }
func (m *metrics) gone(key string)      { m.with(key, func(d *destMetrics) { d.gone++ }) }

func (m *metrics) observe(key string, took time.Duration) {
	s := took.Seconds()
	m.with(key, func(d *destMetrics) {
		i := 0
		for i < len(latencyBuckets) && s > latencyBuckets[i] {
			i++
		}
		d.buckets[i]++
		d.sum += s
		d.n++
	})
}

// metricsRow is one destination's counters, copied out of the lock.
type metricsRow struct {
	key string
	d   destMetrics
}

// counter writes one Prometheus counter family, a sample per destination.
func counter(w io.Writer, name, help string, rows []metricsRow, value func(*destMetrics) uint64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	for i := range rows {
		fmt.Fprintf(w, "%s{dest=%q} %d\n", name, rows[i].key, value(&rows[i].d))
	}
}

// WriteMetrics writes this process's delivery counters and the store's queue (pending
// and dead letters of every destination) in the Prometheus text format.
func (e *Engine) WriteMetrics(ctx context.Context, w io.Writer) {
	e.m.mu.Lock()
	rows := make([]metricsRow, 0, len(e.m.keys))
	for _, k := range e.m.keys {
		d := *e.m.by[k]
		d.buckets = append([]uint64(nil), d.buckets...)
		rows = append(rows, metricsRow{k, d})
	}
	e.m.mu.Unlock()
	counter(w, "hostkey_notify_deliveries_total", "Outbound deliveries accepted by the destination (2xx), by this process.", rows, func(d *destMetrics) uint64 { return d.delivered })
	counter(w, "hostkey_notify_retries_total", "Failed attempts scheduled for a retry.", rows, func(d *destMetrics) uint64 { return d.retries })
	counter(w, "hostkey_notify_dead_letters_total", "Deliveries given up (dead letters), by this process.", rows, func(d *destMetrics) uint64 { return d.dead })
	counter(w, "hostkey_notify_gone_total", "Destinations disabled by 410 Gone.", rows, func(d *destMetrics) uint64 { return d.gone })
	fmt.Fprintln(w, "# HELP hostkey_notify_delivery_seconds Time of one delivery attempt.")
	fmt.Fprintln(w, "# TYPE hostkey_notify_delivery_seconds histogram")
	for _, r := range rows {
		var cum uint64
		for i, b := range latencyBuckets {
			cum += r.d.buckets[i]
			fmt.Fprintf(w, "hostkey_notify_delivery_seconds_bucket{dest=%q,le=\"%g\"} %d\n", r.key, b, cum)
		}
		cum += r.d.buckets[len(latencyBuckets)]
		fmt.Fprintf(w, "hostkey_notify_delivery_seconds_bucket{dest=%q,le=\"+Inf\"} %d\n", r.key, cum)
		fmt.Fprintf(w, "hostkey_notify_delivery_seconds_sum{dest=%q} %g\n", r.key, r.d.sum)
		fmt.Fprintf(w, "hostkey_notify_delivery_seconds_count{dest=%q} %d\n", r.key, r.d.n)
	}
	st, err := e.ob.OutboxStats(ctx)
	if err != nil {
		return
	}
	fmt.Fprintln(w, "# HELP hostkey_notify_pending Deliveries waiting in the outbox (all processes).")
	fmt.Fprintln(w, "# TYPE hostkey_notify_pending gauge")
	for _, s := range st {
		fmt.Fprintf(w, "hostkey_notify_pending{dest=%q} %d\n", s.Dest, s.Pending)
	}
	fmt.Fprintln(w, "# HELP hostkey_notify_dead_letters Dead letters kept in the outbox (all processes).")
	fmt.Fprintln(w, "# TYPE hostkey_notify_dead_letters gauge")
	for _, s := range st {
		fmt.Fprintf(w, "hostkey_notify_dead_letters{dest=%q} %d\n", s.Dest, s.Dead)
	}
}

// DestinationStatus is what operators see of a destination (doctor, the MCP resource).
type DestinationStatus struct {
	Key           string       `json:"key"`
	URL           string       `json:"url"` // redacted: scheme and host
	Format        string       `json:"format"`
	Pending       int          `json:"pending"`
	Delivered     int          `json:"delivered"`
	Dead          int          `json:"dead_letters"`
	Disabled      string       `json:"disabled,omitempty"`
	OldestPending *time.Time   `json:"oldest_pending,omitempty"`
	NextAttempt   *time.Time   `json:"next_attempt,omitempty"`
	LastError     string       `json:"last_error,omitempty"`
	DeadLetters   []DeadLetter `json:"recent_dead_letters,omitempty"`
}

// DeadLetter is a delivery given up.
type DeadLetter struct {
	WebhookID string    `json:"webhook_id"`
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	Cursor    uint64    `json:"cursor"`
	Attempts  int       `json:"attempts"`
	GaveUp    time.Time `json:"gave_up"`
	Error     string    `json:"error"`
}

// Status describes the configured destinations with up to deadLimit recent dead letters
// each. Errors are the store's; no destination's response is ever part of it.
func (e *Engine) Status(ctx context.Context, deadLimit int) ([]DestinationStatus, error) {
	return StatusOf(ctx, e.ob, destinationsOf(e.dests), deadLimit)
}

func destinationsOf(ds []*dest) []Destination {
	out := make([]Destination, len(ds))
	for i, d := range ds {
		out[i] = d.Destination
	}
	return out
}

// StatusOf is Status for a process that does not deliver (doctor).
func StatusOf(ctx context.Context, ob state.Outbox, ds []Destination, deadLimit int) ([]DestinationStatus, error) {
	all, err := ob.OutboxStats(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[string]state.DestinationStats{}
	for _, s := range all {
		byKey[s.Dest] = s
	}
	out := make([]DestinationStatus, 0, len(ds))
	for _, d := range ds {
		s := byKey[d.Key()]
		f := d.Format
		if f == "" {
			f = FormatStandard
		}
		st := DestinationStatus{Key: d.Key(), URL: d.Redacted(), Format: f, Pending: s.Pending, Delivered: s.Delivered,
			Dead: s.Dead, Disabled: s.Disabled, LastError: s.LastError}
		if !s.OldestPending.IsZero() {
			t, n := s.OldestPending, s.NextAttempt
			st.OldestPending, st.NextAttempt = &t, &n
		}
		if deadLimit > 0 && s.Dead > 0 {
			dl, err := ob.DeadLetters(ctx, d.Key(), deadLimit)
			if err != nil {
				return nil, err
			}
			for _, x := range dl {
				typ := x.Event.Kind
				if p, err := PayloadOf(x.Event); err == nil {
					typ = p.Type
				}
				st.DeadLetters = append(st.DeadLetters, DeadLetter{WebhookID: x.WebhookID, EventID: x.Event.ID, Type: typ,
					Cursor: x.Event.Cursor, Attempts: x.Attempts, GaveUp: x.DoneAt, Error: x.LastError})
			}
		}
		out = append(out, st)
	}
	return out, nil
}
