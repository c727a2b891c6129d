package events

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// prunedLog is an event log whose first two events were removed by the retention.
type prunedLog struct{}

func (prunedLog) Since(_ context.Context, after uint64, _ int, _ store.Filter) (store.Page, error) {
	if after < 2 {
		return store.Page{Next: 2, PrunedThrough: 2}, nil
	}
	return store.Page{Next: after}, nil
}

func (prunedLog) LastCursor(context.Context) (uint64, error) { return 2, nil }

// TestEventsListAfterPruning: the model is told that what it asks for is gone, and where
// to go on from.
func TestEventsListAfterPruning(t *testing.T) {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = ToolName, map[string]any{"since": 0}
	res, err := Tool(prunedLog{}).Handler(context.Background(), req)
	if err != nil || res.IsError || !strings.Contains(resultText(res), "Events 1–2 are older than the retention") ||
		!strings.Contains(resultText(res), "since=2") {
		t.Fatalf("events_list after pruning: %v %s", err, resultText(res))
	}
}
