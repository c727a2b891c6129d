package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The discovery tools let a model start with a small tools/list and load more on demand,
// the context saving users of big-API servers ask for most.
const (
	SearchToolName = "tools_search"
	EnableToolName = "toolsets_enable"
)

func (s *Server) discoveryTools() []server.ServerTool {
	local := func(ro bool) mcp.ToolAnnotation {
		return mcp.ToolAnnotation{
			ReadOnlyHint: mcp.ToBoolPtr(ro), DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint: mcp.ToBoolPtr(true), OpenWorldHint: mcp.ToBoolPtr(false),
		}
	}
	search := mcp.Tool{
		Name:        SearchToolName,
		Description: "Find hostkey tools (also ones not loaded yet) by keywords; returns names, toolsets and whether they are loaded.",
		RawInputSchema: json.RawMessage(`{"type":"object","additionalProperties":false,"required":["query"],"properties":{` +
			`"query":{"type":"string","minLength":1,"description":"keywords, e.g. 'ptr record' or 'backup restore'"},` +
			`"limit":{"type":"integer","minimum":1,"maximum":50,"description":"max results (default 10)"}}}`),
		Annotations: local(true),
	}
	enable := mcp.Tool{
		Name:        EnableToolName,
		Description: "Load the tools of one or more toolsets (names from tools_search); the tool list then changes.",
		RawInputSchema: json.RawMessage(`{"type":"object","additionalProperties":false,"required":["toolsets"],"properties":{` +
			`"toolsets":{"type":"array","minItems":1,"items":{"type":"string"},"description":"toolset or module names"}}}`),
		Annotations: local(false),
	}
	return []server.ServerTool{
		{Tool: search, Handler: s.handleSearch},
		{Tool: enable, Handler: s.handleEnable},
	}
}

type searchHit struct {
	Tool        string `json:"tool"`
	Toolset     string `json:"toolset"`
	Class       string `json:"class"`
	Loaded      bool   `json:"loaded"`
	Description string `json:"description"`
	score       int
}

func (s *Server) handleSearch(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	query := strings.ToLower(req.GetString("query", ""))
	limit := req.GetInt("limit", 10)
	words := strings.FieldsFunc(query, func(r rune) bool { return r == ' ' || r == '_' || r == '/' || r == ',' })
	sel := s.Selection()
	var hits []searchHit
	for _, a := range s.opts.Catalog.Actions {
		if (sel.ReadOnly && !a.ReadOnly()) || sel.Hidden(a) {
			continue
		}
		if !s.Permitted(a.Module, a.Action) {
			continue
		}
		hay := strings.ToLower(a.Tool + " " + a.Toolset + " " + a.Description)
		score := 0
		for _, w := range words {
			if strings.Contains(strings.ToLower(a.Tool), w) {
				score += 3
			} else if strings.Contains(hay, w) {
				score++
			}
		}
		if score > 0 {
			hits = append(hits, searchHit{Tool: a.Tool, Toolset: a.Toolset, Class: string(a.Class), Loaded: sel.Allows(a), Description: a.Description, score: score})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].Tool < hits[j].Tool
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	var text strings.Builder
	if len(hits) == 0 {
		fmt.Fprintf(&text, "No tool matches %q. Toolsets: %s.", query, strings.Join(s.opts.Catalog.Toolsets(), ", "))
	}
	for _, h := range hits {
		state := "loaded"
		if !h.Loaded {
			state = "not loaded: toolsets_enable " + h.Toolset
		}
		fmt.Fprintf(&text, "%s [%s, %s, %s] %s\n", h.Tool, h.Toolset, h.Class, state, h.Description)
	}
	return mcp.NewToolResultStructured(map[string]any{"results": hits}, strings.TrimSpace(text.String())), nil
}

func (s *Server) handleEnable(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	names := req.GetStringSlice("toolsets", nil)
	added, err := s.EnableToolsets(names...)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	text := fmt.Sprintf("Loaded %d tools: %s", len(added), strings.Join(added, ", "))
	if len(added) == 0 {
		text = "Those toolsets were already loaded (or read-only mode hides their tools)."
	}
	return mcp.NewToolResultStructured(map[string]any{"added": added}, text), nil
}
