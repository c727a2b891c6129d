package policy_test

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools"
)

func limit(t *testing.T, s string) policy.Limit {
	t.Helper()
	l, err := policy.ParseLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var retryRE = regexp.MustCompile(`Retry after (\d+) s`)

// burst fires n calls at once and sorts the results.
func burst(t *testing.T, e *env, n int, call func(i int) *mcp.CallToolResult) (ok int, limited []*mcp.CallToolResult) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := call(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !res.IsError:
				ok++
			case strings.Contains(text(res), "Rate limited"):
				limited = append(limited, res)
			default:
				t.Errorf("call %d: unexpected %q", i, text(res))
			}
		}(i)
	}
	wg.Wait()
	return ok, limited
}

// A burst of 50 destructive calls, each confirmed by the human, is limited as
// configured: one per server per minute, three destructive calls in a burst; every
// refused call says why and when to retry, and sends nothing.
func TestBurstOf50DestructiveCalls(t *testing.T) {
	t.Run("per server", func(t *testing.T) {
		e := newEnv(t, envOpts{Policy: policy.Options{Limits: policy.Limits{
			Global: limit(t, "5:100"), Destructive: limit(t, "0.1:3"), Server: limit(t, "0.0167:1"), Session: limit(t, "2:100"),
		}}})
		c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
		ok, limited := burst(t, e, 50, func(int) *mcp.CallToolResult {
			return e.call(c, "eq_reboot", map[string]any{"id": 40101})
		})
		if ok != 1 || len(limited) != 49 {
			t.Fatalf("ok %d, rate limited %d; want 1 and 49", ok, len(limited))
		}
		if n := len(e.sent("eq", "reboot")); n != 1 {
			t.Fatalf("%d reboots sent, want 1", n)
		}
		for _, res := range limited {
			txt := text(res)
			m := retryRE.FindStringSubmatch(txt)
			if !strings.Contains(txt, "destructive calls on server 40101") || !strings.Contains(txt, "Nothing was sent") || m == nil {
				t.Fatalf("unclear refusal: %q", txt)
			}
			if secs, _ := strconv.Atoi(m[1]); secs < 55 || secs > 61 {
				t.Fatalf("retry after %d s, want about a minute", secs)
			}
			if s := structured(t, res); s["limit"] != "server" || s["retry_after_seconds"] == nil {
				t.Fatalf("structured %v", s)
			}
		}
		e.clock.Advance(61 * time.Second)
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("after a minute: %s", text(res))
		}
	})
	t.Run("destructive", func(t *testing.T) {
		e := newEnv(t, envOpts{Policy: policy.Options{Limits: policy.Limits{
			Global: limit(t, "5:100"), Destructive: limit(t, "0.1:3"), Session: limit(t, "2:100"),
		}}})
		c, _ := e.connect(mrtrClient, &elicitor{env: e}, formOnly)
		ids := []int64{40101, 40102, 40301}
		ok, limited := burst(t, e, 50, func(i int) *mcp.CallToolResult {
			return e.call(c, "eq_reboot", map[string]any{"id": ids[i%len(ids)]})
		})
		if ok != 3 || len(limited) != 47 {
			t.Fatalf("ok %d, rate limited %d; want 3 and 47", ok, len(limited))
		}
		if n := len(e.sent("eq", "reboot")); n != 3 {
			t.Fatalf("%d reboots sent, want 3", n)
		}
		for _, res := range limited {
			if txt := text(res); !strings.Contains(txt, "destructive calls are limited to 1 per 10s (bursts of 3)") || !strings.Contains(txt, "Retry after 10 s") {
				t.Fatalf("unclear refusal: %q", txt)
			}
		}
		n := 0
		for _, d := range e.decisions() {
			if d == policy.DecisionRateLimited {
				n++
			}
		}
		if n != 47 {
			t.Fatalf("%d rate-limited audit entries", n)
		}
	})
	t.Run("per session", func(t *testing.T) {
		e := newEnv(t, envOpts{Policy: policy.Options{Limits: policy.Limits{Session: limit(t, "1:5")}}})
		c1, _ := e.connect(legacyClient, nil, nil)
		ok, limited := burst(t, e, 20, func(int) *mcp.CallToolResult {
			return e.call(c1, "eq_show", map[string]any{"id": 40101})
		})
		if ok != 5 || len(limited) != 15 || !strings.Contains(text(limited[0]), "calls in this MCP session") {
			t.Fatalf("ok %d limited %d", ok, len(limited))
		}
		c2, _ := e.connect(legacyClient, nil, nil)
		if res := e.call(c2, "eq_show", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("another session was limited: %s", text(res))
		}
	})
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in    string
		r     rate.Limit
		b     int
		isErr bool
	}{
		{"5:10", 5, 10, false},
		{"0.0167:1", 0.0167, 1, false},
		{" 2 : 20 ", 2, 20, false},
		{"", rate.Inf, 0, false},
		{"off", rate.Inf, 0, false},
		{"5", 0, 0, true},
		{"0:3", 0, 0, true},
		{"-1:3", 0, 0, true},
		{"5:0", 0, 0, true},
		{"x:1", 0, 0, true},
		{"NaN:1", 0, 0, true},
	} {
		r, b, err := policy.ParseRate(tc.in)
		if (err != nil) != tc.isErr || (!tc.isErr && (r != tc.r || b != tc.b)) {
			t.Errorf("ParseRate(%q) = %v, %d, %v", tc.in, r, b, err)
		}
	}
}

// Scope is checked before anything leaves: read-only mode, the server allowlist by ID
// and by tag.
func TestScopeRefusesBeforeAnyRequest(t *testing.T) {
	t.Run("by id", func(t *testing.T) {
		e := newEnv(t, envOpts{Policy: policy.Options{Servers: []int64{40101}}})
		el := &elicitor{env: e}
		c, _ := e.connect(legacyClient, el, formOnly)
		for _, call := range []struct {
			tool string
			args map[string]any
		}{
			{"eq_reboot", map[string]any{"id": 40102}},
			{"eq_show", map[string]any{"id": 40102}},
			{tools.GenericToolName, map[string]any{"module": "tag", "action": "list"}},
		} {
			res := e.call(c, call.tool, call.args)
			if !res.IsError || !strings.Contains(text(res), "Refused") || !strings.Contains(text(res), "Nothing was sent") {
				t.Fatalf("%s: %q", call.tool, text(res))
			}
		}
		if n := len(e.sim.Requests()); n != 0 {
			t.Fatalf("%d upstream requests for out-of-scope calls, want none", n)
		}
		if len(el.requests()) != 0 {
			t.Fatal("a human was asked to confirm an out-of-scope call")
		}
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
			t.Fatalf("in scope: %s", text(res))
		}
		for _, d := range e.decisions()[:3] {
			if d != policy.DecisionDeniedScope {
				t.Fatalf("decisions %v", e.decisions())
			}
		}
	})
	t.Run("by tag", func(t *testing.T) {
		e := newEnv(t, envOpts{Policy: policy.Options{ServerTags: []string{"team=web"}}})
		c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40102}); !res.IsError || !strings.Contains(text(res), "team=web") {
			t.Fatalf("team=data server: %q", text(res))
		}
		for _, r := range e.sim.Requests() {
			if r.Module != "auth" && !(r.Module == "eq" && r.Action == "show") {
				t.Fatalf("sent %s/%s for an out-of-scope server", r.Module, r.Action)
			}
		}
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40301}); res.IsError {
			t.Fatalf("team=web server: %s", text(res))
		}
	})
}

// --read-only exposes no write tool and runs none, even one registered by mistake.
func TestReadOnly(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{ReadOnly: true}, Selection: tools.Selection{Toolsets: []string{"all"}, ReadOnly: true}})
	c, _ := e.connect(legacyClient, nil, nil)
	list, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		if ro := tool.Annotations.ReadOnlyHint; ro == nil || !*ro {
			t.Fatalf("read-only server lists %s", tool.Name)
		}
	}

	e = newEnv(t, envOpts{Policy: policy.Options{ReadOnly: true}})
	c, _ = e.connect(legacyClient, &elicitor{env: e}, formOnly)
	for tool, args := range map[string]map[string]any{
		"eq_reboot":     {"id": 40101},
		"ip_update_ptr": {"id": 40101, "ip": "203.0.113.10", "ptr": "x.example"},
	} {
		res := e.call(c, tool, args)
		if !res.IsError || !strings.Contains(text(res), "read-only") {
			t.Fatalf("%s: %q", tool, text(res))
		}
	}
	if len(e.sim.Requests()) != 0 {
		t.Fatal("read-only mode sent a request for a write tool")
	}
	if res := e.call(c, "eq_show", map[string]any{"id": 40101}); res.IsError {
		t.Fatalf("read: %s", text(res))
	}
}
