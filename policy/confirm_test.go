package policy_test

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
)

var allKinds = []clientKind{legacyClient, mrtrClient, mrtrHTTP}

// One handler serves clients that take elicitation/create and clients on the 2026
// multi-round-trip protocol: decline and cancel send nothing; accept sends exactly one
// request, carrying the PIN; the confirmation message is precise and has no PIN in it.
func TestFormConfirmationOnEveryClientKind(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			for _, tc := range []struct {
				answer mcp.ElicitationResponseAction
				untick bool
				want   string
			}{
				{mcp.ElicitationResponseActionDecline, false, "declined"},
				{mcp.ElicitationResponseActionCancel, false, "cancelled"},
				{mcp.ElicitationResponseActionAccept, true, "without ticking"},
			} {
				el := &elicitor{env: e, form: tc.answer, untick: tc.untick}
				c, _ := e.connect(kind, el, formOnly)
				res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
				if !res.IsError || !strings.Contains(text(res), tc.want) || !strings.Contains(text(res), "Nothing was sent") {
					t.Fatalf("%s: got %v %q", tc.answer, res.IsError, text(res))
				}
				if n := len(el.requests()); n != 1 {
					t.Fatalf("%s: %d elicitations, want 1", tc.answer, n)
				}
				if got := e.sent("eq", "reboot"); len(got) != 0 {
					t.Fatalf("%s sent %d reboot requests", tc.answer, len(got))
				}
			}

			el := &elicitor{env: e}
			c, _ := e.connect(kind, el, formOnly)
			res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
			if res.IsError {
				t.Fatalf("accepted reboot failed: %s", text(res))
			}
			got := e.sent("eq", "reboot")
			if len(got) != 1 {
				t.Fatalf("accept sent %d reboot requests, want exactly 1", len(got))
			}
			if p := got[0].Form.Get("pin"); p != testPIN {
				t.Fatalf("the reboot request carried pin %q, want the configured PIN", p)
			}
			if got[0].Form.Get("id") != "40101" {
				t.Fatalf("reboot sent for %v", got[0].Form)
			}
			reqs := el.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d elicitations", len(reqs))
			}
			p := reqs[0].Params
			if p.Mode == mcp.ElicitationModeURL || p.RequestedSchema == nil {
				t.Fatalf("confirmation was not a form: %+v", p)
			}
			for _, want := range []string{"eq/reboot", "server 40101", "web-nl-01.example", "203.0.113.10", "location NL", "unsaved data"} {
				if !strings.Contains(p.Message, want) {
					t.Errorf("confirmation message lacks %q: %s", want, p.Message)
				}
			}
			schema := mustJSON(t, p.RequestedSchema)
			if strings.Contains(strings.ToLower(schema), "pin") {
				t.Errorf("the form asks for a PIN: %s", schema)
			}
			dec := e.decisions()
			if dec[len(dec)-1] != policy.DecisionConfirmed || !contains(dec, policy.DecisionDeclined) {
				t.Fatalf("audit decisions %v", dec)
			}
		})
	}
}

// On the multi-round-trip protocol the requestState on the wire is an opaque handle:
// it names neither the tool nor the arguments, and the client sends it back verbatim.
func TestRequestStateOnTheWireIsAnOpaqueHandle(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, w := e.connect(mrtrHTTP, &elicitor{env: e}, formOnly)
	if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
		t.Fatal(text(res))
	}
	traffic := w.all()
	if !strings.Contains(traffic, `"resultType":"input_required"`) {
		t.Fatalf("no input_required result on the wire:\n%s", traffic)
	}
	m := stateRE.FindStringSubmatch(traffic)
	if m == nil {
		t.Fatalf("no requestState on the wire:\n%s", traffic)
	}
	state := m[1]
	if len(state) < 40 || strings.Contains(state, "40101") || strings.Contains(state, "reboot") || strings.Contains(state, "{") {
		t.Fatalf("requestState %q is not an opaque handle", state)
	}
	if n := strings.Count(traffic, state); n < 2 {
		t.Fatalf("requestState seen %d times; the retry should echo it", n)
	}
	if len(e.sent("eq", "reboot")) != 1 {
		t.Fatal("want exactly one reboot")
	}
}

// A client that declares form elicitation only is never sent a URL-mode request: with
// no PIN configured it gets the two-step approval instead. A client that declares both
// confirms in a form and then types the PIN on the one-time local page.
func TestPINPageOnlyForClientsThatDeclareURLMode(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, envOpts{NoPIN: true})

			formEl := &elicitor{env: e}
			c, _ := e.connect(kind, formEl, formOnly)
			res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
			if !res.IsError || !strings.Contains(text(res), "Confirmation required") {
				t.Fatalf("form-only client without a PIN: %q", text(res))
			}
			for _, r := range formEl.requests() {
				if r.Params.Mode == mcp.ElicitationModeURL {
					t.Fatalf("URL mode sent to a client that declared form only")
				}
			}
			if len(e.sent("eq", "reboot")) != 0 {
				t.Fatal("sent before approval")
			}

			el := &elicitor{env: e}
			c2, _ := e.connect(kind, el, formAndURL)
			res = e.call(c2, "eq_reboot", map[string]any{"id": 40102})
			if res.IsError {
				t.Fatalf("URL flow: %s", text(res))
			}
			reqs := el.requests()
			if len(reqs) != 2 || reqs[0].Params.Mode == mcp.ElicitationModeURL || reqs[1].Params.Mode != mcp.ElicitationModeURL {
				t.Fatalf("want form then URL, got %d requests", len(reqs))
			}
			u := reqs[1].Params.URL
			if !strings.HasPrefix(u, e.pages.URL+"/policy/approve/") || reqs[1].Params.ElicitationID == "" {
				t.Fatalf("page URL %q", u)
			}
			got := e.sent("eq", "reboot")
			if len(got) != 1 || got[0].Form.Get("pin") != testPIN || got[0].Form.Get("id") != "40102" {
				t.Fatalf("want one reboot of 40102 with the typed PIN, got %d", len(got))
			}
			// The page is single-use.
			if code := e.submitPage(u, "approve", testPIN, true); code == 200 {
				t.Fatal("the page accepted a second answer")
			}
		})
	}
}

// Declining on the page, or declining the URL request itself, sends nothing.
func TestPINPageDeclineSendsNothing(t *testing.T) {
	for _, kind := range []clientKind{legacyClient, mrtrClient} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, envOpts{NoPIN: true})
			for _, el := range []*elicitor{
				{env: e, page: "decline"},
				{env: e, url: mcp.ElicitationResponseActionDecline},
				{env: e, url: mcp.ElicitationResponseActionCancel},
			} {
				c, _ := e.connect(kind, el, formAndURL)
				res := e.call(c, "eq_off", map[string]any{"id": 40101})
				if !res.IsError || !strings.Contains(text(res), "Nothing was sent") {
					t.Fatalf("got %q", text(res))
				}
			}
			if n := len(e.writes()); n != 0 {
				t.Fatalf("%d requests sent", n)
			}
		})
	}
}

var stateRE = regexpMust(`"requestState":"([^"]+)"`)
