package policy_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
)

// onStores runs f once per engine of the shared store. open opens the same store again,
// as another process would: every engine built on what it returns shares the state.
func onStores(t *testing.T, f func(t *testing.T, open func() state.Store)) {
	engines := []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "state.db") }},
		{"postgres", func(t *testing.T) string { return statetest.PostgresURL(t) }},
	}
	for _, en := range engines {
		t.Run(en.name, func(t *testing.T) {
			target := en.target(t)
			f(t, func() state.Store {
				t.Helper()
				st, err := state.Open(context.Background(), target)
				if err != nil {
					t.Fatalf("open the store: %v", err)
				}
				t.Cleanup(func() { _ = st.Close() })
				return st
			})
		})
	}
}

// Issue 15: the PIN cool-down was per process. A wrong PIN in one process now pauses
// PIN calls in another on the same store: nothing reaches invapi from the second.
func TestSharedPINCooldown(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		const wrong = "WRONG-pin-8812"
		a := newEnv(t, envOpts{PIN: wrong, Policy: policy.Options{State: open(), PINCooldown: 15 * time.Minute}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open(), PINCooldown: 15 * time.Minute}})
		ca, _ := a.connect(legacyClient, &elicitor{env: a}, formOnly)
		res := a.call(ca, "eq_reboot", map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "PIN") {
			t.Fatalf("wrong PIN: %s", text(res))
		}
		el := &elicitor{env: b}
		cb, _ := b.connect(legacyClient, el, formOnly)
		res = b.call(cb, "eq_on", map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "PIN actions are paused") {
			t.Fatalf("another process during the cool-down: %s", text(res))
		}
		if n := len(b.sent("eq", "on")); n != 0 {
			t.Fatalf("%d PIN calls sent by the other process during the cool-down", n)
		}
		if len(el.requests()) != 0 {
			t.Fatal("a human was asked to confirm a call the cool-down refuses")
		}
		// Calls without the PIN are not affected.
		if res := b.call(cb, "eq_show", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("eq_show during the cool-down: %s", text(res))
		}
	})
}

// Rate limits are taken from the shared store: a destructive call sent by one process
// uses the token for both; one declined in the other gives it back (nothing was sent).
func TestSharedRateLimitsWithRefund(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		lim := policy.Limits{Destructive: limit(t, "0.0167:1")}
		a := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		elA := &elicitor{env: a, form: mcp.ElicitationResponseActionDecline}
		ca, _ := a.connect(mrtrClient, elA, formOnly)
		cb, _ := b.connect(legacyClient, &elicitor{env: b}, formOnly)

		if res := a.call(ca, "eq_reboot", map[string]any{"id": 40101}); !res.IsError || !strings.Contains(text(res), "Nothing was sent") {
			t.Fatalf("declined in A: %s", text(res))
		}
		if res := b.call(cb, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("B after A's decline (the token must be back): %s", text(res))
		}
		elA.mu.Lock()
		elA.form = mcp.ElicitationResponseActionAccept
		elA.mu.Unlock()
		res := a.call(ca, "eq_reboot", map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "Rate limited: destructive calls") {
			t.Fatalf("A after B's sent reboot: %s", text(res))
		}
		if n := len(a.sent("eq", "reboot")); n != 0 {
			t.Fatalf("A sent %d reboots", n)
		}
	})
}

// Every stdio server calls its session "stdio": on a shared store, per-session buckets
// of two processes stay apart.
func TestSharedSessionBucketsPerProcess(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		lim := policy.Limits{Session: limit(t, "0.0167:1")}
		a := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		ca, _ := a.connect(legacyClient, &elicitor{env: a}, formOnly)
		cb, _ := b.connect(legacyClient, &elicitor{env: b}, formOnly)
		if res := a.call(ca, "eq_show", map[string]any{"id": 40101}); res.IsError {
			t.Fatal(text(res))
		}
		if res := b.call(cb, "eq_show", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("B's session shares A's bucket: %s", text(res))
		}
		if res := a.call(ca, "eq_show", map[string]any{"id": 40101}); !res.IsError || !strings.Contains(text(res), "Rate limited") {
			t.Fatalf("A's second call: %s", text(res))
		}
	})
}

// botPost answers approval id through env e's approvals API (another process's).
func botPost(t *testing.T, e *env, token, id, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.pages.URL+"/policy/api/approvals/"+id, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // may run in a goroutine
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Issue 15: approvals were per process. A two-step approval asked for in one process is
// decided through another's approvals API, honoured by the asking process (its session
// only) and used once.
func TestSharedApprovalDecidedElsewhere(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		const bot = "bot-credential-77aa"
		po := func() policy.Options {
			return policy.Options{State: open(), Confirm: policy.ConfirmToken, ApproverToken: bot}
		}
		a := newEnv(t, envOpts{NoPage: true, Policy: po()})
		b := newEnv(t, envOpts{NoPage: true, Policy: po()})
		ca, _ := a.connect(legacyClient, nil, nil)
		args := map[string]any{"id": 40101}
		id, _ := approvalOf(t, a.call(ca, "eq_reboot", args))

		if code := botDecide(t, b, bot, "nope-"+id, "approve"); code != http.StatusNotFound {
			t.Fatalf("an unknown approval through B: %d", code)
		}
		if code := botDecide(t, b, bot, id, "approve"); code != http.StatusOK {
			t.Fatalf("A's approval through B's API: %d", code)
		}
		// Decided once, whichever process is asked next.
		if code := botDecide(t, a, bot, id, "decline"); code != http.StatusConflict {
			t.Fatalf("a second decision through A: %d", code)
		}
		// Another process's session does not get it.
		cb, _ := b.connect(legacyClient, nil, nil)
		if id2, _ := approvalOf(t, b.call(cb, "eq_reboot", args)); id2 == id {
			t.Fatal("another process's session got the approval")
		}
		res := a.call(ca, "eq_reboot", args)
		if res.IsError {
			t.Fatalf("the approved repeat in A: %s", text(res))
		}
		if n := len(a.sent("eq", "reboot")); n != 1 {
			t.Fatalf("%d reboots sent, want 1", n)
		}
		approvalOf(t, a.call(ca, "eq_reboot", args)) // spent: a new approval is asked for
		if n := len(a.sent("eq", "reboot")) + len(b.sent("eq", "reboot")); n != 1 {
			t.Fatalf("%d reboots sent after the replay, want 1", n)
		}
	})
}

// A call waiting for the local page (URL mode) is answered by a bot through another
// process: the waiting process sees the decision through the store and sends once.
func TestSharedPageApprovalAnsweredElsewhere(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		const bot = "bot-credential-99cc"
		a := newEnv(t, envOpts{NoPIN: true, Policy: policy.Options{State: open(), ApproverToken: bot}})
		b := newEnv(t, envOpts{NoPIN: true, Policy: policy.Options{State: open(), ApproverToken: bot}})
		if a.eng.Replicated() {
			// Replicas on PostgreSQL need HOSTKEY_PIN: a PIN action without one is refused
			// before anything is asked (TestReplicaModeNeedsAConfiguredPIN).
			t.Skip("replica mode refuses PIN actions without a configured PIN")
		}
		el := &elicitor{env: a, page: "none"}
		el.onURL = func(req mcp.ElicitationRequest) {
			// Answered while A waits (the answer comes through the store).
			go func() {
				// The PIN is needed and not configured in A: a PIN cannot travel from B.
				if code := botPost(t, b, bot, req.Params.ElicitationID, `{"decision":"approve","pin":"`+testPIN+`"}`); code != http.StatusConflict {
					t.Errorf("approve with a PIN through B: %d", code)
				}
				if code := botDecide(t, b, bot, req.Params.ElicitationID, "decline"); code != http.StatusOK {
					t.Errorf("decline through B: %d", code)
				}
			}()
		}
		ca, _ := a.connect(legacyClient, el, formAndURL)
		res := a.call(ca, "eq_reboot", map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "declined") {
			t.Fatalf("declined through B: %s", text(res))
		}
		if n := len(a.sent("eq", "reboot")); n != 0 {
			t.Fatalf("%d reboots sent after a decline", n)
		}
	})
}

// The global bucket is leased a few tokens at a time (most calls then need no store
// round trip), yet two processes together never get more than its burst.
func TestSharedGlobalLimitWithLeases(t *testing.T) {
	onStores(t, func(t *testing.T, open func() state.Store) {
		lim := policy.Limits{Global: limit(t, "0.0001:8")}
		a := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		b := newEnv(t, envOpts{Policy: policy.Options{State: open(), Limits: lim}})
		ca, _ := a.connect(legacyClient, nil, nil)
		cb, _ := b.connect(legacyClient, nil, nil)
		allowed := 0
		for i := range 24 {
			e, c := a, ca
			if i%3 == 2 {
				e, c = b, cb
			}
			res := e.call(c, "eq_show", map[string]any{"id": 40101})
			switch {
			case !res.IsError:
				allowed++
			case !strings.Contains(text(res), "Rate limited: calls to invapi"):
				t.Fatalf("call %d: %s", i, text(res))
			}
		}
		// Each process may hold up to 3 leased tokens unused (half the burst, less the
		// call's own) until they go back after a second idle: between 2 and 8 get through.
		if allowed > 8 || allowed < 2 {
			t.Fatalf("%d calls let through with a global burst of 8 across two processes", allowed)
		}
	})
}
