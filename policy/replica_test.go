package policy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/state"
)

// balancer is a load balancer in front of several processes (replicas) sharing a
// store: each tools/call POST goes to the replica route picks (by the number of tool
// calls so far); everything else (initialize, discovery) to the first.
type balancer struct {
	mu    sync.Mutex
	calls int
	route func(call int) int
	hits  []int // tool calls served, per replica
}

func newBalancer(t *testing.T, route func(int) int, envs ...*env) (*balancer, string) {
	b := &balancer{route: route, hits: make([]int, len(envs))}
	hs := make([]http.Handler, len(envs))
	for i, e := range envs {
		hs[i] = server.NewStreamableHTTPServer(e.srv.MCP())
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		i := 0
		if msg.Method == string(mcp.MethodToolsCall) {
			b.mu.Lock()
			i = b.route(b.calls) % len(envs)
			b.calls++
			b.hits[i]++
			b.mu.Unlock()
		}
		hs[i].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return b, srv.URL + "/mcp"
}

// dial connects an HTTP client through the balancer: legacy (2025-11-25, with a session)
// or not (2026-07-28, sessionless, multi round trip).
func dial(t *testing.T, url string, legacy bool, el *elicitor, caps ...*mcp.ElicitationCapability) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if legacy {
		opts = append(opts, client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	}
	if el != nil {
		cp := formOnly
		if len(caps) > 0 {
			cp = caps[0]
		}
		opts = append(opts, client.WithElicitationHandler(el), client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: cp}))
	}
	c := client.NewClient(tr, opts...)
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "replica-test", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

func reboots(envs ...*env) int {
	n := 0
	for _, e := range envs {
		n += len(e.sent("eq", "reboot"))
	}
	return n
}

// A 2026-07-28 client balanced round-robin: the form confirmation is asked by one
// replica and its answer (the retry with the requestState handle) lands on another,
// which finds the handle in the store and sends the call, once.
func TestReplicaRequestStateAnsweredOnAnotherReplica(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		a := newEnv(t, envOpts{Policy: policy.Options{State: open()}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open()}})
		bal, url := newBalancer(t, func(n int) int { return n }, a, b)
		el := &elicitor{env: a}
		c := dial(t, url, false, el)
		res := a.call(c, "eq_reboot", map[string]any{"id": 40101})
		if res.IsError {
			t.Fatalf("the answer on the other replica: %s", text(res))
		}
		if len(el.requests()) != 1 || bal.hits[0] != 1 || bal.hits[1] != 1 {
			t.Fatalf("want one form asked by A and the retry on B: %d forms, hits %v", len(el.requests()), bal.hits)
		}
		if n, nb := reboots(a, b), len(b.sent("eq", "reboot")); n != 1 || nb != 1 {
			t.Fatalf("%d reboots sent (%d by B), want exactly one, by B", n, nb)
		}
		if d := a.decisions(); len(d) == 0 || d[len(d)-1] != policy.DecisionPending {
			t.Fatalf("A's audit: %v", d)
		}
		// Answers taken elsewhere do not count as waiting on A: more confirmations than
		// --max-pending in a row are asked by A and answered on B.
		for i := range policy.DefaultMaxPending + 2 {
			if res := a.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
				t.Fatalf("confirmation %d asked by A, answered on B: %s", i+2, text(res))
			}
		}
		if n := reboots(a, b); n != policy.DefaultMaxPending+3 {
			t.Fatalf("%d reboots, want %d", n, policy.DefaultMaxPending+3)
		}
	})
}

// Issue 16 (2): a two-step approval asked through replica A, approved by a bot on
// replica B, is honoured for the repeat on replica C exactly once; a replay, and another
// session, get a new confirmation. For a 2025 client the balancer lost the affinity:
// the replica that did not see its initialize knows no elicitation, so it falls back to
// the two-step flow, bound to the Mcp-Session-Id every replica sees.
func TestReplicaTwoStepApprovedOnBRepeatedOnC(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "2026-07-28", true: "2025-11-25-lost-affinity"}[legacy]
		t.Run(name, func(t *testing.T) {
			onStores(t, func(t *testing.T, open func() state.Store) {
				const bot = "bot-credential-5ee1"
				po := func() policy.Options {
					return policy.Options{State: open(), ApproverToken: bot}
				}
				a := newEnv(t, envOpts{NoPage: true, Policy: po()})
				b := newEnv(t, envOpts{NoPage: true, Policy: po()})
				c := newEnv(t, envOpts{NoPage: true, Policy: po()})
				// asker asks, approver's bot API approves, C runs the repeat, the replay goes
				// back to the asker.
				asker, approver := a, b
				route := []int{0, 2, 0}
				var el *elicitor
				if legacy {
					// Initialize (and the form capability) reached A only; the calls go to B.
					asker, approver = b, a
					route = []int{1, 2, 1}
					el = &elicitor{env: a}
				}
				_, url := newBalancer(t, func(n int) int { return route[min(n, len(route)-1)] }, a, b, c)
				cl := dial(t, url, legacy, el)
				args := map[string]any{"id": 40101}
				id, _ := approvalOf(t, asker.call(cl, "eq_reboot", args))
				if code := botDecide(t, approver, bot, id, "approve"); code != http.StatusOK {
					t.Fatalf("the bot's approval through another replica: %d", code)
				}
				res := a.call(cl, "eq_reboot", args) // the repeat, on C
				if res.IsError {
					t.Fatalf("the approved repeat on C: %s", text(res))
				}
				if n, nc := reboots(a, b, c), len(c.sent("eq", "reboot")); n != 1 || nc != 1 {
					t.Fatalf("%d reboots sent (%d by C), want exactly one, by C", n, nc)
				}
				// A replay (on the asker, which still holds its copy) needs a new approval.
				id2, _ := approvalOf(t, a.call(cl, "eq_reboot", args))
				if id2 == id {
					t.Fatal("the replay got the used approval")
				}
				// Another session, on C, gets its own confirmation.
				other, _ := c.connect(legacyClient, nil, nil)
				if id3, _ := approvalOf(t, c.call(other, "eq_reboot", args)); id3 == id || id3 == id2 {
					t.Fatal("another session got the approval")
				}
				if n := reboots(a, b, c); n != 1 {
					t.Fatalf("%d reboots after the replay, want 1", n)
				}
				if el != nil && len(el.requests()) != 0 {
					t.Fatalf("a form was sent to a client whose capabilities this replica never saw")
				}
			})
		})
	}
}

// Replicas on PostgreSQL never store the PIN, so a PIN action needs HOSTKEY_PIN on every
// replica: without one it is refused at once, saying why, and nothing is asked or sent.
func TestReplicaModeNeedsAConfiguredPIN(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		e := newEnv(t, envOpts{NoPIN: true, Policy: policy.Options{State: open()}})
		el := &elicitor{env: e}
		c, _ := e.connect(legacyClient, el, formAndURL)
		res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
		if !e.eng.Replicated() {
			// One machine (SQLite): the local page takes the PIN as before.
			if res.IsError {
				t.Fatalf("sqlite: %s", text(res))
			}
			return
		}
		if !res.IsError || !strings.Contains(text(res), "HOSTKEY_PIN") || !strings.Contains(text(res), "replicas") {
			t.Fatalf("replica mode without a PIN: %s", text(res))
		}
		if len(el.requests()) != 0 || reboots(e) != 0 {
			t.Fatalf("asked %d times, sent %d", len(el.requests()), reboots(e))
		}
	})
}

// Fail closed: with the store gone, destructive calls are refused in words and nothing
// is sent.
func TestStoreGoneRefusesDestructiveCalls(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		st := open()
		e := newEnv(t, envOpts{Policy: policy.Options{State: st, Limits: policy.Limits{Destructive: limit(t, "0.1:3")}}})
		el := &elicitor{env: e}
		c, _ := e.connect(legacyClient, el, formOnly)
		_ = st.Close()
		res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "could not be reached") {
			t.Fatalf("a destructive call with the store gone: %s", text(res))
		}
		if reboots(e) != 0 {
			t.Fatal("sent with the store gone")
		}
	})
}

// Two-step approvals asked by A and used by repeats on B do not pile up as "waiting" on
// A: more of them than --max-pending in a row all go through.
func TestReplicaTwoStepRepeatsElsewhereDoNotCountAsWaiting(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		const bot = "bot-credential-0b0e"
		a := newEnv(t, envOpts{NoPage: true, Policy: policy.Options{State: open(), ApproverToken: bot}})
		b := newEnv(t, envOpts{NoPage: true, Policy: policy.Options{State: open(), ApproverToken: bot}})
		_, url := newBalancer(t, func(n int) int { return n % 2 }, a, b)
		c := dial(t, url, false, nil)
		// Different calls each time: an approval for the same call replaces the last.
		calls := []struct {
			tool string
			id   int
		}{{"eq_reboot", 40101}, {"eq_off", 40101}, {"eq_on", 40101}, {"eq_reboot", 40102}, {"eq_off", 40102}}
		for i, cl := range calls {
			args := map[string]any{"id": cl.id}
			id, _ := approvalOf(t, a.call(c, cl.tool, args)) // asked on A
			if code := botDecide(t, b, bot, id, "approve"); code != http.StatusOK {
				t.Fatalf("approval %d: %d", i, code)
			}
			if res := a.call(c, cl.tool, args); res.IsError { // repeated on B
				t.Fatalf("repeat %d (%s) on B: %s", i, cl.tool, text(res))
			}
		}
		if n := len(b.writes()); n != len(calls) {
			t.Fatalf("%d calls sent by B, want %d", n, len(calls))
		}
	})
}

// URL mode across replicas: A sends the human to its page; the retry saying "I went
// there" reaches B, which finds the decision in the store, uses the approval once and
// sends the call.
func TestReplicaPageAnsweredRetryOnAnotherReplica(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		a := newEnv(t, envOpts{Policy: policy.Options{State: open()}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open()}})
		bal, url := newBalancer(t, func(n int) int { return n }, a, b)
		el := &elicitor{env: a}
		c := dial(t, url, false, el, &mcp.ElicitationCapability{URL: &struct{}{}})
		res := a.call(c, "eq_reboot", map[string]any{"id": 40101})
		if res.IsError {
			t.Fatalf("the retry on B after the page on A: %s", text(res))
		}
		reqs := el.requests()
		if len(reqs) != 1 || reqs[0].Params.Mode != mcp.ElicitationModeURL || bal.hits[1] != 1 {
			t.Fatalf("want one URL elicitation from A and the retry on B: %+v, hits %v", reqs, bal.hits)
		}
		if n, nb := reboots(a, b), len(b.sent("eq", "reboot")); n != 1 || nb != 1 {
			t.Fatalf("%d reboots (%d by B), want one, by B", n, nb)
		}
	})
}
