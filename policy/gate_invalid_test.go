package policy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/policy"
)

// Issue 12 item 5: mcp-go's validation answered
// `input schema validation failed: /root_pass: &{Got:Passw0rd#long Want:^[^@#]*$}`,
// showing the password to the model and the user, and rejected calls were not audited.
// Now each problem is one line in words naming the field, secret values are never
// repeated, and every invalid call gets an audit line with its arguments redacted.
func TestInvalidArgumentsAreExplainedInWordsAndAudited(t *testing.T) {
	const password = "Passw0rd#long"
	for _, kind := range []clientKind{legacyClient, mrtrClient} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.secrets = append(e.secrets, password)
			c, _ := e.connect(kind, &elicitor{env: e}, formOnly)
			cases := []struct {
				tool string
				args map[string]any
				want []string
			}{
				{"eq_create_pxe", map[string]any{"id": 40101, "os_id": 5, "root_pass": password}, []string{`"root_pass" must not contain @ or #`}},
				{"eq_reboot", map[string]any{"id": "40101"}, []string{`"id" must be an integer, got "40101"`}},
				{"eq_reboot", map[string]any{}, []string{`missing required argument "id"`}},
				{"eq_reboot", map[string]any{"id": 40101, "force": true}, []string{`unknown argument "force"`}},
				{"eq_create_pxe", map[string]any{"id": "x", "os_id": 5, "root_pass": "short"}, []string{`"id" must be an integer, got "x"`, `"root_pass" must be at least 8 characters long (it is 5)`}},
			}
			for _, tc := range cases {
				before := len(e.auditLines())
				res := e.call(c, tc.tool, tc.args)
				txt := text(res)
				if !res.IsError {
					t.Fatalf("%s %v: accepted: %s", tc.tool, tc.args, txt)
				}
				for _, w := range tc.want {
					if !strings.Contains(txt, w) {
						t.Errorf("%s %v: %q lacks %q", tc.tool, tc.args, txt, w)
					}
				}
				if strings.Contains(txt, "&{") || strings.Contains(txt, "Got:") {
					t.Errorf("a Go struct dump: %q", txt)
				}
				en := e.auditLines()
				if len(en) != before+1 || policy.Decision(en[len(en)-1].Decision) != policy.DecisionInvalid || en[len(en)-1].Tool != tc.tool {
					t.Errorf("%s %v: audit %+v", tc.tool, tc.args, en[before:])
				}
			}
			if len(e.writes()) != 0 {
				t.Fatal("an invalid call was sent")
			}
			// checkNoPINLeak (at cleanup) also looks for the password in every result,
			// log line and audit line.
		})
	}
}

// Tools the catalog does not know (workflows, discovery) are validated the same way:
// mcp-go's own check is off, so the policy's must cover them, secrets included.
func TestInvalidArgumentsOfOtherToolsAreExplainedToo(t *testing.T) {
	const password, blob = "Secr3t@pass", "sealed-blob-7731"
	called := false
	tool := server.ServerTool{
		Tool: mcp.Tool{Name: "server_rebuild", RawInputSchema: json.RawMessage(`{"type":"object","additionalProperties":false,"required":["id","root_pass"],"properties":{` +
			`"id":{"type":"integer","minimum":1},"root_pass":{"type":"string","writeOnly":true,"pattern":"^[^@#]*$"},"wait_seconds":{"type":"integer","maximum":3600},` +
			`"blob":{"type":"integer","writeOnly":true}}}`)},
		Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			called = true
			return mcp.NewToolResultText("ok"), nil
		},
	}
	e := newEnv(t, envOpts{ExtraTools: []server.ServerTool{tool}})
	e.secrets = append(e.secrets, password, blob)
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "server_rebuild", map[string]any{"id": 0, "root_pass": password, "wait_seconds": 7200, "blob": blob})
	txt := text(res)
	if strings.Contains(txt, blob) {
		t.Errorf("a writeOnly value is repeated: %q", txt)
	}
	for _, w := range []string{`"id" must be at least 1, got 0`, `"root_pass" must not contain @ or #`, `"wait_seconds" must be at most 3600, got 7200`, `"blob" must be an integer`} {
		if !strings.Contains(txt, w) {
			t.Errorf("%q lacks %q", txt, w)
		}
	}
	if called {
		t.Fatal("the handler ran with invalid arguments")
	}
	if d := e.decisions(); len(d) != 1 || d[0] != policy.DecisionInvalid {
		t.Fatalf("audit %v", d)
	}
	if res := e.call(c, "server_rebuild", map[string]any{"id": 1, "root_pass": "fine-pass"}); res.IsError || !called {
		t.Fatalf("valid call: %s", text(res))
	}
}
