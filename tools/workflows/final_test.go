package workflows

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestFinalResultOneFullStop: an error that ends a sentence is not followed by a second
// full stop ("check eq_show id=40102.. Steps: …").
func TestFinalResultOneFullStop(t *testing.T) {
	res := finalResult(JobInfo{Tool: ReinstallTool, ServerID: 40102, State: Failed,
		Error: "the installer stopped: check eq_show id=40102."})
	text := res.Content[0].(mcp.TextContent).Text
	if strings.Contains(text, "..") || !strings.Contains(text, "id=40102. Steps:") {
		t.Fatalf("final text: %q", text)
	}
}
