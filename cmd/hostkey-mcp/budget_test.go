package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// The vendor's own MCP server (hostkey-cloud/mcp-server at cb3408e) lists 132 tools in
// 94,541 bytes of tools/list. Every toolset on, ours must list at least 30% more tools in
// fewer bytes: more tools must not cost the model more context.
const (
	vendorToolsListBytes = 94541
	minTools             = 172 // 132 * 1.3
)

// TestContextBudget lists every tool through the real mcp-go client (`tools --json
// --toolsets all`, in process) and measures the compact JSON a client receives; with
// --auth-tools (the session tools, hidden by default) too, since that lists the most.
func TestContextBudget(t *testing.T) {
	budget(t, []string{"tools", "--json", "--toolsets", "all"})
	budget(t, []string{"tools", "--json", "--toolsets", "all", "--auth-tools"})
}

func budget(t *testing.T, args []string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(t.Context(), args, nil, &out, &errb, env()); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	authTools := args[len(args)-1] == "--auth-tools"
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Name        string `json:"name"`
		InputSchema struct {
			Properties map[string]struct {
				Description string `json:"description"`
			} `json:"properties"`
			Required []string `json:"required"`
		} `json:"inputSchema"`
	}
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tools, tools/list %d bytes (vendor: 132 tools, %d bytes)", len(list), compact.Len(), vendorToolsListBytes)
	if len(list) < minTools {
		t.Errorf("%d tools with every toolset on; want at least %d", len(list), minTools)
	}
	if compact.Len() > vendorToolsListBytes {
		t.Errorf("tools/list is %d bytes with every toolset on; the budget is %d (shorten descriptions, hide staff fields)", compact.Len(), vendorToolsListBytes)
	}

	// A required field never tells the model it may leave it out (server_reinstall's id
	// once said "omit for a new order", copied from eq_order_instance).
	for _, tl := range list {
		for _, r := range tl.InputSchema.Required {
			if d := tl.InputSchema.Properties[r].Description; strings.Contains(strings.ToLower(d), "omit") {
				t.Errorf("%s: required %s says %q", tl.Name, r, d)
			}
		}
	}

	if !authTools {
		return
	}
	// None of the vendor's capabilities needs the generic tool: each maps to a listed tool
	// (the vendor's login/logout to the session tools, which --auth-tools lists).
	listed := map[string]bool{}
	for _, tl := range list {
		listed[tl.Name] = true
	}
	cat := schemas.Load()
	if len(cat.Vendor) != 132 {
		t.Errorf("the capability map has %d vendor tools, want 132", len(cat.Vendor))
	}
	for _, v := range cat.Vendor {
		if v.Vendor == "call_api_raw" {
			continue // the vendor's own raw call: ours is invapi_call
		}
		if v.Tool == "invapi_call" || !listed[v.Tool] {
			t.Errorf("vendor tool %s maps to %s, which tools/list does not offer", v.Vendor, v.Tool)
		}
	}
}
