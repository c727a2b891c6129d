package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// A request the client would refuse for its parameter names (PHP would read " action"
// as action) leaves nothing, so the guard must not count it as sent: the audit line
// shows only the request that went out.
func TestGuardDoesNotCountRefusedNames(t *testing.T) {
	var e *env
	wf := server.ServerTool{
		Tool: mcp.NewTool("cycle", mcp.WithNumber("id", mcp.Required())),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c := &policy.Call{Tool: "cycle", Module: "workflow", Action: "cycle", Class: schemas.Write,
				ServerIDs: []int64{40101}, Args: req.GetArguments()}
			ctx, res, err := e.eng.Authorize(ctx, c, "")
			if err != nil || res != nil {
				return res, err
			}
			g := e.eng.Guard(e.inv)
			_, bad := g.Do(ctx, &invapi.Request{Module: "eq", Action: "show", Params: map[string]any{"id": 40101, " action": "reboot"}})
			if invapi.KindOf(bad) != invapi.KindInvalidParams {
				t.Errorf("want the client's refusal of the name, got %v", bad)
			}
			_, err = g.Do(ctx, &invapi.Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{"id": 40101}})
			e.eng.Done(ctx, c, err, time.Time{})
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText("done"), nil
		},
	}
	e = newEnv(t, envOpts{ExtraTools: []server.ServerTool{wf}})
	c, _ := e.connect(legacyClient, &elicitor{env: e}, formOnly)
	if res := e.call(c, "cycle", map[string]any{"id": 40101}); res.IsError {
		t.Fatal(text(res))
	}
	var last int = -1
	for _, en := range e.auditLines() {
		if en.Tool == "cycle" && en.Decision != string(policy.DecisionPending) {
			last = en.Requests
		}
	}
	if last != 1 {
		t.Fatalf("audit counts %d requests sent; one left (the refused one never did)", last)
	}
}
