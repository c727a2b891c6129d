package policy_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// Issue 12 item 7: a declined confirmation used up the rate limit. Nothing was sent,
// yet the human who then accepted was told "Rate limited ... Retry after 60 s". The
// rate tokens are now reserved before asking and given back on decline or cancel.
func TestDeclineThenAcceptIsNotRateLimited(t *testing.T) {
	for _, kind := range []clientKind{legacyClient, mrtrClient} {
		for _, answer := range []mcp.ElicitationResponseAction{mcp.ElicitationResponseActionDecline, mcp.ElicitationResponseActionCancel} {
			t.Run(string(kind)+"/"+string(answer), func(t *testing.T) {
				e := newEnv(t, envOpts{Policy: policy.Options{Limits: policy.Limits{
					Destructive: limit(t, "0.0167:1"), Server: limit(t, "0.0167:1"),
				}}})
				el := &elicitor{env: e, form: answer}
				c, _ := e.connect(kind, el, formOnly)
				res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
				if !res.IsError || !strings.Contains(text(res), "Nothing was sent") {
					t.Fatalf("the declined call: %s", text(res))
				}
				el.mu.Lock()
				el.form = mcp.ElicitationResponseActionAccept
				el.mu.Unlock()
				res = e.call(c, "eq_reboot", map[string]any{"id": 40101})
				if res.IsError {
					t.Fatalf("accepted after a %s: %s", answer, text(res))
				}
				if n := len(e.sent("eq", "reboot")); n != 1 {
					t.Fatalf("%d reboots sent, want 1", n)
				}
				// The accepted call was sent: it is charged.
				res = e.call(c, "eq_reboot", map[string]any{"id": 40101})
				if !res.IsError || !strings.Contains(text(res), "Rate limited") {
					t.Fatalf("a second sent reboot within the minute: %s", text(res))
				}
			})
		}
	}
}

// A two-step approval declined by the bot, and one that expires unanswered, give their
// tokens back too.
func TestDeclinedOrExpiredApprovalIsNotRateLimited(t *testing.T) {
	const bot = "bot-credential-5f1e"
	e := newEnv(t, envOpts{NoPIN: true, NoPage: true, Policy: policy.Options{
		Confirm: policy.ConfirmToken, ApproverToken: bot,
		Limits: policy.Limits{Destructive: limit(t, "0.0167:1")},
	}})
	c, _ := e.connect(mrtrClient, nil, nil)
	args := map[string]any{"id": 40101}
	res := e.call(c, "eq_reboot", args)
	id, _ := structured(t, res)["approval_id"].(string)
	if id == "" {
		t.Fatalf("no approval: %s", text(res))
	}
	if code := botDecide(t, e, bot, id, "decline"); code != 200 {
		t.Fatalf("bot decline: %d", code)
	}
	if res := e.call(c, "eq_reboot", args); !strings.Contains(text(res), "declined") {
		t.Fatalf("repeat after decline: %s", text(res))
	}
	// Asked again: not rate limited; this one expires unanswered.
	res = e.call(c, "eq_reboot", args)
	if id, _ = structured(t, res)["approval_id"].(string); id == "" {
		t.Fatalf("asked again after a decline: %s", text(res))
	}
	e.clock.Advance(3 * time.Minute)
	res = e.call(c, "eq_reboot", args)
	if id, _ = structured(t, res)["approval_id"].(string); id == "" {
		t.Fatalf("asked again after an expired approval: %s", text(res))
	}
	if n := len(e.writes()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// botDecide answers an approval through the bot API and returns the HTTP status.
func botDecide(t *testing.T, e *env, token, id, decision string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.pages.URL+"/policy/api/approvals/"+id, strings.NewReader(`{"decision":"`+decision+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The same through Authorize (a workflow asks synchronously) and through the PIN page:
// a decline on either costs no token.
func TestDeclinedWorkflowOrPageIsNotRateLimited(t *testing.T) {
	t.Run("workflow", func(t *testing.T) {
		var e *env
		wf := server.ServerTool{
			Tool: mcp.NewTool("power_cycle", mcp.WithNumber("id", mcp.Required())),
			Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				c := &policy.Call{Tool: "power_cycle", Module: "eq", Action: "reboot", Class: schemas.Destructive,
					ServerIDs: []int64{40101}, Args: req.GetArguments()}
				ctx, res, err := e.eng.Authorize(ctx, c, "Reboots the server.")
				if err != nil || res != nil {
					return res, err
				}
				_, err = e.eng.Guard(e.inv).Do(ctx, &invapi.Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 40101, "pin": policy.PINFrom(ctx)}})
				e.eng.Done(ctx, c, err, time.Time{})
				return mcp.NewToolResultText("done"), nil
			},
		}
		e = newEnv(t, envOpts{ExtraTools: []server.ServerTool{wf}, Policy: policy.Options{Limits: policy.Limits{Destructive: limit(t, "0.0167:1")}}})
		el := &elicitor{env: e, form: mcp.ElicitationResponseActionDecline}
		c, _ := e.connect(legacyClient, el, formOnly)
		if res := e.call(c, "power_cycle", map[string]any{"id": 40101}); !strings.Contains(text(res), "declined") {
			t.Fatalf("declined workflow: %s", text(res))
		}
		el.mu.Lock()
		el.form = mcp.ElicitationResponseActionAccept
		el.mu.Unlock()
		if res := e.call(c, "power_cycle", map[string]any{"id": 40101}); res.IsError || len(e.sent("eq", "reboot")) != 1 {
			t.Fatalf("accepted workflow: %s", text(res))
		}
		if res := e.call(c, "power_cycle", map[string]any{"id": 40101}); !strings.Contains(text(res), "Rate limited") {
			t.Fatalf("a second sent workflow within the minute: %s", text(res))
		}
	})
	t.Run("page", func(t *testing.T) {
		e := newEnv(t, envOpts{NoPIN: true, Policy: policy.Options{Limits: policy.Limits{Destructive: limit(t, "0.0167:1")}}})
		el := &elicitor{env: e, page: "decline"}
		c, _ := e.connect(mrtrClient, el, formAndURL)
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); !strings.Contains(text(res), "declined") {
			t.Fatalf("declined on the page: %s", text(res))
		}
		el.mu.Lock()
		el.page = "approve"
		el.mu.Unlock()
		if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError || len(e.sent("eq", "reboot")) != 1 {
			t.Fatalf("approved on the page: %s", text(res))
		}
	})
}
