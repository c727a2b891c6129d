package outbound

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

var ctx = context.Background()

func openStore(t testing.TB, path string) state.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "state.db")
	}
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// appendEvent stores an event the way the webhook receiver does (its JSON shape).
func appendEvent(t testing.TB, st state.Store, kind string, server int64, action string, data map[string]any) state.Event {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"kind": kind, "server_id": server, "action": action, "time": time.Now().UTC(), "data": data,
		"session": "mcp-session-secret", "job_id": "job_1"})
	ev, _, err := st.Append(ctx, state.Event{Kind: kind, ServerID: server, Data: raw}, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// receiver is a destination that verifies signatures and dedupes by webhook-id.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	v      Verifier
	status atomic.Int32 // answer; 0 = 200
	hits   atomic.Int64 // requests, including failed ones

	mu      sync.Mutex
	ids     []string            // webhook ids accepted, first time each, in order
	bodies  map[string][]byte   // by id
	headers map[string][]string // signature header by id
	dupes   int
	bad     int
	onHit   func(r *http.Request) int // optional: decides the status
	now     func() time.Time          // the receiver's clock (the test clock's, when the engine runs on one)
}

func newReceiver(t testing.TB, secret string) *receiver {
	r := &receiver{t: t, v: Verifier{Secret: secret}, bodies: map[string][]byte{}, headers: map[string][]string{}, now: time.Now}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

// newReceiverOn listens on a given loopback address (127.0.0.2 plays the internet).
func newReceiverOn(t testing.TB, addr string, h http.Handler) *httptest.Server {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	f := r.onHit
	r.mu.Unlock()
	if f != nil {
		if code := f(req); code != 0 {
			w.Header().Set("Retry-After", req.Header.Get("X-Test-Retry-After"))
			http.Error(w, "destination says: internal secret diagnostics", code)
			return
		}
	}
	if s := r.status.Load(); s != 0 {
		http.Error(w, "destination says: internal secret diagnostics", int(s))
		return
	}
	if r.v.Secret != "" {
		id, err := r.v.Verify(req.Header, body, r.now())
		r.mu.Lock()
		defer r.mu.Unlock()
		switch err {
		case nil:
		case ErrReplay:
			r.dupes++
			w.WriteHeader(http.StatusOK) // already handled: acknowledge
			return
		default:
			r.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.ids = append(r.ids, id)
		r.bodies[id] = body
		r.headers[id] = req.Header.Values(HeaderSignature)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := req.Header.Get(HeaderID)
	if _, ok := r.bodies[id]; ok {
		r.dupes++
		return
	}
	r.ids = append(r.ids, id)
	r.bodies[id] = body
}

// setOnHit sets onHit under the lock (requests may come from another process).
func (r *receiver) setOnHit(f func(*http.Request) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onHit = f
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func (r *receiver) body(id string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[id]
}

// eventually polls cond (state reached by other goroutines) for up to 20 s: a bound on
// a hang, not a timing assertion.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scaled is a test clock running speed times faster than the machine's: the engine's
// timestamps and timers follow it, so 30 s of outage pass in 300 ms at speed 100.
type scaled struct {
	t0    time.Time
	speed time.Duration
}

func newScaled(speed time.Duration) *scaled { return &scaled{t0: time.Now(), speed: speed} }

func (c *scaled) Now() time.Time { return c.t0.Add(time.Since(c.t0) * c.speed) }

func (c *scaled) After(d time.Duration) <-chan time.Time { return time.After(d / c.speed) }

func startEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 30 * time.Second
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.Start(ctx)
	t.Cleanup(e.Close)
	return e
}
