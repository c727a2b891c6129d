package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy"
)

// Prompt fatigue: a model that asks again and again wears the human down until they
// approve without reading. At most MaxPending confirmations wait per session; the next
// one is refused in words, audited, and sends nothing. Answered or expired ones free
// their place; other sessions are not affected.
func TestPendingConfirmationsPerSessionAreLimited(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{MaxPending: 3}})
	c, _ := e.connect(mrtrClient, nil, nil)
	asks := []struct {
		tool string
		id   int
	}{{"eq_reboot", 40101}, {"eq_reboot", 40102}, {"eq_reboot", 40301}}
	var first string
	for i, a := range asks {
		id, _ := approvalOf(t, e.call(c, a.tool, map[string]any{"id": a.id}))
		if i == 0 {
			first = id
		}
	}
	// The same call again is the same question, not a new one.
	if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); !strings.Contains(text(res), "Still waiting") {
		t.Fatalf("repeat of a waiting call: %s", text(res))
	}
	res := e.call(c, "eq_off", map[string]any{"id": 40101})
	txt := text(res)
	if !res.IsError || !strings.Contains(txt, "3 confirmations are already waiting for the user in this session") || !strings.Contains(txt, "nothing was sent") {
		t.Fatalf("a fourth confirmation: %s", txt)
	}
	if s := structured(t, res); s["pending_limit"] != float64(3) || s["decision"] != string(policy.DecisionDenied) {
		t.Fatalf("structured %v", s)
	}
	if d := e.decisions(); d[len(d)-1] != policy.DecisionDenied {
		t.Fatalf("not audited: %v", d)
	}
	// Another session has its own places.
	c2, _ := e.connect(mrtrClient, nil, nil)
	approvalOf(t, e.call(c2, "eq_off", map[string]any{"id": 40101}))
	// An answered one frees a place.
	if code := e.submitPage(e.pages.URL+"/policy/approve/"+first, "decline", "", true); code != 200 {
		t.Fatalf("decline on the page: %d", code)
	}
	approvalOf(t, e.call(c, "eq_off", map[string]any{"id": 40101}))
	if res := e.call(c, "eq_on", map[string]any{"id": 40101}); !strings.Contains(text(res), "already waiting") {
		t.Fatalf("the limit is back: %s", text(res))
	}
	// Expired ones too.
	e.clock.Advance(3 * time.Minute)
	approvalOf(t, e.call(c, "eq_on", map[string]any{"id": 40101}))
	if len(e.writes()) != 0 {
		t.Fatal("something was sent")
	}
}
