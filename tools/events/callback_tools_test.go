package events

import (
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// TestCallbackToolsFromParamsMatchSchemas: callbackTools reads the catalog's parameters;
// they must name the same tools as the schemas' properties do.
func TestCallbackToolsFromParamsMatchSchemas(t *testing.T) {
	cat := schemas.Load()
	got := callbackTools(cat)
	want := map[string]bool{"eq_order_instance": true, "eq_create_pxe": true}
	for _, a := range cat.Actions {
		if schemaHasCallback(a.InputSchema) {
			want[a.Tool] = true
		}
	}
	if len(want) < 3 {
		t.Fatalf("the catalog has only %d tools with %s: %v", len(want), webhook.CallbackParam, want)
	}
	for tool := range want {
		if !got[tool] {
			t.Errorf("%s has %s in its schema but not in callbackTools", tool, webhook.CallbackParam)
		}
	}
	for tool := range got {
		if !want[tool] {
			t.Errorf("%s is in callbackTools but its schema has no %s", tool, webhook.CallbackParam)
		}
	}
}
