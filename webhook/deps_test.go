package webhook

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoMCPImport: webhook is HTTP ingress only. What speaks MCP (the events tool,
// resources, notifier, callback middleware) lives in tools/events; if mcp-go comes back
// into this package's dependencies, the layering has been broken.
func TestNoMCPImport(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/mark3labs/mcp-go") {
			t.Errorf("webhook depends on %s; keep MCP code in tools/events", p)
		}
	}
}
