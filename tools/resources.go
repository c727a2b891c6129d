package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// Resource URIs. Later notifications (webhooks, workflows) send
// notifications/resources/updated for ServerURI(id).
const (
	ServersURI      = "hostkey://servers"
	serverURIPrefix = "hostkey://servers/"
)

// Gate is the policy for invapi requests that do not come from tools/call: resources and
// completions. They get the scope (read-only, server allowlist), the rate limits (global
// and per session) and the audit line of a tool call; policy.Engine is one.
type Gate interface {
	Authorize(ctx context.Context, call *policy.Call, summary string) (context.Context, *mcp.CallToolResult, error)
	Done(ctx context.Context, call *policy.Call, err error, start time.Time)
}

// ServerURI is the resource of one server.
func ServerURI(id int64) string { return serverURIPrefix + strconv.FormatInt(id, 10) }

func (s *Server) addResources() {
	s.mcp.AddResource(mcp.NewResource(ServersURI, "servers",
		mcp.WithResourceDescription("The servers this token can manage (eq/list), as JSON."),
		mcp.WithMIMEType("application/json")), s.readServers)
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(serverURIPrefix+"{id}", "server",
		mcp.WithTemplateDescription("One server in detail (eq/show): hardware, IPs, IPMI, status."),
		mcp.WithTemplateMIMEType("application/json")), s.readServer)
}

// serverNotFound is an OnBeforeReadResource hook: a server the token's session does not
// list gets the protocol's resource-not-found error (-32002) instead of an internal error
// from the handler (mcp-go turns every handler error into -32603). It rewrites the URI
// to one no template matches, which keeps the asked-for ID readable in the message.
func (s *Server) serverNotFound(ctx context.Context, _ any, req *mcp.ReadResourceRequest) {
	idText, ok := strings.CutPrefix(req.Params.URI, serverURIPrefix)
	if !ok || s.opts.Sessions == nil {
		return
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return
	}
	sess, err := s.opts.Sessions.Session(ctx)
	if err != nil || len(sess.Servers) == 0 {
		return // unknown: let the handler ask invapi
	}
	for _, have := range sess.Servers {
		if have == id {
			return
		}
	}
	req.Params.URI = req.Params.URI + "/(no such server for this API key: hostkey://servers lists them)"
}

func (s *Server) readServers(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	resp, err := s.gatedRead(ctx, "resources/read", req.Params.URI, nil,
		&invapi.Request{Module: "eq", Action: "list", ReadOnly: true, Params: map[string]any{}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ServersURI, err)
	}
	return jsonContents(req.Params.URI, resp.Body), nil
}

func (s *Server) readServer(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	idText := strings.TrimPrefix(req.Params.URI, serverURIPrefix)
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("resource %q: want hostkey://servers/<numeric server id>", req.Params.URI)
	}
	resp, err := s.gatedRead(ctx, "resources/read", req.Params.URI, []int64{id},
		&invapi.Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{"id": id}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.Params.URI, err)
	}
	return jsonContents(req.Params.URI, resp.Body), nil
}

// gatedRead sends one read through the policy, as a tool call would be: refused outside
// the scope, limited, audited. what names the MCP method in the audit line.
func (s *Server) gatedRead(ctx context.Context, what, uri string, servers []int64, r *invapi.Request) (*invapi.Response, error) {
	g := s.opts.Gate
	if g == nil {
		// No policy (tests, `tools --sizes`): the allowlist still holds.
		if s.opts.ServerAllowed != nil {
			for _, id := range servers {
				if err := s.opts.ServerAllowed(ctx, id); err != nil {
					return nil, err
				}
			}
		}
		return s.opts.Client.Do(ctx, r)
	}
	call := &policy.Call{
		Tool: what, Module: r.Module, Action: r.Action, Class: schemas.Read,
		ServerIDs: servers, Args: map[string]any{"uri": uri}, Request: r,
	}
	actx, refusal, err := g.Authorize(ctx, call, "")
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, errors.New(resultText(refusal))
	}
	resp, err := s.opts.Client.Do(actx, r)
	g.Done(actx, call, err, time.Time{})
	return resp, err
}

// resultText is the text of a policy refusal, for transports that carry only an error.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	if len(parts) == 0 {
		return "refused by hostkey-mcp's policy; nothing was sent"
	}
	return strings.Join(parts, " ")
}

func jsonContents(uri string, body json.RawMessage) []mcp.ResourceContents {
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(body)}}
}
