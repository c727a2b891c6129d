package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// Resource URIs. Later notifications (webhooks, workflows) send
// notifications/resources/updated for ServerURI(id).
const (
	ServersURI      = "hostkey://servers"
	serverURIPrefix = "hostkey://servers/"
)

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
	resp, err := s.opts.Client.Do(ctx, &invapi.Request{Module: "eq", Action: "list", ReadOnly: true, Params: map[string]any{}})
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
	if s.opts.ServerAllowed != nil {
		if err := s.opts.ServerAllowed(ctx, id); err != nil {
			return nil, err
		}
	}
	resp, err := s.opts.Client.Do(ctx, &invapi.Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{"id": id}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.Params.URI, err)
	}
	return jsonContents(req.Params.URI, resp.Body), nil
}

func jsonContents(uri string, body json.RawMessage) []mcp.ResourceContents {
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(body)}}
}
