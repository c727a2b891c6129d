package tools

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// locations are the vendor's two-letter locations (FAQ), offered while a person types a
// prompt argument.
var locations = []string{"NL", "US", "FI", "DE", "IS", "TR", "UK", "ES", "IT", "PL", "CH"}

// completer offers values for prompt arguments (location, server_id) and for the {id} of
// hostkey://servers/{id}: the servers of the token.
type completer struct{ s *Server }

func (c completer) CompletePromptArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	switch arg.Name {
	case "location":
		return complete(locations, arg.Value), nil
	case "server_id", "id":
		return complete(c.serverIDs(ctx), arg.Value), nil
	}
	return &mcp.Completion{Values: []string{}}, nil
}

func (c completer) CompleteResourceArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if arg.Name == "id" {
		return complete(c.serverIDs(ctx), arg.Value), nil
	}
	return &mcp.Completion{Values: []string{}}, nil
}

// serverIDs offers the token's servers that the allowlist lets the assistant touch. The
// lookup (the session, and the tags of --server-tags) reaches invapi, so it passes the
// policy like a tool call: limited and audited.
func (c completer) serverIDs(ctx context.Context) []string {
	if c.s.opts.Sessions == nil {
		return nil
	}
	if g := c.s.opts.Gate; g != nil {
		call := &policy.Call{Tool: "completion/complete", Module: "auth", Action: "info", Class: schemas.Read, Args: map[string]any{}}
		actx, refusal, err := g.Authorize(ctx, call, "")
		if err != nil || refusal != nil {
			return nil
		}
		var ids []string
		ids, err = c.allowedIDs(actx)
		g.Done(actx, call, err, time.Time{})
		return ids
	}
	ids, _ := c.allowedIDs(ctx)
	return ids
}

func (c completer) allowedIDs(ctx context.Context) ([]string, error) {
	sess, err := c.s.opts.Sessions.Session(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(sess.Servers))
	for _, id := range sess.Servers {
		if c.s.opts.ServerAllowed != nil && c.s.opts.ServerAllowed(ctx, id) != nil {
			continue
		}
		out = append(out, strconv.FormatInt(id, 10))
	}
	sort.Strings(out)
	return out, nil
}

// complete returns the values starting with prefix (case-insensitive), at most 100 as
// the spec allows.
func complete(all []string, prefix string) *mcp.Completion {
	vals := []string{}
	for _, v := range all {
		if strings.HasPrefix(strings.ToLower(v), strings.ToLower(prefix)) {
			vals = append(vals, v)
		}
	}
	total := len(vals)
	more := false
	if len(vals) > 100 {
		vals, more = vals[:100], true
	}
	return &mcp.Completion{Values: vals, Total: total, HasMore: more}
}
