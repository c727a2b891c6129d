package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/schemas"
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
			hits = append(hits, searchHit{Tool: a.Tool, Toolset: a.Toolset, Class: string(a.Class), Loaded: s.exposes(sel, a), Description: a.Description, score: score})
		}
	}
	for _, ts := range s.opts.ExtraToolsets {
		for _, t := range ts.Tools {
			if sel.ReadOnly && !isReadOnlyTool(t.Tool) {
				continue
			}
			hay := strings.ToLower(t.Tool.Name + " " + ts.Name + " " + ts.Description + " " + t.Tool.Description)
			score := 0
			for _, w := range words {
				if strings.Contains(strings.ToLower(t.Tool.Name), w) {
					score += 3
				} else if strings.Contains(hay, w) {
					score++
				}
			}
			if score > 0 {
				hits = append(hits, searchHit{Tool: t.Tool.Name, Toolset: ts.Name, Class: classOfTool(t.Tool), Loaded: s.mcp.GetTool(t.Tool.Name) != nil, Description: t.Tool.Description, score: score})
			}
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
		fmt.Fprintf(&text, "No tool matches %q. Toolsets: %s.", query, strings.Join(append(s.opts.Catalog.Toolsets(), s.extraToolsetNames()...), ", "))
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

func classOfTool(t mcp.Tool) string {
	switch {
	case isReadOnlyTool(t):
		return string(schemas.Read)
	case t.Annotations.DestructiveHint != nil && *t.Annotations.DestructiveHint:
		return string(schemas.Destructive)
	}
	return string(schemas.Write)
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

// ExtraToolset is a named group of tools outside the catalog, such as the workflows.
type ExtraToolset struct {
	Name        string
	Description string
	Tools       []server.ServerTool
	// With names catalog toolsets that also load this one (reinstall loads workflows).
	With []string
}

func (s *Server) extraToolsetNames() []string {
	var out []string
	for _, ts := range s.opts.ExtraToolsets {
		out = append(out, ts.Name)
	}
	return out
}

func (ts ExtraToolset) enabledBy(sel Selection) bool {
	if sel.toolsetEnabled(ts.Name, "") {
		return true
	}
	for _, w := range ts.With {
		if sel.toolsetEnabled(w, "") {
			return true
		}
	}
	return false
}

// selectedExtraToolsets returns the tools of the extra toolsets the selection enables
// (and prev, when given, did not), minus excluded ones and, in read-only mode, writers.
func (s *Server) selectedExtraToolsets(prev *Selection) []server.ServerTool {
	sel := s.Selection()
	var out []server.ServerTool
	for _, ts := range s.opts.ExtraToolsets {
		if !ts.enabledBy(sel) || (prev != nil && ts.enabledBy(*prev)) {
			continue
		}
		for _, t := range ts.Tools {
			if !s.excluded(t.Tool.Name) && (!sel.ReadOnly || isReadOnlyTool(t.Tool)) {
				out = append(out, t)
			}
		}
	}
	return out
}

// CallbackCheckTool follows the key an async action returns; it is loaded whenever such an
// action is, so results and instructions never point at a tool the client lacks.
const CallbackCheckTool = "eq_callback_check"

// exposes is sel.Allows plus the companion rule for CallbackCheckTool.
func (s *Server) exposes(sel Selection, a *schemas.Action) bool {
	if sel.Allows(a) {
		return true
	}
	if a.Tool != CallbackCheckTool || (sel.ReadOnly && a.Class != schemas.Read) {
		return false
	}
	for _, n := range sel.Exclude {
		if n == a.Tool {
			return false
		}
	}
	for _, other := range s.opts.Catalog.Actions {
		if other.Async && sel.Allows(other) {
			return true
		}
	}
	return false
}

// redirectUnknownTool is an OnBeforeCallTool hook. A call naming a tool this server does
// not offer (or one the token's permissions hide) still gets the protocol's "not found"
// error (-32602), but mcp-go builds its message from the requested name, so the name is
// extended with the reason: "did you mean", or the toolset and flag that load the tool.
// It knows the tools added with AddTool (GetTool); tools added only with AddTaskTool or
// AddSessionTool would look unknown to it, and this project adds none.
func (s *Server) redirectUnknownTool(ctx context.Context, _ any, req *mcp.CallToolRequest) {
	name := req.Params.Name
	if t := s.mcp.GetTool(name); t != nil && len(s.permissionFilter(ctx, []mcp.Tool{t.Tool})) == 1 {
		return
	}
	req.Params.Name = fmt.Sprintf("%s' is not available. %s Nothing was sent. Tool '%s", name, s.UnknownToolHint(name), name)
}

// UnknownToolHint explains why name is not a tool of this server and what loads it, or
// suggests the nearest names.
func (s *Server) UnknownToolHint(name string) string {
	sel := s.Selection()
	loadedBy := func(toolset string) string {
		flagText := fmt.Sprintf("start hostkey-mcp with --toolsets %s", strings.Join(append(append([]string(nil), sel.Toolsets...), toolset), ","))
		if s.opts.Dynamic {
			return fmt.Sprintf("It is in the %s toolset, which is not loaded: call toolsets_enable with [%q] (or %s).", toolset, toolset, flagText)
		}
		return fmt.Sprintf("It is in the %s toolset, which is not loaded: %s (or add it alone with --tools %s).", toolset, flagText, name)
	}
	for _, n := range sel.Exclude {
		if n == name {
			return "It is excluded by --exclude-tools."
		}
	}
	if a, ok := s.opts.Catalog.Tool(name); ok {
		switch {
		case sel.ReadOnly && a.Class != schemas.Read:
			return "Read-only mode (--read-only) hides tools that change anything."
		case !s.Permitted(a.Module, a.Action):
			return fmt.Sprintf("The API key's role may not call %s/%s.", a.Module, a.Action)
		case s.mcp.GetTool(name) == nil:
			return loadedBy(a.Toolset)
		}
	}
	for _, ts := range s.opts.ExtraToolsets {
		for _, t := range ts.Tools {
			if t.Tool.Name == name {
				if sel.ReadOnly && !isReadOnlyTool(t.Tool) {
					return "Read-only mode (--read-only) hides tools that change anything."
				}
				return loadedBy(ts.Name)
			}
		}
	}
	if name == GenericToolName {
		return "The generic tool is exposed with --toolsets all or --tools " + GenericToolName + " (never in read-only mode)."
	}
	if name == SearchToolName || name == EnableToolName {
		return "Start hostkey-mcp with --dynamic-toolsets to get it."
	}
	if near := Suggest(name, s.knownToolNames()); len(near) > 0 {
		return "Did you mean " + strings.Join(near, " or ") + "?"
	}
	if s.opts.Dynamic {
		return "tools_search finds tools by keywords."
	}
	return "`hostkey-mcp tools --toolsets all` lists every tool."
}

// knownToolNames are every tool name this server could offer.
func (s *Server) knownToolNames() []string {
	var out []string
	for _, a := range s.opts.Catalog.Actions {
		out = append(out, a.Tool)
	}
	for _, ts := range s.opts.ExtraToolsets {
		for _, t := range ts.Tools {
			out = append(out, t.Tool.Name)
		}
	}
	for name := range s.mcp.ListTools() {
		out = append(out, name)
	}
	return out
}

// Suggest returns up to three names close to name: edit distance within a third of its
// length, or containing it (or contained in it) as a whole.
func Suggest(name string, candidates []string) []string {
	type scored struct {
		name string
		d    int
	}
	var hits []scored
	seen := map[string]bool{}
	lname := strings.ToLower(name)
	limit := max(2, len(name)/3)
	for _, c := range candidates {
		if seen[c] || c == name {
			continue
		}
		seen[c] = true
		d := editDistance(lname, strings.ToLower(c))
		if d > limit && len(lname) >= 4 && (strings.Contains(c, lname) || strings.Contains(lname, c)) {
			d = limit
		}
		if d <= limit {
			hits = append(hits, scored{c, d})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].d != hits[j].d {
			return hits[i].d < hits[j].d
		}
		return hits[i].name < hits[j].name
	})
	var out []string
	for i := 0; i < len(hits) && i < 3; i++ {
		out = append(out, hits[i].name)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
