package policy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
)

func approvalOf(t *testing.T, res *mcp.CallToolResult) (id, pageURL string) {
	t.Helper()
	if !res.IsError || !strings.Contains(text(res), "Confirmation required") {
		t.Fatalf("want a confirmation-required result, got %v %q", res.IsError, text(res))
	}
	m := structured(t, res)
	id, _ = m["approval_id"].(string)
	pageURL, _ = m["approve_url"].(string)
	if id == "" {
		t.Fatalf("no approval id in %v", m)
	}
	return id, pageURL
}

// Clients without elicitation get the two-step flow: the approval happens on the local
// page, bound to tool + arguments + session, single-use and expiring.
func TestTwoStepApprovalIsBoundSingleUseAndExpires(t *testing.T) {
	for _, kind := range []clientKind{legacyClient, mrtrClient} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			c1, _ := e.connect(kind, nil, nil)
			args := map[string]any{"id": 40101}

			id, page := approvalOf(t, e.call(c1, "eq_reboot", args))
			if !strings.Contains(text(e.call(c1, "eq_reboot", args)), "Still waiting") {
				t.Fatal("repeat before approval should say it is still waiting")
			}
			if !strings.HasSuffix(page, "/approve/"+id) {
				t.Fatalf("page %q for %s", page, id)
			}
			// A script posting without the page's Origin cannot approve.
			if code := e.submitPage(page, "approve", "", false); code != http.StatusForbidden {
				t.Fatalf("post without Origin answered %d", code)
			}
			if code := e.submitPage(page, "approve", "", true); code != http.StatusOK {
				t.Fatalf("approve answered %d", code)
			}

			// Another session repeating the same call is not approved by it.
			c2, _ := e.connect(kind, nil, nil)
			if id2, _ := approvalOf(t, e.call(c2, "eq_reboot", args)); id2 == id {
				t.Fatal("another session got the same approval")
			}
			// Other arguments are not approved by it.
			approvalOf(t, e.call(c1, "eq_reboot", map[string]any{"id": 40102}))
			if n := len(e.sent("eq", "reboot")); n != 0 {
				t.Fatalf("%d reboots sent before the exact repeat", n)
			}

			// The exact repeat runs once, with the PIN.
			res := e.call(c1, "eq_reboot", args)
			if res.IsError {
				t.Fatalf("approved repeat failed: %s", text(res))
			}
			got := e.sent("eq", "reboot")
			if len(got) != 1 || got[0].Form.Get("pin") != testPIN || got[0].Form.Get("id") != "40101" {
				t.Fatalf("want one reboot of 40101 with the PIN, got %d", len(got))
			}
			// Replay: the approval is spent.
			approvalOf(t, e.call(c1, "eq_reboot", args))
			if len(e.sent("eq", "reboot")) != 1 {
				t.Fatal("a replayed call was sent")
			}

			// Expiry: approved, but repeated after the TTL.
			_, page = approvalOf(t, e.call(c1, "eq_on", args))
			if code := e.submitPage(page, "approve", "", true); code != http.StatusOK {
				t.Fatalf("approve answered %d", code)
			}
			e.clock.Advance(2*time.Minute + time.Second)
			approvalOf(t, e.call(c1, "eq_on", args))
			if len(e.sent("eq", "on")) != 0 {
				t.Fatal("an expired approval was used")
			}
			resp, err := http.Get(page)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("expired page answered %d", resp.StatusCode)
			}

			// Declined on the page: the repeat says so and sends nothing.
			_, page = approvalOf(t, e.call(c1, "eq_off", args))
			if code := e.submitPage(page, "decline", "", true); code != http.StatusOK {
				t.Fatalf("decline answered %d", code)
			}
			if res := e.call(c1, "eq_off", args); !res.IsError || !strings.Contains(text(res), "declined") {
				t.Fatalf("after decline: %q", text(res))
			}
			if len(e.sent("eq", "off")) != 0 {
				t.Fatal("declined call sent")
			}
		})
	}
}

// The approval page refuses cross-site posts, forged form tokens and non-loopback Host
// names (DNS rebinding).
func TestApprovalPageDefences(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, _ := e.connect(legacyClient, nil, nil)
	_, page := approvalOf(t, e.call(c, "eq_reboot", map[string]any{"id": 40101}))

	post := func(origin, host, csrf string) int {
		form := url.Values{"csrf": {csrf}, "decision": {"approve"}}
		req, _ := http.NewRequest(http.MethodPost, page, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	u, _ := url.Parse(page)
	self := "http://" + u.Host
	if code := post("https://evil.example", "", "x"); code != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", code)
	}
	if code := post(self, "", "forged"); code != http.StatusForbidden {
		t.Fatalf("forged csrf: %d", code)
	}
	if code := post("http://rebind.example:"+u.Port(), "rebind.example:"+u.Port(), "x"); code != http.StatusForbidden {
		t.Fatalf("rebinding host: %d", code)
	}
	if len(e.writes()) != 0 {
		t.Fatal("something was sent")
	}
}

// --confirm token: chat-ops bots approve with their own credential through the API;
// elicitation is not used even when the client supports it.
func TestTokenModeBotApproval(t *testing.T) {
	const bot = "bot-credential-123"
	e := newEnv(t, envOpts{NoPIN: true, NoPage: true, Policy: policy.Options{Confirm: policy.ConfirmToken, ApproverToken: bot}})
	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formAndURL)
	args := map[string]any{"id": 40301}
	res := e.call(c, "eq_reboot", args)
	id, page := approvalOf(t, res)
	if page != "" || len(el.requests()) != 0 {
		t.Fatalf("token mode used a page (%q) or elicitation (%d)", page, len(el.requests()))
	}
	if m := structured(t, res); m["needs_pin"] != true {
		t.Fatalf("no PIN configured: the approval must ask for it: %v", m)
	}
	api := e.pages.URL + "/policy/api/approvals/" + id
	do := func(method, u, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, _ := do(http.MethodPost, api, "wrong", `{"decision":"approve","pin":"`+testPIN+`"}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong bot token: %d", code)
	}
	if code, m := do(http.MethodGet, e.pages.URL+"/policy/api/approvals", bot, ""); code != 200 || !strings.Contains(mustJSON(t, m), id) {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, _ := do(http.MethodPost, api, bot, `{"decision":"approve"}`); code != http.StatusBadRequest {
		t.Fatalf("approval without the needed PIN: %d", code)
	}
	if len(e.writes()) != 0 {
		t.Fatal("sent before approval")
	}
	if code, m := do(http.MethodPost, api, bot, `{"decision":"approve","pin":"`+testPIN+`"}`); code != 200 || m["state"] != "approved" {
		t.Fatalf("approve: %d %v", code, m)
	}
	if code, _ := do(http.MethodPost, api, bot, `{"decision":"decline"}`); code != http.StatusConflict {
		t.Fatalf("second decision: %d", code)
	}
	if res := e.call(c, "eq_reboot", args); res.IsError {
		t.Fatalf("approved repeat: %s", text(res))
	}
	got := e.sent("eq", "reboot")
	if len(got) != 1 || got[0].Form.Get("pin") != testPIN {
		t.Fatalf("want one reboot carrying the bot-supplied PIN, got %d", len(got))
	}
	dec := e.decisions()
	if dec[len(dec)-1] != policy.DecisionConfirmed {
		t.Fatalf("decisions %v", dec)
	}
	if en := e.auditLines(); en[len(en)-1].Confirm != "approval-bot" {
		t.Fatalf("audit confirm %q", en[len(en)-1].Confirm)
	}
}

// Without elicitation, an approval page or a bot there is no way to reach a human:
// the call is refused, clearly, and nothing is sent.
func TestNoWayToConfirmRefuses(t *testing.T) {
	e := newEnv(t, envOpts{NoPage: true})
	c, _ := e.connect(legacyClient, nil, nil)
	res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
	if !res.IsError || !strings.Contains(text(res), "needs a human's approval") {
		t.Fatalf("got %q", text(res))
	}
	if len(e.writes()) != 0 {
		t.Fatal("sent")
	}
}
