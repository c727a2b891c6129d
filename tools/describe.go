package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// Describer tells the policy what a tools/call would do, using the same functions the
// handlers use to build the upstream request (so confirmations and dry runs show exactly
// what is sent). Tools outside the catalog (discovery, events) are not governed here: the
// policy's Guard still refuses any write they would attempt.
func Describer(cat *schemas.Catalog) policy.Describer {
	return func(_ context.Context, req mcp.CallToolRequest) (*policy.Call, error) {
		args := req.GetArguments()
		if req.Params.Name == GenericToolName {
			r, a, err := GenericRequest(cat, args)
			if err != nil {
				return nil, err
			}
			return &policy.Call{Tool: GenericToolName, Module: a.Module, Action: a.Action, Class: a.Class, Args: args, Request: r}, nil
		}
		a, ok := cat.Tool(req.Params.Name)
		if !ok {
			return nil, nil
		}
		if p := a.UnreadableServerID(args); p != "" {
			return nil, fmt.Errorf("%s: %q must be a server ID (a whole number of at most 19 digits); nothing was sent", a.Tool, p)
		}
		return &policy.Call{
			Tool: a.Tool, Module: a.Module, Action: a.Action, Class: a.Class, NeedsPIN: a.PIN,
			ServerIDs: a.ServerIDs(args), Args: args, Request: Request(a, args),
		}, nil
	}
}
