package policy_test

import (
	"strings"
	"testing"

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
				{"eq_reinstall", map[string]any{"id": 40101, "os_id": 5, "root_pass": password}, []string{`"root_pass" must not contain @ or #`}},
				{"eq_reboot", map[string]any{"id": "40101"}, []string{`"id" must be an integer, got "40101"`}},
				{"eq_reboot", map[string]any{}, []string{`missing required argument "id"`}},
				{"eq_reboot", map[string]any{"id": 40101, "force": true}, []string{`unknown argument "force"`}},
				{"eq_reinstall", map[string]any{"id": "x", "root_pass": "short"}, []string{`"id" must be an integer, got "x"`, `"root_pass" must be at least 8 characters long (it is 5)`}},
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
