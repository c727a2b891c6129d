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
