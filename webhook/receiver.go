// Package webhook is HTTP ingress only: it receives the callbacks hostkey-mcp asks invapi
// and fresh servers to make — post_install_callback when an install finishes, login
// notifications of API keys — authenticates and rate-limits them, records each one
// durably, and hands it to a Notifier. It offers a small Go API to the MCP side
// (tools/events): jobs and callback URLs (NewJob, Track, WaitJob), cursor reads (Since,
// LastCursor) and the notifier hook. It may import invapi, schemas and its own store; it
// never imports mcp-go (TestLayout).
//
// Flow of an install callback:
//
//  1. A reinstall/order/create_pxe tool call passes through tools/events.InjectCallback,
//     which creates a job with a 256-bit secret and adds
//     post_install_callback=<public-url>/cb/install/<secret>.
//  2. The fresh server (or the simulator) calls that URL with GET or POST.
//  3. The receiver finds the job by SHA-256(secret), optionally checks the caller's IP
//     against the server's, writes the event and the job's completion in one fsynced
//     commit, and only then answers 200.
//  4. The event is handed to the Notifier (tools/events.Notifier in the server).
//
// Cursors are strictly increasing and never reused: a reader that reconnects passes the
// last cursor it saw and gets exactly what it missed.
// It may import invapi, schemas, state and its own subpackages; never mcp-go, policy,
// tools or cmd.
package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// Event and Job are the store's types.
type (
	Event = store.Event
	Job   = store.Job
)

// Notifier turns a stored event into MCP notifications. It is called once per new event
// (never for duplicates), from one goroutine, in cursor order, after the event is durable
// and the sender has been answered. OriginFromContext(ctx) tells whether the tool call
// that started the job is still open.
type Notifier interface {
	Notify(ctx context.Context, ev Event)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, ev Event)

// Notify implements Notifier.
func (f NotifierFunc) Notify(ctx context.Context, ev Event) { f(ctx, ev) }

// ServerIPLookup returns a server's IP addresses (from eq/show), for the source check.
type ServerIPLookup func(ctx context.Context, serverID int64) ([]string, error)

// Config configures a Receiver.
type Config struct {
	// PublicURL is where invapi and fresh servers reach this receiver (--public-url),
	// e.g. https://hooks.example.com/hostkey. Without it no callback is injected; the
	// receiver still serves login alerts and the events.
	PublicURL string
	Store     store.Store // required
	Notifier  Notifier    // may be set later with SetNotifier
	Logger    *zap.Logger

	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed (--trusted-proxies).
	TrustedProxies []netip.Prefix
	// CheckSourceIP accepts an install callback only from one of the server's own IPs
	// (--check-source-ip). Jobs whose server IPs are unknown (a new order) are accepted
	// and their event says source_verified=false.
	CheckSourceIP bool
	// ServerIPs looks up a server's IPs when a job is created without them (optional).
	ServerIPs ServerIPLookup

	MaxBodyBytes int64      // default 64 KiB
	RateLimit    rate.Limit // requests per second per source IP (IPv6: per /64); default 10, rate.Inf disables
	RateBurst    int        // default 40
	NotifyQueue  int        // events waiting for the Notifier, default 1024; beyond, pushes are dropped (counted)
	Now          func() time.Time

	// Retention is how long events and finished jobs are kept (--events-retention);
	// 0 keeps them forever. Pruning runs a minute after start and then every PruneEvery
	// (default 1h), when the store implements store.Pruner.
	Retention  time.Duration
	PruneEvery time.Duration
}

// Receiver is the webhook endpoint: routes, parsing, authentication, the event log.
type Receiver struct {
	cfg     Config
	store   store.Store
	log     *zap.Logger
	metrics *metrics
	limiter *limiter
	handler http.Handler
	public  string // PublicURL without trailing slash, "" when unset
	now     func() time.Time

	notifier   atomic.Pointer[notifierBox]
	loginHash  atomic.Pointer[[sha256.Size]byte]
	identity   string // the store's, the same in every process on it
	queue      chan queued
	queueMu    sync.RWMutex
	closed     bool
	workerDone chan struct{}
	stopPrune  chan struct{}
	pruneDone  chan struct{}

	mu      sync.Mutex
	waiters map[string][]chan struct{} // job ID → WaitJob callers
	open    map[string]Origin          // job ID → tool call still running

	// With a store that other processes write to, the notifications come from following
	// its event log by cursor, so every process's sessions hear of every event once.
	follower   store.Follower
	followOnce sync.Once
	accepted   map[uint64]time.Time // cursor → when this process stored it (until followed)
	stopFollow chan struct{}
	followDone chan struct{}
}

type notifierBox struct{ n Notifier }

type queued struct {
	ev       Event
	origin   *Origin
	accepted time.Time // wall+monotonic instant the event was stored (not the test clock)
}

// Origin is the tool call that started a job, while it is still running.
type Origin struct {
	Session       string
	ProgressToken any // the call's _meta.progressToken (mcp.ProgressToken)
}

type originKey struct{}

type acceptedKey struct{}

// AcceptedFromContext returns the instant (time.Now, monotonic) the notified event was
// stored. A notifier uses it to leave out sessions that connected later: they read the
// event through events_list instead of getting a live notification for the past.
func AcceptedFromContext(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(acceptedKey{}).(time.Time)
	return t, ok
}

// ContextWithAccepted stamps ctx the way the receiver does before calling the Notifier,
// for a notifier driven by hand (its tests).
func ContextWithAccepted(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, acceptedKey{}, t)
}

// OriginFromContext returns the open tool call a notified event belongs to, if any.
func OriginFromContext(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

const loginSecretName = "login_alert_token"

// New builds a receiver. It creates the login-alert token on first start and persists it.
func New(ctx context.Context, cfg Config) (*Receiver, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhook: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBody
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 10
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 40
	}
	if cfg.NotifyQueue <= 0 {
		cfg.NotifyQueue = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Receiver{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, metrics: newMetrics(), now: cfg.Now,
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst),
		queue:   make(chan queued, cfg.NotifyQueue), workerDone: make(chan struct{}),
		waiters: map[string][]chan struct{}{}, open: map[string]Origin{},
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("webhook: --public-url %q: want an absolute http(s) URL without query", cfg.PublicURL)
		}
		if u.Scheme == "http" && !httpx.IsLoopback(u.Hostname()) {
			r.log.Warn("public URL is plain http: callback secrets travel unencrypted; prefer https behind a reverse proxy")
		}
		r.public = strings.TrimRight(u.String(), "/")
	}
	tok, err := r.store.Secret(ctx, loginSecretName, func() (string, error) { return newSecret() })
	if err != nil {
		return nil, fmt.Errorf("webhook: login alert token: %w", err)
	}
	h := sha256.Sum256([]byte(tok))
	r.loginHash.Store(&h)
	if r.identity, err = r.store.Secret(ctx, identitySecretName, func() (string, error) { return newSecret() }); err != nil {
		return nil, fmt.Errorf("webhook: store identity: %w", err)
	}
	if cfg.Notifier != nil {
		r.SetNotifier(cfg.Notifier)
	}
	r.handler = r.buildHandler()
	go r.notifyWorker()
	r.stopFollow, r.followDone = make(chan struct{}), make(chan struct{})
	if f, ok := r.store.(store.Follower); ok {
		cursor, err := f.LastCursor(ctx)
		if err != nil {
			return nil, fmt.Errorf("webhook: event log: %w", err)
		}
		r.follower, r.accepted = f, map[uint64]time.Time{}
		go r.followLoop(cursor)
	} else {
		close(r.followDone)
	}
	r.stopPrune, r.pruneDone = make(chan struct{}), make(chan struct{})
	if p, ok := r.store.(store.Pruner); ok && cfg.Retention > 0 {
		every := cfg.PruneEvery
		if every <= 0 {
			every = time.Hour
		}
		go r.pruneLoop(p, every)
	} else {
		close(r.pruneDone)
	}
	return r, nil
}

// SetNotifier sets (or replaces) the Notifier; cmd calls it once the MCP server exists.
func (r *Receiver) SetNotifier(n Notifier) { r.notifier.Store(&notifierBox{n: n}) }

// Metrics returns a snapshot of the counters.
func (r *Receiver) Metrics() Snapshot { return r.metrics.snapshot() }

// Store returns the receiver's store.
func (r *Receiver) Store() store.Store { return r.store }

// Close stops the notification worker after it has delivered what is queued (or ctx
// ends). Call it after the HTTP servers serving Handler have shut down; closing the
// store is the caller's job, after Close.
func (r *Receiver) Close(ctx context.Context) error {
	r.followOnce.Do(func() { close(r.stopFollow) })
	select {
	case <-r.followDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.queueMu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
		close(r.stopPrune)
	}
	r.queueMu.Unlock()
	select {
	case <-r.pruneDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.workerDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands q to the notify worker unless the receiver is closing. With wait it
// blocks for room (the follower can re-read nothing it drops); without, a full queue
// drops q.
func (r *Receiver) enqueue(q queued, wait bool) {
	r.queueMu.RLock()
	defer r.queueMu.RUnlock()
	if r.closed {
		r.metrics.notifyDropped.Add(1)
		return
	}
	if wait {
		r.queue <- q
		return
	}
	select {
	case r.queue <- q:
	default:
		r.metrics.notifyDropped.Add(1)
		r.log.Warn("notification queue full; event stays readable through events_list", zap.String("event", q.ev.ID))
	}
}

func (r *Receiver) notifyWorker() {
	defer close(r.workerDone)
	for q := range r.queue {
		box := r.notifier.Load()
		if box == nil || box.n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if q.origin != nil {
			ctx = context.WithValue(ctx, originKey{}, *q.origin)
		}
		if !q.accepted.IsZero() {
			ctx = ContextWithAccepted(ctx, q.accepted)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.log.Error("notifier panicked", zap.Any("panic", p), zap.String("event", q.ev.ID))
				}
			}()
			box.n.Notify(ctx, q.ev)
		}()
		cancel()
	}
}

// pruneLoop applies the retention a minute after start (or after every, if shorter: a
// short-lived CLI run never pays for a prune) and then every interval, until Close.
func (r *Receiver) pruneLoop(p store.Pruner, every time.Duration) {
	defer close(r.pruneDone)
	delay := min(every, time.Minute)
	for {
		select {
		case <-r.stopPrune:
			return
		case <-time.After(delay):
		}
		r.prune(p)
		delay = every
	}
}

// prune removes what is older than the retention now.
func (r *Receiver) prune(p store.Pruner) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := p.Prune(ctx, r.now().Add(-r.cfg.Retention))
	if err != nil {
		r.log.Warn("event retention: prune failed; will retry", zap.Error(err))
		return
	}
	r.metrics.prunedEvents.Add(uint64(res.Events))
	r.metrics.prunedJobs.Add(uint64(res.Jobs))
	if res.Events > 0 || res.Jobs > 0 {
		r.log.Info("event retention: pruned", zap.Int("events", res.Events), zap.Int("jobs", res.Jobs),
			zap.Duration("retention", r.cfg.Retention))
	}
}

// Handler serves the webhook routes:
//
//	GET|POST /cb/install/{secret}   install callbacks
//	GET|POST /alerts/login/{token}  API-key login notifications
//	GET /healthz                    store reachable → 200 "ok"
//	GET /metrics                    Prometheus text format
//
// The callback routes are also served under the path of --public-url (for proxies that
// do not strip it). Anything else, and every bad secret, is a bare 404.
func (r *Receiver) Handler() http.Handler { return r.handler }

func (r *Receiver) buildHandler() http.Handler {
	rt := mux.NewRouter()
	rt.NotFoundHandler = http.HandlerFunc(r.notFound)
	rt.MethodNotAllowedHandler = http.HandlerFunc(r.notFound)
	prefixes := []string{""}
	if r.public != "" {
		if u, err := url.Parse(r.public); err == nil && strings.Trim(u.Path, "/") != "" {
			prefixes = append(prefixes, "/"+strings.Trim(u.Path, "/"))
		}
	}
	for _, p := range prefixes {
		rt.HandleFunc(p+"/cb/install/{secret}", r.handleInstall).Methods(http.MethodGet, http.MethodPost)
		rt.HandleFunc(p+"/alerts/login/{token}", r.handleLogin).Methods(http.MethodGet, http.MethodPost)
	}
	rt.HandleFunc("/healthz", r.handleHealth).Methods(http.MethodGet, http.MethodHead)
	rt.HandleFunc("/metrics", r.metrics.handler).Methods(http.MethodGet)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				r.log.Error("webhook handler panicked", zap.Any("panic", p))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		if req.URL.Path != "/healthz" && req.URL.Path != "/metrics" {
			if !r.limiter.allow(ClientIP(req, r.cfg.TrustedProxies), r.now()) {
				r.metrics.reject(ReasonRateLimited)
				w.Header().Set("Retry-After", "1")
				http.Error(w, "too many requests", http.StatusTooManyRequests)
				return
			}
		}
		r.metrics.inflight.Add(1)
		defer r.metrics.inflight.Add(-1)
		req.Body = http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes)
		rt.ServeHTTP(w, req)
	})
}

func (r *Receiver) notFound(w http.ResponseWriter, _ *http.Request) {
	r.metrics.reject(ReasonNotFound)
	http.NotFound(w, nil)
}

// reject404 answers exactly like an unknown route: no hint that the path exists.
func (r *Receiver) reject404(w http.ResponseWriter, reason string) {
	r.metrics.reject(reason)
	http.NotFound(w, nil)
}

func (r *Receiver) handleHealth(w http.ResponseWriter, req *http.Request) {
	// Who answers: a sibling process on the same store waits for this listener.
	w.Header().Set(HeaderStore, r.identity)
	w.Header().Set(HeaderPID, strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if err := r.store.Ping(ctx); err != nil {
		// Not ready: callbacks would be answered 503 (their senders retry).
		w.Header().Set("Retry-After", "5")
		http.Error(w, "not ready: the shared state store is unreachable (callbacks are answered 503 until it returns)", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// secretPrefix is a short hash of a secret for logs: enough to correlate lines, useless
// to an attacker.
func secretPrefix(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// validSecretShape rejects what newSecret can never produce before any store lookup.
func validSecretShape(s string) bool {
	if len(s) < 22 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newSecret returns 256 random bits, base64url without padding (43 characters).
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (r *Receiver) parse(w http.ResponseWriter, req *http.Request) (*Callback, bool) {
	cb, err := ParseCallback(req, r.cfg.MaxBodyBytes)
	if err != nil {
		r.badBody(w, err)
		return nil, false
	}
	return cb, true
}

// badBody answers a callback whose body ParseCallback refused.
func (r *Receiver) badBody(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrBodyTooLarge) {
		r.metrics.reject(ReasonTooLarge)
		w.Header().Set("Connection", "close")
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	r.metrics.reject(ReasonBadRequest)
	http.Error(w, "bad request", http.StatusBadRequest)
}

// errLookupIPs: the source check needs the server's IPs from invapi, which is not done
// inside a store write.
var errLookupIPs = errors.New("webhook: the server's IPs must be looked up")

// sourceRefused is the source check's refusal (403).
type sourceRefused struct{ src netip.Addr }

func (sourceRefused) Error() string {
	return "webhook: callback from an address that is not the server's"
}

func (r *Receiver) handleInstall(w http.ResponseWriter, req *http.Request) {
	secret := mux.Vars(req)["secret"]
	if !validSecretShape(secret) {
		r.reject404(w, ReasonBadSecret)
		return
	}
	hash := sha256.Sum256([]byte(secret))
	// A field, not log.With: With encodes it for every request, logged or not.
	secretField := zap.String("secret_sha256_prefix", hex.EncodeToString(hash[:4]))
	// The store write must finish even if the sender hangs up: the sender may still have
	// seen nothing, but what was accepted is never half-written.
	ctx := context.WithoutCancel(req.Context())
	src := ClientIP(req, r.cfg.TrustedProxies)
	if sc, ok := r.store.(store.SecretCompleter); ok {
		r.installOneWrite(ctx, w, req, sc, hash, src, secretField)
		return
	}
	job, err := r.store.JobBySecretHash(ctx, hash[:])
	if !r.jobFound(w, job, hash, err, src, secretField) {
		return
	}
	cb, ok := r.parse(w, req)
	if !ok {
		return
	}
	verified, known := r.checkSource(ctx, &job, src)
	if r.cfg.CheckSourceIP && known && !verified {
		r.refuseSource(w, job, src, secretField)
		return
	}
	ev := r.installEvent(job, cb, src, verified)
	start := time.Now()
	stored, dup, err := r.complete(ctx, job.ID, ev)
	r.metrics.observeStore(time.Since(start))
	r.installStored(w, job, stored, dup, err, src, secretField)
}

// installOneWrite is handleInstall with a store that finds the job inside the write that
// completes it. The body is read first (the job is not known yet); a bad body is
// answered after a lookup, so that an unknown secret is still a bare 404.
func (r *Receiver) installOneWrite(ctx context.Context, w http.ResponseWriter, req *http.Request, sc store.SecretCompleter, hash [sha256.Size]byte, src netip.Addr, secretField zap.Field) {
	cb, perr := ParseCallback(req, r.cfg.MaxBodyBytes)
	if perr != nil {
		job, err := r.store.JobBySecretHash(ctx, hash[:])
		if r.jobFound(w, job, hash, err, src, secretField) {
			r.badBody(w, perr)
		}
		return
	}
	start := time.Now()
	stored, job, dup, err := sc.CompleteJobBySecret(ctx, hash[:], func(job Job) (Event, string, error) {
		if subtle.ConstantTimeCompare(job.SecretHash, hash[:]) != 1 {
			return Event{}, "", store.ErrNotFound
		}
		if r.cfg.CheckSourceIP && len(job.ServerIPs) == 0 && r.cfg.ServerIPs != nil && job.ServerID != 0 {
			return Event{}, "", errLookupIPs
		}
		verified, known := r.checkSource(ctx, &job, src) // no lookup: the job has its IPs
		if r.cfg.CheckSourceIP && known && !verified {
			return Event{}, "", sourceRefused{src}
		}
		return r.installEvent(job, cb, src, verified), installKey(job.ID), nil
	})
	var refused sourceRefused
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.jobFound(w, Job{}, hash, err, src, secretField)
		return
	case errors.As(err, &refused):
		r.refuseSource(w, job, src, secretField)
		return
	case errors.Is(err, errLookupIPs):
		// The slow path, as without this store: the lookup of the IPs is outside any write.
		verified, known := r.checkSource(ctx, &job, src)
		if r.cfg.CheckSourceIP && known && !verified {
			r.refuseSource(w, job, src, secretField)
			return
		}
		ev := r.installEvent(job, cb, src, verified)
		start = time.Now()
		stored, dup, err = r.complete(ctx, job.ID, ev)
	}
	r.metrics.observeStore(time.Since(start))
	r.installStored(w, job, stored, dup, err, src, secretField)
}

// jobFound answers 404 for an unknown secret and 503 for a failed lookup.
func (r *Receiver) jobFound(w http.ResponseWriter, job Job, hash [sha256.Size]byte, err error, src netip.Addr, secretField zap.Field) bool {
	if errors.Is(err, store.ErrNotFound) || (err == nil && subtle.ConstantTimeCompare(job.SecretHash, hash[:]) != 1) {
		r.log.Info("install callback with unknown secret", secretField, zap.String("source", src.String()))
		r.reject404(w, ReasonBadSecret)
		return false
	}
	if err != nil {
		r.log.Error("job lookup failed", secretField, zap.Error(err))
		r.metrics.reject(ReasonStoreError)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func (r *Receiver) refuseSource(w http.ResponseWriter, job Job, src netip.Addr, secretField zap.Field) {
	r.log.Warn("install callback from an address that is not the server's", secretField, zap.String("job", job.ID),
		zap.Int64("server", job.ServerID), zap.String("source", src.String()))
	r.metrics.reject(ReasonSourceIP)
	http.Error(w, "forbidden", http.StatusForbidden)
}

// installEvent is the install_done event of job.
func (r *Receiver) installEvent(job Job, cb *Callback, src netip.Addr, verified bool) Event {
	now := r.now().UTC()
	data := cb.Data()
	data["source_ip"] = src.String()
	if r.cfg.CheckSourceIP {
		data["source_verified"] = verified
	}
	data["started_at"] = job.Created.UTC().Format(time.RFC3339)
	if !job.Created.IsZero() {
		data["duration_seconds"] = int64(now.Sub(job.Created).Seconds())
	}
	return Event{Kind: store.KindInstallDone, ServerID: job.ServerID, JobID: job.ID, Action: job.Action,
		Session: job.Session, Time: now, Data: data}
}

// installStored answers a stored (or failed) completion.
func (r *Receiver) installStored(w http.ResponseWriter, job Job, stored Event, dup bool, err error, src netip.Addr, secretField zap.Field) {
	if err != nil {
		r.log.Error("could not store install event; not acknowledged", secretField, zap.String("job", job.ID), zap.Error(err))
		r.metrics.reject(ReasonStoreError)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if dup {
		r.metrics.duplicates.Add(1)
		r.log.Info("replayed install callback", secretField, zap.String("job", job.ID), zap.String("event", stored.ID))
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	r.metrics.accept(stored.Kind)
	_, _ = io.WriteString(w, "ok\n")
	r.log.Info("install callback accepted", secretField, zap.String("job", job.ID), zap.Int64("server", job.ServerID),
		zap.String("event", stored.ID), zap.Uint64("cursor", stored.Cursor), zap.String("source", src.String()))
	r.delivered(stored)
}

// installKey is the dedupe key of a job's completion: one event per job.
func installKey(jobID string) string { return "install:" + jobID }

// complete stores the event and marks the job done, atomically when the store can.
func (r *Receiver) complete(ctx context.Context, jobID string, ev Event) (Event, bool, error) {
	key := installKey(jobID)
	if c, ok := r.store.(store.JobCompleter); ok {
		stored, _, dup, err := c.CompleteJob(ctx, jobID, ev, key)
		return stored, dup, err
	}
	stored, dup, err := r.store.Append(ctx, ev, key)
	if err != nil {
		return Event{}, false, err
	}
	// On a replay this repairs a crash between the two writes; MarkDone is idempotent.
	if _, err := r.store.MarkDone(ctx, jobID, stored.Time, stored.ID); err != nil {
		return Event{}, false, err
	}
	return stored, dup, nil
}

// checkSource reports whether src is one of the job's server IPs, and whether those IPs
// are known at all.
func (r *Receiver) checkSource(ctx context.Context, job *Job, src netip.Addr) (verified, known bool) {
	ips := job.ServerIPs
	if len(ips) == 0 && r.cfg.CheckSourceIP && r.cfg.ServerIPs != nil && job.ServerID != 0 {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := r.cfg.ServerIPs(lctx, job.ServerID)
		cancel()
		if err != nil {
			r.log.Warn("could not look up the server's IPs for the source check", zap.Int64("server", job.ServerID), zap.Error(err))
		}
		ips = got
	}
	for _, s := range ips {
		if a, ok := parseHostAddr(s); ok {
			known = true
			if a == src {
				return true, true
			}
		}
	}
	return false, known
}

// delivered wakes WaitJob callers and queues the notification; when the log is followed,
// the follower queues it (and wakes the waiters of other processes' events).
func (r *Receiver) delivered(ev Event) {
	if r.follower != nil {
		r.mu.Lock()
		r.accepted[ev.Cursor] = time.Now()
		r.wakeWaiters(ev.JobID)
		r.mu.Unlock()
		return
	}
	var origin *Origin
	if ev.JobID != "" {
		r.mu.Lock()
		for _, ch := range r.waiters[ev.JobID] {
			close(ch)
		}
		delete(r.waiters, ev.JobID)
		if o, ok := r.open[ev.JobID]; ok {
			origin = &o
		}
		r.mu.Unlock()
	}
	r.enqueue(queued{ev: ev, origin: origin, accepted: time.Now()}, false)
}

// wakeWaiters wakes the WaitJob callers of job id; r.mu is held.
func (r *Receiver) wakeWaiters(id string) {
	if id == "" {
		return
	}
	for _, ch := range r.waiters[id] {
		close(ch)
	}
	delete(r.waiters, id)
}

// followLoop reads the event log after cursor whenever any process appends, and queues
// each event for the notifier in cursor order. It drains what is left when stopped.
func (r *Receiver) followLoop(cursor uint64) {
	defer close(r.followDone)
	for {
		wake := r.follower.WakeEvents()
		more, err := r.follow(&cursor)
		if err != nil {
			r.log.Warn("following the event log failed; retrying", zap.Error(err))
			select {
			case <-r.stopFollow:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if more {
			continue
		}
		select {
		case <-r.stopFollow:
			for {
				if more, err := r.follow(&cursor); err != nil || !more {
					return
				}
			}
		case <-wake:
		}
	}
}

// follow reads one page of the log after *cursor and queues its events.
func (r *Receiver) follow(cursor *uint64) (more bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := r.store.Since(ctx, *cursor, 500, store.Filter{})
	if err != nil {
		return false, err
	}
	if p.PrunedThrough > 0 {
		r.log.Warn("events were pruned before this process followed them; they were not notified", zap.Uint64("through", p.PrunedThrough))
	}
	for _, ev := range p.Events {
		var origin *Origin
		r.mu.Lock()
		at, local := r.accepted[ev.Cursor]
		delete(r.accepted, ev.Cursor)
		r.wakeWaiters(ev.JobID)
		if o, ok := r.open[ev.JobID]; ok && ev.JobID != "" {
			origin = &o
		}
		r.mu.Unlock()
		if !local {
			at = time.Now() // stored by another process: heard of now
		}
		r.enqueue(queued{ev: ev, origin: origin, accepted: at}, true)
	}
	if p.Next > *cursor {
		*cursor = p.Next
	}
	return p.More, nil
}

// loginTokenMatches compares against the cached token hash and, on a mismatch, against
// the stored token: another process on the same store (`login-alerts`) may have rotated
// it.
func (r *Receiver) loginTokenMatches(ctx context.Context, h [sha256.Size]byte) bool {
	if want := r.loginHash.Load(); subtle.ConstantTimeCompare(h[:], want[:]) == 1 {
		return true
	}
	tok, err := r.store.Secret(ctx, loginSecretName, func() (string, error) { return newSecret() })
	if err != nil {
		return false
	}
	cur := sha256.Sum256([]byte(tok))
	r.loginHash.Store(&cur)
	return subtle.ConstantTimeCompare(h[:], cur[:]) == 1
}

func (r *Receiver) handleLogin(w http.ResponseWriter, req *http.Request) {
	tok := mux.Vars(req)["token"]
	h := sha256.Sum256([]byte(tok))
	if !validSecretShape(tok) || !r.loginTokenMatches(req.Context(), h) {
		r.reject404(w, ReasonBadToken)
		return
	}
	cb, ok := r.parse(w, req)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(req.Context())
	src := ClientIP(req, r.cfg.TrustedProxies)
	now := r.now().UTC()
	data := cb.Data()
	data["source_ip"] = src.String()
	ev := Event{Kind: store.KindLoginAlert, Time: now, Data: data, ServerID: serverIDOf(cb)}
	start := time.Now()
	stored, dup, err := r.store.Append(ctx, ev, loginDedupeKey(req, cb, now))
	r.metrics.observeStore(time.Since(start))
	if err != nil {
		r.log.Error("could not store login alert; not acknowledged", zap.Error(err))
		r.metrics.reject(ReasonStoreError)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
	if dup {
		r.metrics.duplicates.Add(1)
		return
	}
	r.metrics.accept(stored.Kind)
	r.log.Warn("API key login alert", zap.String("event", stored.ID), zap.String("source", src.String()))
	r.delivered(stored)
}

// loginDedupeKey: a delivery id header when the sender gives one; otherwise the content
// and the minute, so a redelivery of the same alert is one event while two logins
// (whose payloads differ, or that come minutes apart) are two.
func loginDedupeKey(req *http.Request, cb *Callback, now time.Time) string {
	for _, hdr := range []string{"Webhook-Id", "X-Request-Id", "X-Delivery-Id", "X-Webhook-Id"} {
		if v := strings.TrimSpace(req.Header.Get(hdr)); v != "" {
			return "login:id:" + truncate(v, 200)
		}
	}
	b, _ := json.Marshal(map[string]any{"q": cb.Query, "b": cb.Body})
	h := sha256.Sum256(b)
	return "login:" + hex.EncodeToString(h[:16]) + ":" + strconv.FormatInt(now.Unix()/60, 10)
}

func serverIDOf(cb *Callback) int64 {
	for _, m := range []map[string]any{cb.Body, cb.Query} {
		for _, k := range []string{"server_id", "serverId"} {
			if n, ok := schemas.ToInt64(m[k]); ok && n > 0 {
				return n
			}
		}
	}
	return 0
}
