package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// callbackTools are the tools whose schema has a post_install_callback property
// (eq_order_instance, eq_create_pxe, eq_reinstall, eq_deploy in the catalog).
func callbackTools(cat *schemas.Catalog) map[string]bool {
	out := map[string]bool{"eq_order_instance": true, "eq_create_pxe": true}
	for _, a := range cat.Actions {
		// The parameters, not the schema: decoding 177 schemas cost a start 2 ms.
		for _, p := range a.Params {
			if len(p.Path) > 0 && p.Path[0] == webhook.CallbackParam {
				out[a.Tool] = true
			}
		}
	}
	return out
}

func schemaHasCallback(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	_, ok := s.Properties[webhook.CallbackParam]
	return ok
}

// wantsCallback: a catalog tool with the property, or any registered tool whose schema has it.
func wantsCallback(ctx context.Context, cbTools map[string]bool, name string) bool {
	if cbTools[name] {
		return true
	}
	return schemaHasCallback(policy.ToolSchema(ctx, name))
}

// InjectCallback is a tool middleware. For eq_order_instance, eq_create_pxe and any tool
// whose schema has a post_install_callback property, when a public URL is configured and
// the arguments carry no callback, it creates a job (server from the `id` argument) and
// adds post_install_callback before calling next. Register it innermost (after the
// policy): the job is created only for a call that really goes upstream, and the secret
// URL is never shown in a confirmation. The secret is scrubbed from the result. cat nil
// is the embedded catalog.
func InjectCallback(r *webhook.Receiver, cat *schemas.Catalog, log *zap.Logger) server.ToolHandlerMiddleware {
	if cat == nil {
		cat = schemas.Load()
	}
	if log == nil {
		log = zap.NewNop()
	}
	cbTools := callbackTools(cat)
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return injectCallback(r, cbTools, log, next)
	}
}

func injectCallback(r *webhook.Receiver, cbTools map[string]bool, log *zap.Logger, next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if r.PublicURL() == "" || !wantsCallback(ctx, cbTools, req.Params.Name) {
			return next(ctx, req)
		}
		args := req.GetArguments()
		if v, ok := args[webhook.CallbackParam]; ok && v != nil && v != "" {
			return next(ctx, req) // the caller chose its own callback
		}
		serverID, _ := schemas.ToInt64(args["id"])
		session := ""
		if s := server.ClientSessionFromContext(ctx); s != nil {
			session = s.SessionID()
		}
		job, cbURL, err := r.NewJob(ctx, serverID, req.Params.Name, session, nil)
		if err != nil {
			log.Error("no install callback for this call", zap.String("tool", req.Params.Name), zap.Error(err))
			return next(ctx, req)
		}
		withCB := make(map[string]any, len(args)+1)
		for k, v := range args {
			withCB[k] = v
		}
		withCB[webhook.CallbackParam] = cbURL
		req.Params.Arguments = withCB
		req.Params.RawArguments = withRawParam(req.Params.RawArguments, webhook.CallbackParam, cbURL)

		o := webhook.Origin{Session: session}
		if req.Params.Meta != nil {
			o.ProgressToken = req.Params.Meta.ProgressToken
		}
		defer r.Track(job.ID, o)()

		res, err := next(ctx, req)
		secret := cbURL[strings.LastIndexByte(cbURL, '/')+1:]
		res = scrubResult(res, secret)
		if res != nil && !res.IsError {
			res.Content = append(res.Content, mcp.NewTextContent(fmt.Sprintf(
				"hostkey-mcp registered install callback job %s: when the install finishes, connected clients get a notification "+
					"and the event appears in events_list (kind install_done) and hostkey://events.", job.ID)))
		}
		return res, err
	}
}

// withRawParam sets key in the raw JSON arguments (kept by mcp-go for BindArguments and
// exact integers) without re-encoding the other values.
func withRawParam(raw json.RawMessage, key, value string) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	v, _ := json.Marshal(value)
	m[key] = v
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}

// scrubResult replaces the callback secret wherever the upstream answer echoed it.
func scrubResult(res *mcp.CallToolResult, secret string) *mcp.CallToolResult {
	if res == nil || secret == "" {
		return res
	}
	for i, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok && strings.Contains(t.Text, secret) {
			t.Text = strings.ReplaceAll(t.Text, secret, invapi.Redacted)
			res.Content[i] = t
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil && strings.Contains(string(b), secret) {
			var v any
			if json.Unmarshal([]byte(strings.ReplaceAll(string(b), secret, invapi.Redacted)), &v) == nil {
				res.StructuredContent = v
			}
		}
	}
	return res
}
