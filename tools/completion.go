package tools

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
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

func (c completer) serverIDs(ctx context.Context) []string {
	if c.s.opts.Sessions == nil {
		return nil
	}
	sess, err := c.s.opts.Sessions.Session(ctx)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(sess.Servers))
	for _, id := range sess.Servers {
		out = append(out, strconv.FormatInt(id, 10))
	}
	sort.Strings(out)
	return out
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
