// Package outbound delivers events to chat-ops bots and channels: signed (Standard
// Webhooks) or as Slack-style messages, from the durable outbox of the shared store
// (state.Outbox), at least once, in cursor order per destination, retried with
// exponential backoff and jitter, by one process per destination (lease).
//
// It knows nothing of MCP: the tools layer shows its status to operators.
// It may import invapi, schemas and state; never policy, tools or cmd.
package outbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/state"
)

// Formats.
const (
	FormatStandard = "standard" // JSON body with Standard Webhooks signature headers
	FormatSlack    = "slack"    // {"text": ...}: Slack, Mattermost, Rocket.Chat incoming webhooks
)

// Filter narrows what a destination receives. Empty fields match everything.
type Filter struct {
	Types    []string // event types; "job" matches every job.*, "approval" both approval.*
	Servers  []int64
	Toolsets []string // the toolset of the event's tool (Options.ToolsetOf)
}

// Destination is one receiver.
type Destination struct {
	URL    string
	Secret string // signing secret (from the environment or a file, never a flag)
	Format string // FormatStandard (default) or FormatSlack
	Filter Filter
}

// Key identifies the destination in the store and in metrics: a hash of its URL (the
// URL itself may be a credential, as Slack's incoming-webhook URLs are).
func (d Destination) Key() string {
	h := sha256.Sum256([]byte(d.URL))
	return "dest_" + hex.EncodeToString(h[:8])
}

// Redacted is the URL safe to show: scheme and host.
func (d Destination) Redacted() string { return RedactURL(d.URL) }

// RedactURL cuts u to its scheme and host.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(unparseable URL)"
	}
	return p.Scheme + "://" + p.Host + "/…"
}

// Options configure an Engine.
type Options struct {
	Store        state.Store // must also implement state.Outbox
	Destinations []Destination
	Owner        string        // this process in leases (default: a random id)
	AllowPrivate bool          // deliver to loopback, private and link-local addresses
	MaxAge       time.Duration // retry for this long, then dead letter (default 24h)
	BaseBackoff  time.Duration // first retry delay (default 1s), doubled per attempt
	MaxBackoff   time.Duration // longest delay between attempts (default 1h)
	Timeout      time.Duration // one attempt (default 10s)
	LeaseTTL     time.Duration // destination lease (default 30s)
	Batch        int           // deliveries read at once (default 100)
	Logger       *zap.Logger
	Now          func() time.Time
	ToolsetOf    func(tool string) string // for Filter.Toolsets

	public func(netip.Addr) bool                // tests: which addresses count as the internet
	jitter func() float64                       // tests: 0..1
	after  func(time.Duration) <-chan time.Time // tests: a scaled clock's timers
}

// Engine delivers the outbox.
type Engine struct {
	o     Options
	ob    state.Outbox
	dests []*dest
	log   *zap.Logger
	pol   addrPolicy
	http  *http.Client
	m     *metrics

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pruned atomic.Int64 // Unix seconds of the last outbox pruning
}

// Retention of finished deliveries: delivered rows a day, dead letters a week (they are
// what operators look at).
const (
	keepDelivered = 24 * time.Hour
	keepDead      = 7 * 24 * time.Hour
	pruneEvery    = time.Hour
)

type dest struct {
	Destination
	key string
}

// New validates the destinations: a bad URL, a plain-http or private destination, an
// unknown format or a standard destination without a secret is an error naming it.
func New(o Options) (*Engine, error) {
	ob, ok := o.Store.(state.Outbox)
	if !ok || o.Store == nil {
		return nil, errors.New("outbound: the store has no outbox")
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Owner == "" {
		o.Owner = state.NewID("proc_")
	}
	if o.jitter == nil {
		o.jitter = rand.Float64
	}
	if o.after == nil {
		o.after = time.After
	}
	e := &Engine{o: o, ob: ob, log: o.Logger, pol: addrPolicy{allowPrivate: o.AllowPrivate, public: o.public}}
	e.http = e.pol.client(o.Timeout)
	seen := map[string]bool{}
	for i, d := range o.Destinations {
		if err := e.validate(&d); err != nil {
			return nil, fmt.Errorf("--notify-url #%d (%s): %w", i+1, RedactURL(d.URL), err)
		}
		if seen[d.URL] {
			return nil, fmt.Errorf("--notify-url #%d (%s): given twice", i+1, RedactURL(d.URL))
		}
		seen[d.URL] = true
		e.dests = append(e.dests, &dest{Destination: d, key: d.Key()})
	}
	e.m = newMetrics(e.dests)
	return e, nil
}

func (e *Engine) validate(d *Destination) error {
	u, err := url.Parse(d.URL)
	if err != nil {
		return errors.New("not a URL")
	}
	if err := e.pol.checkURL(u); err != nil {
		return err
	}
	switch d.Format {
	case "":
		d.Format = FormatStandard
	case FormatStandard, FormatSlack:
	default:
		return fmt.Errorf("format %q: want %q or %q", d.Format, FormatStandard, FormatSlack)
	}
	if d.Format == FormatStandard && d.Secret == "" {
		return errors.New("a standard destination needs a signing secret (HOSTKEY_NOTIFY_SECRET or --notify-secret-file)")
	}
	for _, t := range d.Filter.Types {
		if !slices.Contains(Types, t) && !slices.ContainsFunc(Types, func(x string) bool { return strings.HasPrefix(x, t+".") }) {
			return fmt.Errorf("filter: unknown event type %q (known: %s)", t, strings.Join(Types, ", "))
		}
	}
	return nil
}

// Start runs one delivery loop per destination until Close.
func (e *Engine) Start(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, e.cancel = context.WithCancel(ctx)
	for _, d := range e.dests {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.loop(ctx, d)
		}()
	}
}

// Close stops the loops; a delivery in flight is abandoned and made again later (its
// outcome was not recorded): at least once.
func (e *Engine) Close() {
	e.mu.Lock()
	cancel := e.cancel
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	e.wg.Wait()
	e.http.CloseIdleConnections()
}

func (e *Engine) loop(ctx context.Context, d *dest) {
	for ctx.Err() == nil {
		wake := e.o.Store.Wake(state.TopicEvents)
		wait, err := e.step(ctx, d)
		if err != nil && ctx.Err() == nil {
			if !errors.Is(err, state.ErrLeaseHeld) {
				e.log.Warn("outbound delivery step failed", zap.String("destination", d.Redacted()), zap.Error(err))
			}
		}
		if wait <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-e.o.after(wait):
		}
	}
}

// step takes (or renews) the lease, enqueues new events and makes the deliveries that
// are due, in order. It returns how long to wait before the next step (at most, new
// events wake it earlier).
func (e *Engine) step(ctx context.Context, d *dest) (time.Duration, error) {
	idle := e.o.LeaseTTL / 3
	start, err := e.o.Store.LastCursor(ctx)
	if err != nil {
		return time.Second, err
	}
	l, err := e.ob.ClaimDestination(ctx, d.key, e.o.Owner, start, e.o.LeaseTTL)
	if err != nil {
		return idle, err
	}
	if l.Disabled != "" {
		return idle, nil
	}
	if last := e.pruned.Load(); time.Since(time.Unix(last, 0)) > pruneEvery && e.pruned.CompareAndSwap(last, time.Now().Unix()) {
		if _, err := e.ob.PruneOutbox(ctx, time.Now().Add(-keepDelivered), time.Now().Add(-keepDead)); err != nil {
			e.log.Warn("could not prune the outbox", zap.Error(err))
		}
	}
	// Follow the log: rows and the cursor commit together (state.Outbox).
	page, err := e.o.Store.Since(ctx, l.Through, 500, state.Filter{})
	if err != nil {
		return time.Second, err
	}
	if page.PrunedThrough > l.Through {
		e.log.Warn("events were pruned before they were delivered", zap.String("destination", d.Redacted()),
			zap.Uint64("after", l.Through), zap.Uint64("through", page.PrunedThrough))
	}
	if page.Next > l.Through {
		var want []state.Event
		for _, ev := range page.Events {
			if e.wants(d, ev) {
				want = append(want, ev)
			}
		}
		if err := e.ob.Enqueue(ctx, l, want, page.Next); err != nil {
			return time.Second, err
		}
	}
	pending, err := e.ob.PendingDeliveries(ctx, d.key, e.o.Batch)
	if err != nil {
		return time.Second, err
	}
	var outs []state.DeliveryOutcome
	wait := idle
	if page.More {
		wait = 0
	}
	gone := false
	for _, del := range pending {
		// The lease is in the store's clock (the machine's, or PostgreSQL's).
		if time.Until(l.Until) < e.o.LeaseTTL/3 {
			wait = 0 // renew the lease before going on
			break
		}
		now := e.o.Now()
		if del.NextAttempt.After(now) {
			wait = min(wait, del.NextAttempt.Sub(now))
			break
		}
		out, status := e.deliver(ctx, d, del)
		if ctx.Err() != nil {
			break // abandoned: delivered again later
		}
		if status == http.StatusGone {
			gone = true
			break
		}
		outs = append(outs, out)
		if !out.Delivered && !out.Dead {
			wait = min(wait, max(out.NextAttempt.Sub(e.o.Now()), 0))
			break // per-destination order: nothing overtakes a retried delivery
		}
	}
	if len(outs) == len(pending) && len(pending) == e.o.Batch {
		wait = 0
	}
	rctx := context.WithoutCancel(ctx)
	if len(outs) > 0 {
		if err := e.ob.RecordOutcomes(rctx, l, outs); err != nil {
			return time.Second, err
		}
	}
	if gone {
		e.log.Warn("destination answered 410 Gone: disabled", zap.String("destination", d.Redacted()))
		e.m.gone(d.key)
		if err := e.ob.DisableDestination(rctx, l, "410 Gone at "+e.o.Now().UTC().Format(time.RFC3339)); err != nil {
			return time.Second, err
		}
	}
	return wait, nil
}

// wants applies the destination's filter.
func (e *Engine) wants(d *dest, ev state.Event) bool {
	f := d.Filter
	if len(f.Servers) > 0 && !slices.Contains(f.Servers, ev.ServerID) {
		return false
	}
	if len(f.Types) == 0 && len(f.Toolsets) == 0 {
		return true
	}
	p, err := PayloadOf(ev)
	if err != nil {
		return true // delivered as a dead letter, so it is seen
	}
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool { return p.Type == t || strings.HasPrefix(p.Type, t+".") }) {
		return false
	}
	if len(f.Toolsets) > 0 {
		tool, _ := p.Data["tool"].(string)
		if tool == "" || e.o.ToolsetOf == nil || !slices.Contains(f.Toolsets, e.o.ToolsetOf(tool)) {
			return false
		}
	}
	return true
}

// deliver makes one attempt. The response body is read (to reuse the connection) and
// dropped: nothing a destination answers reaches the model, the logs or the store.
func (e *Engine) deliver(ctx context.Context, d *dest, del state.Delivery) (state.DeliveryOutcome, int) {
	out := state.DeliveryOutcome{Cursor: del.Event.Cursor}
	p, err := PayloadOf(del.Event)
	var b []byte
	if err == nil {
		b, err = body(d.Format, p)
	}
	if err != nil {
		out.Dead, out.Error = true, "the event cannot be rendered: "+err.Error()
		e.m.dead(d.key)
		return out, 0
	}
	now := e.o.Now()
	ts := now.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(b))
	if err != nil {
		out.Dead, out.Error = true, "bad request: "+err.Error()
		e.m.dead(d.key)
		return out, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hostkey-mcp-notify/1")
	req.Header.Set(HeaderID, del.WebhookID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if d.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(d.Secret, del.WebhookID, ts, b))
	}
	t0 := time.Now()
	resp, err := e.http.Do(req)
	status := 0
	var retryAfter time.Duration
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		status = resp.StatusCode
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), e.o.Now())
	}
	e.m.observe(d.key, time.Since(t0))
	switch {
	case err == nil && status >= 200 && status < 300:
		out.Delivered = true
		e.m.delivered(d.key)
		return out, status
	case status == http.StatusGone:
		return out, status
	case err != nil:
		out.Error = describe(err)
	default:
		out.Error = fmt.Sprintf("HTTP %d", status)
	}
	if e.o.Now().Sub(del.Created) >= e.o.MaxAge {
		out.Dead = true
		out.Error = fmt.Sprintf("gave up after %d attempts over %s: %s", del.Attempts+1, e.o.MaxAge, out.Error)
		e.m.dead(d.key)
		return out, status
	}
	delay := e.backoff(del.Attempts)
	if retryAfter > delay {
		delay = retryAfter
	}
	// Counted from the answer (Retry-After is relative to it); the last attempt is made
	// at the end of MaxAge, not after it.
	answered := e.o.Now()
	if end := del.Created.Add(e.o.MaxAge); answered.Add(delay).After(end) {
		delay = max(end.Sub(answered), 0)
	}
	out.NextAttempt = answered.Add(delay)
	e.m.retry(d.key)
	return out, status
}

// backoff is BaseBackoff·2^attempts, capped, with jitter (half to all of it), so that
// many processes' retries after an outage do not arrive together.
func (e *Engine) backoff(attempts int) time.Duration {
	d := float64(e.o.BaseBackoff) * math.Pow(2, float64(min(attempts, 30)))
	d = min(d, float64(e.o.MaxBackoff))
	return time.Duration(d * (0.5 + 0.5*e.o.jitter()))
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// describe words a transport error without the URL (it may hold a credential).
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
