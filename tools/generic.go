package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// GenericToolName is the tool that reaches actions the docs do not describe.
const GenericToolName = "invapi_call"

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var genericSchema = json.RawMessage(`{"type":"object","additionalProperties":false,"required":["module","action"],"properties":{` +
	`"module":{"type":"string","pattern":"^[a-z][a-z0-9_]*$","description":"invapi module, e.g. foreman, datacenter"},` +
	`"action":{"type":"string","pattern":"^[a-z][a-z0-9_]*$","description":"action name within the module"},` +
	`"params":{"type":"object","description":"parameters; nested objects/arrays become PHP-style names"}}}`)

// GenericTool builds invapi_call for the ~70 actions that auth/login's permission list
// names but the docs do not describe. The policy treats it as destructive unless the
// catalog classifies the action; documented actions must use their own tools. It never
// sends the PIN: nobody knows which undocumented action wants it.
func GenericTool(cat *schemas.Catalog, c Caller) server.ServerTool {
	tool := mcp.Tool{
		Name:           GenericToolName,
		Title:          "invapi: undocumented action",
		Description:    "Call an invapi action that has no dedicated tool (e.g. foreman/*, datacenter/*). Treated as destructive unless classified: a human confirms it.",
		RawInputSchema: genericSchema,
		Annotations:    annotations(schemas.Destructive, false),
	}
	return server.ServerTool{Tool: tool, Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, a, err := GenericRequest(cat, req.GetArguments())
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		resp, err := c.Do(ctx, r)
		if err != nil {
			return ErrorResult(a, nil, err), nil
		}
		return Result(r.Module, r.Action, resp), nil
	}}
}

// GenericRequest validates invapi_call arguments and builds the request. The returned
// Action describes the call for the policy (class from the undocumented list).
func GenericRequest(cat *schemas.Catalog, args map[string]any) (*invapi.Request, *schemas.Action, error) {
	module, _ := args["module"].(string)
	action, _ := args["action"].(string)
	if !namePattern.MatchString(module) || !namePattern.MatchString(action) {
		return nil, nil, fmt.Errorf("invapi_call: module and action must be lowercase names like \"tag\" and \"list\"")
	}
	if a, ok := cat.Lookup(module, action); ok {
		return nil, nil, fmt.Errorf("invapi_call: %s/%s is documented: call the %s tool instead", module, action, a.Tool)
	}
	params := map[string]any{}
	if p, ok := args["params"].(map[string]any); ok {
		params = cleanArgs(p)
	}
	for _, k := range []string{"token", "action", "pin"} {
		if _, ok := params[k]; ok {
			return nil, nil, fmt.Errorf("invapi_call: params.%s is supplied by hostkey-mcp; remove it", k)
		}
	}
	if k := pinLikeKey(params); k != "" {
		return nil, nil, fmt.Errorf("invapi_call: params %q looks like a PIN; the model never sends one (hostkey-mcp supplies the PIN after a human confirms); remove it", k)
	}
	// Refuse names PHP would rewrite now, before a human is asked to confirm the call
	// (the client would refuse them anyway).
	if err := invapi.CheckParams(&invapi.Request{Module: module, Action: action, Params: params}); err != nil {
		return nil, nil, fmt.Errorf("invapi_call: %w; nothing was sent", err)
	}
	cls := cat.UndocumentedClass(module, action)
	a := &schemas.Action{
		Tool: GenericToolName, Module: module, Action: action, Endpoint: module + ".php",
		Methods: []string{"POST"}, Class: cls, Toolset: "undocumented",
	}
	return &invapi.Request{Module: module, Action: action, Endpoint: a.Endpoint, Method: "POST", Params: params, ReadOnly: cls == schemas.Read}, a, nil
}
