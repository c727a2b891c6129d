package main

// lb is the load balancer of the multi-replica test: one listener in front of the
// replicas, as nginx or HAProxy would be in production, for MCP and for callbacks.

import (
	"bytes"
	"errors"
	"hash/fnv"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

var quietStdLog = log.New(io.Discard, "", 0)

type lbMode int

const (
	// lbRoundRobin sends each request to the next replica (2026-07-28 clients have no
	// sessions; callbacks carry their own secret).
	lbRoundRobin lbMode = iota
	// lbSession pins an Mcp-Session-Id to the replica that issued it (HAProxy
	// "stick store-response res.hdr(mcp-session-id)"); an id it never saw goes by hash,
	// as nginx "hash $http_mcp_session_id consistent" does.
	lbSession
)

// headerBackend tells the test which replica answered (a real balancer logs it).
const headerBackend = "X-Test-Backend"

type lb struct {
	t        *testing.T
	mode     lbMode
	backends []string // host:port of each replica
	srv      *httptest.Server
	next     atomic.Uint64
	down     []atomic.Bool // refused a connection: skipped until it accepts one again
	answered []atomic.Int64

	mu     sync.Mutex
	sticky map[string]int // session → replica
	calls  []lbCall       // MCP requests of 2026-07-28 clients (Mcp-Method header), in order
}

// lbCall is one MCP request and the replica that answered it.
type lbCall struct {
	method, name string
	replica      int
}

func newLB(t *testing.T, mode lbMode, backends []string) *lb {
	l := &lb{t: t, mode: mode, backends: backends, down: make([]atomic.Bool, len(backends)), answered: make([]atomic.Int64, len(backends)), sticky: map[string]int{}}
	l.srv = httptest.NewServer(l)
	t.Cleanup(l.srv.Close)
	return l
}

func (l *lb) URL() string { return l.srv.URL }

// pick chooses the replica for a request and the order to try others in when it
// refuses the connection (nothing was sent, so trying another is safe for any request).
func (l *lb) pick(r *http.Request) (first int, pinned bool) {
	n := len(l.backends)
	if l.mode == lbSession {
		if id := r.Header.Get("Mcp-Session-Id"); id != "" {
			l.mu.Lock()
			i, ok := l.sticky[id]
			l.mu.Unlock()
			if !ok {
				h := fnv.New32a()
				h.Write([]byte(id))
				i = int(h.Sum32() % uint32(n))
			}
			return i, true
		}
	}
	for range n {
		i := int(l.next.Add(1)-1) % n
		if !l.down[i].Load() {
			return i, false
		}
	}
	return int(l.next.Add(1)-1) % n, false
}

func (l *lb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "lb: reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	first, pinned := l.pick(r)
	n := len(l.backends)
	for k := range n {
		i := (first + k) % n
		if k > 0 && l.down[i].Load() {
			continue
		}
		refused := false
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme, pr.Out.URL.Host = "http", l.backends[i]
				pr.Out.Host = l.backends[i]
				pr.SetXForwarded()
				// The callback's sender, as the real balancer would append it.
				if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
					pr.Out.Header.Set("X-Forwarded-For", xff)
				}
				pr.Out.Body = io.NopCloser(bytes.NewReader(body))
				pr.Out.ContentLength = int64(len(body))
			},
			FlushInterval: -1,          // SSE streams
			ErrorLog:      quietStdLog, // a killed replica's stream ends mid-copy
			ModifyResponse: func(resp *http.Response) error {
				l.down[i].Store(false)
				l.answered[i].Add(1)
				if m := r.Header.Get("Mcp-Method"); m != "" {
					l.mu.Lock()
					l.calls = append(l.calls, lbCall{method: m, name: r.Header.Get("Mcp-Name"), replica: i})
					l.mu.Unlock()
				}
				resp.Header.Set(headerBackend, strconv.Itoa(i))
				if id := resp.Header.Get("Mcp-Session-Id"); id != "" && l.mode == lbSession {
					l.mu.Lock()
					if _, ok := l.sticky[id]; !ok {
						l.sticky[id] = i
					}
					l.mu.Unlock()
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.down[i].Store(true)
					refused = true
					return
				}
				// Sent (or maybe sent) and then lost: the client decides whether to retry.
				w.Header().Set(headerBackend, strconv.Itoa(i))
				http.Error(w, "lb: replica "+strconv.Itoa(i)+": "+err.Error(), http.StatusBadGateway)
			},
		}
		rp.ServeHTTP(w, r)
		if !refused {
			return
		}
		if pinned {
			// Affinity lost with its replica: the next replica takes the session (the
			// product must fall back, not fail).
			l.mu.Lock()
			if id := r.Header.Get("Mcp-Session-Id"); id != "" {
				l.sticky[id] = (i + 1) % n
			}
			l.mu.Unlock()
		}
	}
	http.Error(w, "lb: no replica accepts connections", http.StatusBadGateway)
}

// stuck returns the replica a session is pinned to (-1: none yet).
func (l *lb) stuck(session string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.sticky[session]; ok {
		return i
	}
	return -1
}

// served is how many answers each replica gave through the balancer.
func (l *lb) served() []int64 {
	out := make([]int64, len(l.answered))
	for i := range l.answered {
		out[i] = l.answered[i].Load()
	}
	return out
}

// callsTo returns the replicas that answered tools/call requests of a tool, in order.
func (l *lb) callsTo(tool string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, c := range l.calls {
		if c.method == "tools/call" && c.name == tool {
			out = append(out, c.replica)
		}
	}
	return out
}
