package policy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/state"
)

// Limit is one token bucket: Rate events per second, bursts of Burst. The zero value,
// and Rate == rate.Inf, mean no limit.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

func (l Limit) unlimited() bool { return l.Rate == rate.Inf || (l.Rate == 0 && l.Burst == 0) }

// Limits are the policy's rate limits.
type Limits struct {
	Global      Limit // every governed call that would reach invapi
	Destructive Limit // destructive calls, all together
	Server      Limit // destructive calls, per server ID
	Session     Limit // every governed call, per MCP session
}

// ParseRate parses "rps:burst" (e.g. "5:10", "0.0167:1"). "", "off" and "none" mean
// no limit and return (rate.Inf, 0).
func ParseRate(s string) (rate.Limit, int, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "off", "none", "inf", "unlimited":
		return rate.Inf, 0, nil
	}
	rs, bs, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want rps:burst, e.g. 5:10 or 0.0167:1 (or off)", s)
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(rs), 64)
	if err != nil || math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		return 0, 0, fmt.Errorf("rate %q: requests per second must be a number above 0 (use off to disable)", s)
	}
	b, err := strconv.Atoi(strings.TrimSpace(bs))
	if err != nil || b < 1 {
		return 0, 0, fmt.Errorf("rate %q: burst must be a whole number of at least 1", s)
	}
	return rate.Limit(r), b, nil
}

// ParseLimit is ParseRate returning a Limit.
func ParseLimit(s string) (Limit, error) {
	r, b, err := ParseRate(s)
	return Limit{Rate: r, Burst: b}, err
}

// limiters holds the buckets. One mutex makes "check every bucket, then take from all"
// atomic, so a refused call consumes nothing.
type limiters struct {
	cfg Limits
	now func() time.Time
	st  state.RateLimits // non-nil: the buckets are shared by every process on the store
	log *zap.Logger
	// leases are tokens of the global and session buckets this process took from the
	// store ahead of its calls (under mu), so most calls need no store round trip.
	leases map[string]*lease
	closed bool // Close ran: no more leases

	mu          sync.Mutex
	global      *bucket
	destructive *bucket
	server      map[int64]*bucket
	session     map[string]*bucket
	lastPrune   time.Time
}

// bucket is a token bucket that can take a token back: golang.org/x/time/rate cannot
// return a token once its reservation's time has passed, and a call waits for a human
// for minutes between the reservation and the sending.
type bucket struct {
	lim    Limit
	tokens float64
	at     time.Time // when tokens was last brought up to date
	used   time.Time
}

func newBucket(l Limit, now time.Time) *bucket {
	return &bucket{lim: l, tokens: float64(l.Burst), at: now, used: now}
}

// fill adds the tokens earned since the last update.
func (b *bucket) fill(now time.Time) {
	if now.After(b.at) {
		b.tokens = math.Min(float64(b.lim.Burst), b.tokens+now.Sub(b.at).Seconds()*float64(b.lim.Rate))
		b.at = now
	}
}

func newLimiters(cfg Limits, now func() time.Time, st state.RateLimits) (*limiters, error) {
	for name, l := range map[string]Limit{"global": cfg.Global, "destructive": cfg.Destructive, "server": cfg.Server, "session": cfg.Session} {
		if !l.unlimited() && (l.Rate <= 0 || l.Burst < 1) {
			return nil, fmt.Errorf("policy: %s rate limit %v:%d: want a rate above 0 and a burst of at least 1", name, float64(l.Rate), l.Burst)
		}
	}
	l := &limiters{cfg: cfg, now: now, server: map[int64]*bucket{}, session: map[string]*bucket{}}
	if st != nil {
		l.st = st
		return l, nil
	}
	if !cfg.Global.unlimited() {
		l.global = newBucket(cfg.Global, now())
	}
	if !cfg.Destructive.unlimited() {
		l.destructive = newBucket(cfg.Destructive, now())
	}
	return l, nil
}

// reservation is the tokens one call holds from the moment it is admitted to the rate
// limits until it is sent (charged: the tokens stay spent) or not (released: the tokens
// go back). A declined, cancelled, expired or refused call costs nothing.
type reservation struct {
	l       *limiters
	buckets []*bucket
	shared  []state.TokenRequest // the tokens taken from the shared store
	leased  []state.TokenRequest // the tokens taken from this process's leases
	settled bool                 // under l.mu
}

// release gives the tokens back. It is safe on nil and after charge or release.
func (r *reservation) release() {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	if r.settled {
		r.l.mu.Unlock()
		return
	}
	r.settled = true
	if r.l.st != nil {
		for _, q := range r.leased {
			r.l.giveBack(q, 1) // back to the lease this process holds
		}
		r.l.mu.Unlock()
		if len(r.shared) == 0 {
			return
		}
		// Not the call's context: the tokens go back even when the call was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := r.l.st.RefundTokens(ctx, r.shared); err != nil && r.l.log != nil {
			r.l.log.Warn("rate tokens of a call that sent nothing could not be given back to the shared store", zap.Error(err))
		}
		return
	}
	defer r.l.mu.Unlock()
	now := r.l.now()
	for _, b := range r.buckets {
		b.fill(now)
		b.tokens = math.Min(float64(b.lim.Burst), b.tokens+1)
	}
}

// charge keeps the tokens spent: the call reached invapi.
func (r *reservation) charge() {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	r.settled = true
	r.l.mu.Unlock()
}

// rateRefusal explains which bucket refused a call and when to retry.
type rateRefusal struct {
	Scope      string // global, destructive, server, session
	ServerID   int64
	Limit      Limit
	RetryAfter time.Duration
}

func (r *rateRefusal) text() string {
	what := map[string]string{
		"global":      "calls to invapi from this server",
		"destructive": "destructive calls",
		"session":     "calls in this MCP session",
	}[r.Scope]
	if r.Scope == "server" {
		what = fmt.Sprintf("destructive calls on server %d", r.ServerID)
	}
	secs := int(math.Ceil(r.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("Rate limited: %s are limited to %s (bursts of %d). Nothing was sent. Retry after %d s.",
		what, describeRate(r.Limit.Rate), r.Limit.Burst, secs)
}

func (r *rateRefusal) retrySeconds() int {
	secs := int(math.Ceil(r.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return secs
}

func describeRate(r rate.Limit) string {
	if r >= 1 {
		return strconv.FormatFloat(float64(r), 'g', 4, 64) + " per second"
	}
	every := time.Duration(float64(time.Second) / float64(r)).Round(time.Second)
	return "1 per " + every.String()
}

// reserve checks every bucket the call falls in and, only when all have a token, takes
// one from each and returns them as a reservation. Otherwise it takes nothing and
// returns the refusal with the longest wait.
func (l *limiters) reserve(ctx context.Context, session string, destructive bool, servers []int64) (*reservation, *rateRefusal, error) {
	if l.st != nil {
		return l.reserveShared(ctx, session, destructive, servers)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)

	type want struct {
		b   *bucket
		ref rateRefusal
	}
	var wants []want
	if l.global != nil {
		wants = append(wants, want{l.global, rateRefusal{Scope: "global", Limit: l.cfg.Global}})
	}
	if !l.cfg.Session.unlimited() {
		b := l.session[session]
		if b == nil {
			b = newBucket(l.cfg.Session, now)
			l.session[session] = b
		}
		b.used = now
		wants = append(wants, want{b, rateRefusal{Scope: "session", Limit: l.cfg.Session}})
	}
	if destructive {
		if l.destructive != nil {
			wants = append(wants, want{l.destructive, rateRefusal{Scope: "destructive", Limit: l.cfg.Destructive}})
		}
		if !l.cfg.Server.unlimited() {
			seen := map[int64]bool{}
			for _, id := range servers {
				if seen[id] {
					continue
				}
				seen[id] = true
				b := l.server[id]
				if b == nil {
					b = newBucket(l.cfg.Server, now)
					l.server[id] = b
				}
				b.used = now
				wants = append(wants, want{b, rateRefusal{Scope: "server", ServerID: id, Limit: l.cfg.Server}})
			}
		}
	}
	var worst *rateRefusal
	for i := range wants {
		w := &wants[i]
		w.b.fill(now)
		if w.b.tokens >= 1 {
			continue
		}
		wait := time.Duration((1 - w.b.tokens) / float64(w.b.lim.Rate) * float64(time.Second))
		if worst == nil || wait > worst.RetryAfter {
			w.ref.RetryAfter = wait
			worst = &w.ref
		}
	}
	if worst != nil {
		return nil, worst, nil
	}
	r := &reservation{l: l}
	for _, w := range wants {
		w.b.tokens--
		r.buckets = append(r.buckets, w.b)
	}
	return r, nil, nil
}

// Bucket names in the shared store.
const (
	bucketGlobal      = "rate:global"
	bucketDestructive = "rate:destructive"
	bucketServer      = "rate:server:"  // + server ID
	bucketSession     = "rate:session:" // + session ID
)

// reserveShared is reserve on the shared store: every bucket the call falls in is taken
// in one transaction, all or none, so the limits hold for all processes together.
func (l *limiters) reserveShared(ctx context.Context, session string, destructive bool, servers []int64) (*reservation, *rateRefusal, error) {
	var reqs []state.TokenRequest
	refusal := map[string]rateRefusal{}
	add := func(name string, lim Limit, ref rateRefusal) {
		reqs = append(reqs, state.TokenRequest{Bucket: name, N: 1, Rate: float64(lim.Rate), Burst: float64(lim.Burst)})
		ref.Limit = lim
		refusal[name] = ref
	}
	if !l.cfg.Global.unlimited() {
		add(bucketGlobal, l.cfg.Global, rateRefusal{Scope: "global"})
	}
	if !l.cfg.Session.unlimited() {
		add(bucketSession+session, l.cfg.Session, rateRefusal{Scope: "session"})
	}
	if destructive {
		if !l.cfg.Destructive.unlimited() {
			add(bucketDestructive, l.cfg.Destructive, rateRefusal{Scope: "destructive"})
		}
		if !l.cfg.Server.unlimited() {
			seen := map[int64]bool{}
			for _, id := range servers {
				if !seen[id] {
					seen[id] = true
					add(bucketServer+strconv.FormatInt(id, 10), l.cfg.Server, rateRefusal{Scope: "server", ServerID: id})
				}
			}
		}
	}
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &reservation{l: l}
	var fetch []state.TokenRequest // what the leases do not cover
	for _, q := range reqs {
		if ls := l.leases[q.Bucket]; ls != nil && ls.tokens >= 1 {
			continue
		}
		fetch = append(fetch, q)
	}
	if len(fetch) > 0 {
		// Take a lease's worth of the leasable buckets with the call's own token, all
		// or none; when the buckets are too low for that, exactly what the call needs.
		ahead := make([]state.TokenRequest, len(fetch))
		for i, q := range fetch {
			ahead[i] = q
			ahead[i].N = leaseSize(q)
		}
		res, err := l.st.TakeTokens(ctx, ahead)
		if err == nil && !res.OK && !sameN(ahead, fetch) {
			ahead = fetch
			res, err = l.st.TakeTokens(ctx, ahead)
		}
		if err != nil {
			return nil, nil, err
		}
		if !res.OK {
			ref := refusal[res.Blocked]
			ref.RetryAfter = res.RetryAfter
			return nil, &ref, nil
		}
		for _, q := range ahead {
			if q.N > 1 {
				l.giveBack(q, q.N) // the call takes its token below
			} else {
				r.shared = append(r.shared, q)
			}
		}
	}
	for _, q := range reqs {
		if containsReq(r.shared, q.Bucket) {
			continue
		}
		l.leases[q.Bucket].tokens--
		r.leased = append(r.leased, q)
	}
	return r, nil, nil
}

// lease is tokens of one shared bucket held by this process for its next calls. Tokens
// idle for leaseIdle go back to the store, so a quiet process holds none.
type lease struct {
	req    state.TokenRequest
	tokens float64
	timer  *time.Timer
}

const leaseIdle = time.Second

// leaseSize is how many tokens of a bucket to take ahead: the global and per-session
// buckets with a burst of 6 or more lend half of it (at most 8), so at most one call in
// three waits for the store; an idle process holds them for leaseIdle at most. The
// destructive and per-server buckets are taken exactly, one per call.
func leaseSize(q state.TokenRequest) float64 {
	if !strings.HasPrefix(q.Bucket, bucketGlobal) && !strings.HasPrefix(q.Bucket, bucketSession) || q.Burst < 6 {
		return 1
	}
	return math.Min(8, math.Floor(q.Burst/2))
}

func sameN(a, b []state.TokenRequest) bool {
	for i := range a {
		if a[i].N != b[i].N {
			return false
		}
	}
	return true
}

func containsReq(reqs []state.TokenRequest, bucket string) bool {
	for _, q := range reqs {
		if q.Bucket == bucket {
			return true
		}
	}
	return false
}

// giveBack adds n tokens to the lease of q's bucket (l.mu held) and restarts its idle
// timer.
func (l *limiters) giveBack(q state.TokenRequest, n float64) {
	if l.closed {
		return // the engine stopped: the tokens come back with the refill
	}
	if l.leases == nil {
		l.leases = map[string]*lease{}
	}
	bucket := q.Bucket
	ls := l.leases[bucket]
	if ls == nil {
		ls = &lease{req: q}
		l.leases[bucket] = ls
		ls.timer = time.AfterFunc(leaseIdle, func() { l.expire(bucket, ls) })
	} else {
		ls.timer.Reset(leaseIdle)
	}
	ls.tokens += n
}

// close gives every lease back to the store now and stops their timers.
func (l *limiters) close() {
	l.mu.Lock()
	leases := l.leases
	l.leases, l.closed = nil, true
	l.mu.Unlock()
	var reqs []state.TokenRequest
	for _, ls := range leases {
		ls.timer.Stop()
		if ls.tokens >= 1 {
			q := ls.req
			q.N = math.Floor(ls.tokens)
			reqs = append(reqs, q)
		}
	}
	if len(reqs) == 0 || l.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := l.st.RefundTokens(ctx, reqs); err != nil && l.log != nil {
		l.log.Warn("leased rate tokens could not be given back to the shared store", zap.Error(err))
	}
}

// expire returns an idle lease's tokens to the store.
func (l *limiters) expire(bucket string, ls *lease) {
	l.mu.Lock()
	if l.leases[bucket] != ls {
		l.mu.Unlock()
		return
	}
	delete(l.leases, bucket)
	n := ls.tokens
	l.mu.Unlock()
	if n < 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	q := ls.req
	q.N = math.Floor(n)
	if err := l.st.RefundTokens(ctx, []state.TokenRequest{q}); err != nil && l.log != nil {
		l.log.Warn("leased rate tokens could not be given back to the shared store", zap.Error(err))
	}
}

// prune drops per-session and per-server buckets that have been idle long enough to be
// full again, so the maps do not grow with every session ever seen.
func (l *limiters) prune(now time.Time) {
	if now.Sub(l.lastPrune) < time.Minute {
		return
	}
	l.lastPrune = now
	idle := func(lim Limit) time.Duration {
		if lim.unlimited() {
			return 0
		}
		return time.Duration(float64(lim.Burst)/float64(lim.Rate)*float64(time.Second)) + time.Minute
	}
	if d := idle(l.cfg.Session); d > 0 {
		for k, b := range l.session {
			if now.Sub(b.used) > d {
				delete(l.session, k)
			}
		}
	}
	if d := idle(l.cfg.Server); d > 0 {
		for k, b := range l.server {
			if now.Sub(b.used) > d {
				delete(l.server, k)
			}
		}
	}
}
