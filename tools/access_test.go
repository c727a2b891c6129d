package tools_test

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// Issue 12 item 6: eq_check_pin (read class, no confirmation) took a model-supplied
// old_pin, a PIN-guessing oracle on the real API. The model can no longer send one; the
// policy sends the configured PIN.
func TestCheckPINTakesNoPINFromTheModel(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{})
	st.Sim.ResetRequests()
	for _, guess := range []map[string]any{{"old_pin": 1111}, {"pin": "1111"}} {
		res := st.Call(t, "eq_check_pin", guess)
		if !res.IsError {
			t.Errorf("eq_check_pin accepted a PIN from the model (%v): %s", guess, toolstest.Text(res))
		}
	}
	if n := len(st.Sent("eq", "check_pin")); n != 0 {
		t.Fatalf("%d eq/check_pin requests carried the model's guess", n)
	}
	res := st.Call(t, "eq_check_pin", map[string]any{})
	if res.IsError || !strings.Contains(toolstest.Text(res), "Pin code is valid") {
		t.Fatalf("eq_check_pin with the configured PIN: %s", toolstest.Text(res))
	}
	if strings.Contains(toolstest.Text(res), st.Sim.PIN()) {
		t.Error("the result shows the PIN")
	}
	sent := st.Sent("eq", "check_pin")
	if len(sent) != 1 || sent[0].Form.Get("pin") != st.Sim.PIN() {
		t.Errorf("eq/check_pin did not carry the configured PIN")
	}
}

// eq_set_pin: the model types only the new PIN; the current one comes from the policy as
// old_pin (invapi's name for it).
func TestSetPINTakesTheCurrentPINFromThePolicy(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{Confirm: policy.ConfirmOff})
	old := st.Sim.PIN()
	res := st.Call(t, "eq_set_pin", map[string]any{"new_pin": "48151", "old_pin": old})
	if !res.IsError || !strings.Contains(toolstest.Text(res), "old_pin") {
		t.Errorf("eq_set_pin took old_pin from the model: %s", toolstest.Text(res))
	}
	res = st.Call(t, "eq_set_pin", map[string]any{"new_pin": "48151"})
	if res.IsError {
		t.Fatalf("eq_set_pin: %s", toolstest.Text(res))
	}
	if st.Sim.PIN() != "48151" {
		t.Errorf("the PIN was not changed")
	}
	if sent := st.Sent("eq", "set_pin"); len(sent) != 1 || sent[0].Form.Get("old_pin") != old {
		t.Errorf("eq/set_pin did not carry the configured PIN as old_pin")
	}
}

// Nor through the generic tool: any PIN-like parameter, at any depth, is refused.
func TestGenericToolTakesNoPINFromTheModel(t *testing.T) {
	st, _ := gatedStack(t, policy.Options{Confirm: policy.ConfirmOff})
	st.Sim.ResetRequests()
	for _, params := range []map[string]any{
		{"old_pin": "1234"},
		{"new_pin": "1234"},
		{"params": map[string]any{"pincode": 1234}},
	} {
		res := st.Call(t, "invapi_call", map[string]any{"module": "tag", "action": "add", "params": params})
		if !res.IsError || !strings.Contains(toolstest.Text(res), "PIN") {
			t.Errorf("invapi_call with %v: %s", params, toolstest.Text(res))
		}
	}
	if n := len(st.Sim.Requests()); n != 0 {
		t.Errorf("%d requests reached invapi", n)
	}
}
