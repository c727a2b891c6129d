package workflows

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// TestToolSchemasCompile: the validators compile at first use, so a schema that does not
// compile must fail here rather than at a user's first call.
func TestToolSchemasCompile(t *testing.T) {
	w := &Workflows{o: Options{Catalog: schemas.Load()}}
	tools := w.Tools()
	if len(tools) == 0 {
		t.Fatal("no workflow tools")
	}
	for _, st := range tools {
		err := compileSchema(st.Tool.RawInputSchema)(map[string]any{})
		if err != nil && strings.Contains(err.Error(), "does not compile") {
			t.Errorf("%s: %v", st.Tool.Name, err)
		}
	}
	bad := compileSchema([]byte(`{"type": 7}`))(map[string]any{})
	if bad == nil || !strings.Contains(bad.Error(), "does not compile") {
		t.Errorf("a broken schema: %v, want a compile error", bad)
	}
}
