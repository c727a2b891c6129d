package policy_test

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
)

// Review of issue 12: a secret inside a list of objects (invapi_call params such as
// users[0][password]) was shown in the confirmation: the summary walked objects but
// printed lists as raw JSON, so the password reached the form, the approval page, the
// bot API and the two-step result the model reads.
func TestSecretsInListsAreNotShownInTheConfirmation(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{}})
	const secret = "Hunter2-Very-Secret-Value"
	e.secrets = append(e.secrets, secret)
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "invapi_call", map[string]any{"module": "vm", "action": "create_user",
		"params": map[string]any{"users": []any{map[string]any{"name": "bob", "password": secret}}}})
	if !strings.Contains(text(res), "Confirmation required") {
		t.Fatalf("want a confirmation, got %s", text(res))
	}
	if !strings.Contains(text(res), "bob") {
		t.Errorf("the confirmation does not show the list's other values: %s", text(res))
	}
}
