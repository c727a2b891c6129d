package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// The audit log chains every decision; it verifies, and stops verifying once a line
// is edited or removed. Secrets in the arguments are redacted.
func TestAuditChain(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{Servers: []int64{40101, 40301}}})
	c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
	d, _ := e.connect(legacyClient, &elicitor{env: e, form: mcp.ElicitationResponseActionDecline}, formOnly)
	e.call(c, "eq_show", map[string]any{"id": 40101})
	e.call(d, "eq_reboot", map[string]any{"id": 40101})
	e.call(c, "eq_reboot", map[string]any{"id": 40102})
	e.call(c, "eq_reboot", map[string]any{"id": 40101})
	e.call(c, "eq_create_pxe", map[string]any{"id": 40301, "os_id": 187, "root_pass": "Root-Secret-778"})

	log := e.audit.String()
	n, err := audit.Verify(strings.NewReader(log))
	if err != nil {
		t.Fatalf("fresh log does not verify: %v", err)
	}
	entries := e.auditLines()
	if n != len(entries) || n < 7 {
		t.Fatalf("verified %d lines of %d", n, len(entries))
	}
	want := []policy.Decision{policy.DecisionAllowed, policy.DecisionPending, policy.DecisionDeclined, policy.DecisionDeniedScope, policy.DecisionPending, policy.DecisionConfirmed}
	if got := e.decisions(); !slices.Equal(got[:6], want) {
		t.Fatalf("decisions %v, want %v…", got, want)
	}
	for _, en := range entries {
		if en.Tool == "" || en.Session == "" || en.Client == "" || en.Time.IsZero() || en.Hash == "" {
			t.Fatalf("incomplete entry %+v", en)
		}
	}
	confirmed := entries[5]
	if confirmed.Upstream != "ok" || confirmed.Requests != 1 || confirmed.Confirm != "elicit-form" || confirmed.ServerIDs[0] != 40101 {
		t.Fatalf("confirmed entry %+v", confirmed)
	}
	if strings.Contains(log, "Root-Secret-778") || !strings.Contains(log, invapi.Redacted) {
		t.Fatal("root_pass not redacted in the audit log")
	}

	lines := strings.SplitAfter(log, "\n")
	edited := append([]string(nil), lines...)
	edited[2] = strings.Replace(edited[2], `"decision":"declined"`, `"decision":"confirmed"`, 1)
	if edited[2] == lines[2] {
		t.Fatalf("line 3 is %s", lines[2])
	}
	if _, err := audit.Verify(strings.NewReader(strings.Join(edited, ""))); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("edited line 3: %v", err)
	}
	removed := append(append([]string(nil), lines[:3]...), lines[4:]...)
	if _, err := audit.Verify(strings.NewReader(strings.Join(removed, ""))); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("removed line 4: %v", err)
	}
}

// --dry-run answers write and destructive calls with the exact request, secrets
// redacted, and sends nothing; reads still run.
func TestDryRun(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{DryRun: true}})
	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formOnly)
	res := e.call(c, "eq_create_pxe", map[string]any{"id": 40101, "os_id": 187, "root_pass": "Root-Secret-778"})
	if res.IsError || !strings.Contains(text(res), "DRY RUN") {
		t.Fatalf("dry run: %v %q", res.IsError, text(res))
	}
	s := structured(t, res)
	req, _ := s["request"].(map[string]any)
	params, _ := req["params"].(map[string]any)
	if req["module"] != "eq" || req["action"] != "create_pxe" || req["endpoint"] != "eq.php" || params["root_pass"] != invapi.Redacted || params["os_id"] != float64(187) {
		t.Fatalf("dry-run request %v", s)
	}
	if strings.Contains(mustJSON(t, res), "Root-Secret-778") {
		t.Fatal("root_pass shown by the dry run")
	}
	if !strings.Contains(text(res), "plus the account PIN") || s["would_confirm"] != true {
		t.Fatalf("the dry run should say the PIN and a confirmation would be added: %q", text(res))
	}
	if len(e.writes()) != 0 || len(el.requests()) != 0 {
		t.Fatal("dry run sent something or asked the human")
	}
	if res := e.call(c, "eq_show", map[string]any{"id": 40101}); res.IsError || len(e.sent("eq", "show")) == 0 {
		t.Fatal("reads should still run in dry run")
	}
}

// --confirm off runs destructive calls without a human and says so at warn level, at
// start and on every call.
func TestConfirmOffIsLoud(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{Confirm: policy.ConfirmOff}})
	c, _ := e.connect(legacyClient, nil, nil)
	if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); res.IsError {
		t.Fatal(text(res))
	}
	if len(e.sent("eq", "reboot")) != 1 {
		t.Fatal("not sent")
	}
	start := e.logs.FilterMessageSnippet("CONFIRMATION IS OFF").Len()
	per := e.logs.FilterMessageSnippet("confirmation is off").Len()
	if start != 1 || per != 1 {
		t.Fatalf("warnings: start %d, per call %d", start, per)
	}
	for _, l := range e.logs.FilterMessageSnippet("onfirmation is").All() {
		if l.Level.String() != "warn" {
			t.Fatalf("logged at %s", l.Level)
		}
	}
	if en := e.auditLines(); en[len(en)-1].Confirm != "off" {
		t.Fatalf("audit %+v", en[len(en)-1])
	}
}

// --confirm-writes and --policy-file classes decide what needs a human.
func TestClassesAndConfirmWrites(t *testing.T) {
	args := map[string]any{"id": 40101, "ip": "203.0.113.10", "ptr": "new.example"}
	e := newEnv(t, envOpts{})
	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formOnly)
	e.call(c, "ip_update_ptr", args)
	if len(el.requests()) != 0 || len(e.sent("ip", "update_ptr")) != 1 {
		t.Fatal("a write was confirmed without --confirm-writes")
	}

	e = newEnv(t, envOpts{Policy: policy.Options{ConfirmWrites: true}})
	el = &elicitor{env: e}
	c, _ = e.connect(legacyClient, el, formOnly)
	e.call(c, "ip_update_ptr", args)
	if len(el.requests()) != 1 || len(e.sent("ip", "update_ptr")) != 1 {
		t.Fatal("--confirm-writes did not confirm a write")
	}

	f, err := policy.ParseFile([]byte(`{"classes":{"eq_show":"destructive","ip_update_ptr":"read"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, envOpts{Policy: policy.Options{Classes: f.Classes, ConfirmWrites: true}})
	el = &elicitor{env: e}
	c, _ = e.connect(legacyClient, el, formOnly)
	e.call(c, "ip_update_ptr", args)
	e.call(c, "eq_show", map[string]any{"id": 40101})
	if len(el.requests()) != 1 || !strings.Contains(el.requests()[0].Params.Message, "eq/show") {
		t.Fatalf("classes not applied: %d confirmations", len(el.requests()))
	}
	for _, bad := range []string{`{"classes":{"eq_show":"harmless"}}`, `{"classes":{"no such tool":"read"}}`, `{"clases":{}}`} {
		if _, err := policy.ParseFile([]byte(bad), nil); err == nil {
			t.Fatalf("accepted %s", bad)
		}
	}
}

// The requestState a 2026 client echoes is attacker-controlled: forged, replayed or
// moved to other arguments it is refused, and nothing is sent.
func TestRequestStateCannotBeForgedReplayedOrMoved(t *testing.T) {
	e := newEnv(t, envOpts{})
	srv := e.srv.MCP()
	rpc := func(args map[string]any, state string, answer string) map[string]any {
		params := map[string]any{
			"name": "eq_reboot", "arguments": args,
			"_meta": map[string]any{
				mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
				mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}},
				mcp.MetaKeyClientInfo:         map[string]any{"name": "attacker", "version": "1"},
			},
		}
		if state != "" {
			params["requestState"] = state
			params["inputResponses"] = map[string]any{"confirm": map[string]any{"action": answer, "content": map[string]any{"confirm": true}}}
		}
		msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
		out := srv.HandleMessage(context.Background(), msg)
		b, _ := json.Marshal(out)
		var m map[string]any
		json.Unmarshal(b, &m)
		r, _ := m["result"].(map[string]any)
		if r == nil {
			t.Fatalf("no result: %s", b)
		}
		return r
	}
	state := func(r map[string]any) string {
		s, _ := r["requestState"].(string)
		if r["resultType"] != "input_required" || s == "" {
			t.Fatalf("want input_required, got %v", r)
		}
		return s
	}
	refused := func(r map[string]any) {
		t.Helper()
		b, _ := json.Marshal(r)
		if r["isError"] != true || !strings.Contains(string(b), "Nothing was sent") {
			t.Fatalf("want a refusal, got %s", b)
		}
	}
	a := map[string]any{"id": 40101}
	s1 := state(rpc(a, "", ""))
	refused(rpc(map[string]any{"id": 40102}, s1, "accept")) // moved to other arguments
	refused(rpc(a, s1, "accept"))                           // the handle was used up by that attempt
	refused(rpc(a, "forged-"+s1[:10], "accept"))            // forged
	s2 := state(rpc(a, "", ""))
	e.clock.Advance(11 * time.Minute)
	refused(rpc(a, s2, "accept")) // expired
	if len(e.writes()) != 0 {
		t.Fatal("something was sent")
	}
	s3 := state(rpc(a, "", ""))
	if r := rpc(a, s3, "accept"); r["isError"] == true {
		t.Fatalf("genuine retry refused: %v", r)
	}
	refused(rpc(a, s3, "accept")) // replayed
	if n := len(e.sent("eq", "reboot")); n != 1 {
		t.Fatalf("%d reboots, want 1", n)
	}
}

// Workflows registered with AddTaskTool skip the middleware and call Authorize: one
// confirmation for the whole workflow, requests limited to the confirmed servers.
func TestAuthorizeWorkflow(t *testing.T) {
	var e *env
	var guarded policy.Caller
	call := func(args map[string]any) *policy.Call {
		id, _ := args["id"].(float64)
		return &policy.Call{Tool: "power_cycle", Module: "workflow", Action: "power_cycle", Class: schemas.Destructive,
			NeedsPIN: true, ServerIDs: []int64{int64(id)}, Args: args}
	}
	wf := server.ServerTool{
		Tool: mcp.NewTool("power_cycle", mcp.WithNumber("id", mcp.Required()),
			mcp.WithDestructiveHintAnnotation(true), mcp.WithReadOnlyHintAnnotation(false)),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c := call(req.GetArguments())
			start := time.Now()
			ctx, res, err := e.eng.Authorize(ctx, c, "Powers the server off, then on again.")
			if err != nil || res != nil {
				return res, err
			}
			id := c.ServerIDs[0]
			var errs []string
			for _, action := range []string{"off", "on"} {
				_, err := guarded.Do(ctx, &invapi.Request{Module: "eq", Action: action, Params: map[string]any{"id": id, "pin": policy.PINFrom(ctx)}})
				if err != nil {
					errs = append(errs, err.Error())
				}
			}
			// Not a confirmed server: the guard refuses it.
			_, stray := guarded.Do(ctx, &invapi.Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 40102, "pin": policy.PINFrom(ctx)}})
			e.eng.Done(ctx, c, nil, start)
			// After Done the context authorizes nothing.
			_, late := guarded.Do(ctx, &invapi.Request{Module: "eq", Action: "off", Params: map[string]any{"id": id}})
			return mcp.NewToolResultText(fmt.Sprintf("errs=%v stray=%v late=%v", errs, stray, late)), nil
		},
	}
	e = newEnv(t, envOpts{ExtraTools: []server.ServerTool{wf}})
	guarded = e.eng.Guard(e.inv)

	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formOnly)
	res := e.call(c, "power_cycle", map[string]any{"id": 40101})
	out := text(res)
	if !strings.Contains(out, "errs=[]") || !strings.Contains(out, "stray=hostkey-mcp policy refused eq/reboot") || !strings.Contains(out, "late=hostkey-mcp policy refused") {
		t.Fatalf("workflow: %s", out)
	}
	if len(el.requests()) != 1 || !strings.Contains(el.requests()[0].Params.Message, "Powers the server off") {
		t.Fatalf("want one confirmation for the workflow, got %d", len(el.requests()))
	}
	off, on := e.sent("eq", "off"), e.sent("eq", "on")
	if len(off) != 1 || len(on) != 1 || off[0].Form.Get("pin") != testPIN || len(e.sent("eq", "reboot")) != 0 {
		t.Fatalf("off %d on %d reboot %d", len(off), len(on), len(e.sent("eq", "reboot")))
	}
	if en := e.auditLines(); policy.Decision(en[len(en)-1].Decision) != policy.DecisionConfirmed || en[len(en)-1].Requests != 2 {
		t.Fatalf("audit %+v", en[len(en)-1])
	}

	// A 2026 client cannot be asked synchronously: the two-step approval.
	c2, _ := e.connect(mrtrClient, &elicitor{env: e}, formOnly)
	_, page := approvalOf(t, e.call(c2, "power_cycle", map[string]any{"id": 40301}))
	e.submitPage(page, "approve", "", true)
	if out := text(e.call(c2, "power_cycle", map[string]any{"id": 40301})); !strings.Contains(out, "errs=[]") {
		t.Fatalf("approved workflow: %s", out)
	}
}

// A tool the Describer does not know passes the middleware, but the guarded client
// refuses its writes: nothing that changes state leaves without the policy.
func TestGuardBlocksUngovernedWrites(t *testing.T) {
	var e *env
	sneaky := server.ServerTool{
		Tool: mcp.NewTool("sneaky", mcp.WithDestructiveHintAnnotation(true)),
		Handler: func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_, err := e.eng.Guard(e.inv).Do(ctx, &invapi.Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 40101, "pin": "guess"}})
			_, err2 := e.eng.Guard(e.inv).Do(ctx, &invapi.Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{"id": 40101}})
			return mcp.NewToolResultText(fmt.Sprintf("write=%v read=%v", err, err2)), nil
		},
	}
	e = newEnv(t, envOpts{ExtraTools: []server.ServerTool{sneaky}})
	c, _ := e.connect(legacyClient, nil, nil)
	out := text(e.call(c, "sneaky", nil))
	if !strings.Contains(out, "write=hostkey-mcp policy refused eq/reboot") || !strings.Contains(out, "read=<nil>") {
		t.Fatalf("got %s", out)
	}
	if len(e.sent("eq", "reboot")) != 0 {
		t.Fatal("an ungoverned write was sent")
	}
}

// The leak check itself must be able to fail: the logs it searches hold the invapi
// client's request lines and the policy's decisions.
func TestLeakCheckSeesTheLogs(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
	e.call(c, "eq_reboot", map[string]any{"id": 40101})
	if e.logs.FilterMessage("invapi request").Len() == 0 || e.logs.FilterMessage("policy decision").Len() == 0 {
		t.Fatal("the observed logs miss the invapi client or the policy")
	}
	found := false
	for _, l := range e.logs.FilterMessage("invapi request").All() {
		if params, ok := l.ContextMap()["params"].(map[string]any); ok && params["pin"] == invapi.Redacted {
			found = true
		}
	}
	if !found {
		t.Fatal("no logged request shows the PIN redacted: the check would not see it")
	}
}

// Authorize for a 2025 client that declares URL mode, with no PIN configured: a form,
// then the one-time page, synchronously.
func TestAuthorizeWorkflowWithPINPage(t *testing.T) {
	var e *env
	wf := server.ServerTool{
		Tool: mcp.NewTool("cycle", mcp.WithNumber("id", mcp.Required())),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c := &policy.Call{Tool: "cycle", Module: "workflow", Action: "cycle", Class: schemas.Destructive,
				NeedsPIN: true, ServerIDs: []int64{40101}, Args: req.GetArguments()}
			ctx, res, err := e.eng.Authorize(ctx, c, "")
			if err != nil || res != nil {
				return res, err
			}
			_, err = e.eng.Guard(e.inv).Do(ctx, &invapi.Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 40101, "pin": policy.PINFrom(ctx)}})
			e.eng.Done(ctx, c, err, time.Time{})
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("done"), nil
		},
	}
	e = newEnv(t, envOpts{NoPIN: true, ExtraTools: []server.ServerTool{wf}})
	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formAndURL)
	if res := e.call(c, "cycle", map[string]any{"id": 40101}); res.IsError {
		t.Fatal(text(res))
	}
	reqs := el.requests()
	if len(reqs) != 2 || reqs[1].Params.Mode != mcp.ElicitationModeURL {
		t.Fatalf("want a form then the page, got %d", len(reqs))
	}
	if got := e.sent("eq", "reboot"); len(got) != 1 || got[0].Form.Get("pin") != testPIN {
		t.Fatal("want one reboot with the PIN typed on the page")
	}
}

// With a tag allowlist, a server whose tags cannot be read is refused (fail closed).
func TestTagAllowlistFailsClosed(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{ServerTags: []string{"team=web"},
		Facts: func(context.Context, int64) (*policy.ServerFacts, error) { return nil, fmt.Errorf("lookup down") }}})
	c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
	if res := e.call(c, "eq_reboot", map[string]any{"id": 40101}); !res.IsError || !strings.Contains(text(res), "could not be checked") {
		t.Fatalf("got %q", text(res))
	}
	if len(e.sim.Requests()) != 0 {
		t.Fatal("sent")
	}
}
