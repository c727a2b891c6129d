package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// allowlisted reports whether the allowlist restricts servers at all.
func (e *Engine) allowlisted() bool { return len(e.servers) > 0 || len(e.tags) > 0 }

// ServerAllowed reports (nil) whether the server allowlist lets calls touch server id.
// Resources and workflows that read a server outside tool calls can use it too.
func (e *Engine) ServerAllowed(ctx context.Context, id int64) error {
	if !e.allowlisted() || e.servers[id] {
		return nil
	}
	if len(e.tags) > 0 {
		f, err := e.facts.get(ctx, id)
		if err != nil {
			return fmt.Errorf("server %d is not on the server allowlist and its tags could not be checked (%v), so it is refused", id, err)
		}
		for _, want := range e.tags {
			if hasTag(f.Tags, want) {
				return nil
			}
		}
		return fmt.Errorf("server %d is outside this assistant's scope: it is not on the server allowlist and carries none of the allowed tags %s", id, strings.Join(e.tags, ", "))
	}
	return fmt.Errorf("server %d is outside this assistant's scope (it is not on the server allowlist)", id)
}

// hasTag matches "name" against a tag "name" or "name=value", and "name=value" exactly.
func hasTag(tags []string, want string) bool {
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if strings.EqualFold(t, want) {
			return true
		}
		if name, _, ok := strings.Cut(t, "="); ok && !strings.Contains(want, "=") && strings.EqualFold(strings.TrimSpace(name), want) {
			return true
		}
	}
	return false
}

// checkScope refuses a call the configuration forbids, before anything is sent.
func (e *Engine) checkScope(ctx context.Context, call *Call, class schemas.Class) string {
	if e.o.ReadOnly && class != schemas.Read {
		return fmt.Sprintf("Refused: hostkey-mcp runs read-only and %s is a %s action. Nothing was sent.", call.Tool, class)
	}
	if e.allowlisted() && call.Request != nil && len(call.ServerIDs) == 0 {
		if _, known := e.cat.Lookup(call.Request.Module, call.Request.Action); !known {
			return fmt.Sprintf("Refused: a server allowlist is set and %s/%s is not a documented action, so hostkey-mcp cannot tell which servers it touches. Nothing was sent.", call.Request.Module, call.Request.Action)
		}
	}
	for _, id := range uniqueIDs(call.ServerIDs) {
		if err := e.ServerAllowed(ctx, id); err != nil {
			return "Refused: " + err.Error() + ". Nothing was sent."
		}
	}
	return ""
}
