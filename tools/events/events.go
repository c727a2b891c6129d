// Package events is the MCP side of the webhook receiver: the events_list tool, the
// hostkey://events resources, the notifier that turns stored events into MCP
// notifications, the tool middleware that adds post_install_callback to install calls,
// and pointing API keys' login alerts at the receiver. The receiver (package webhook) is
// HTTP ingress only and does not import mcp-go; this package holds what speaks MCP. It
// may import tools' dependencies (policy, webhook, invapi, schemas) and mcp-go, never tools
// or cmd.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// MCP names.
const (
	ToolName            = "events_list"
	URI                 = "hostkey://events"
	uriTemplate         = "hostkey://events{?cursor,kind,limit}"
	defaultListLimit    = 50
	maxListLimit        = 500
	resourceRecentLimit = 100
	logLoggerName       = "hostkey-mcp/webhook"
)

var eventsSchema = json.RawMessage(`{"type":"object","additionalProperties":false,"properties":{` +
	`"since":{"type":"integer","minimum":0,"description":"Return events after this cursor. Pass the next_cursor of your previous call (0 = from the beginning). A client that reconnects passes the last cursor it saw and gets exactly what it missed."},` +
	`"limit":{"type":"integer","minimum":1,"maximum":500,"description":"At most this many events (default 50)."},` +
	`"kind":{"type":"string","enum":["install_done","login_alert","workflow"],"description":"Only events of this kind."},` +
	`"server_id":{"type":"integer","minimum":1,"description":"Only events about this server."}}}`)

// Reader is what the tool and the resources read: the receiver's event log by cursor.
type Reader interface {
	Since(ctx context.Context, after uint64, limit int, f store.Filter) (store.Page, error)
	LastCursor(ctx context.Context) (uint64, error)
}

// Tool is events_list: the events recorded since a cursor (install callbacks, login
// alerts, workflow steps). Read-only.
func Tool(r Reader) server.ServerTool {
	tool := mcp.Tool{
		Name:  ToolName,
		Title: "Webhook events since a cursor",
		Description: "List events hostkey-mcp received: install_done (a reinstall/order finished and the server called back), " +
			"login_alert (an API key was used to log in) and workflow. Pass since=<next_cursor> from your previous call to get only newer events; " +
			"after reconnecting, pass the last cursor you saw to catch up on what you missed.",
		RawInputSchema: eventsSchema,
		Annotations: mcp.ToolAnnotation{
			Title:           "Webhook events",
			ReadOnlyHint:    mcp.ToBoolPtr(true),
			DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint:  mcp.ToBoolPtr(true),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		},
	}
	return server.ServerTool{Tool: tool, Handler: events{r}.handleEventsList}
}

type events struct{ r Reader }

func (e events) handleEventsList(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	var since uint64
	if v, ok := args["since"]; ok && v != nil {
		n, ok := schemas.ToInt64(v)
		if !ok || n < 0 {
			return mcp.NewToolResultError("events_list: since must be a non-negative integer cursor"), nil
		}
		since = uint64(n)
	}
	limit := defaultListLimit
	if v, ok := args["limit"]; ok && v != nil {
		n, ok := schemas.ToInt64(v)
		if !ok || n < 1 || n > maxListLimit {
			return mcp.NewToolResultError("events_list: limit must be between 1 and 500"), nil
		}
		limit = int(n)
	}
	var f store.Filter
	if k, _ := args["kind"].(string); k != "" {
		if !store.ValidKind(k) {
			return mcp.NewToolResultError("events_list: kind must be install_done, login_alert or workflow"), nil
		}
		f.Kinds = []string{k}
	}
	if v, ok := args["server_id"]; ok && v != nil {
		n, ok := schemas.ToInt64(v)
		if !ok || n <= 0 {
			return mcp.NewToolResultError("events_list: server_id must be a positive integer"), nil
		}
		f.ServerID = n
	}
	page, err := e.r.Since(ctx, since, limit, f)
	if err != nil {
		return mcp.NewToolResultError("events_list: the event store is unavailable: " + err.Error()), nil
	}
	out := pageJSON(page)
	var text strings.Builder
	if page.PrunedThrough > 0 {
		fmt.Fprintf(&text, "Events %d–%d are older than the retention (--events-retention) and were removed.\n", since+1, page.PrunedThrough)
	}
	if len(page.Events) == 0 {
		fmt.Fprintf(&text, "No events after cursor %d.", since)
	} else {
		fmt.Fprintf(&text, "%d event(s) after cursor %d:\n", len(page.Events), since)
		for _, ev := range page.Events {
			fmt.Fprintf(&text, "- #%d %s %s\n", ev.Cursor, ev.Time.UTC().Format(time.RFC3339), webhook.Summarize(ev))
		}
	}
	if page.More {
		fmt.Fprintf(&text, "\nMore events follow: call events_list with since=%d.", page.Next)
	} else {
		fmt.Fprintf(&text, "\nNext time pass since=%d to get only newer events.", page.Next)
	}
	return mcp.NewToolResultStructured(out, text.String()), nil
}

// pageJSON is the JSON shape of a page for the tool and the resource.
func pageJSON(p store.Page) map[string]any {
	evs := p.Events
	if evs == nil {
		evs = []store.Event{}
	}
	out := map[string]any{"events": evs, "next_cursor": p.Next, "more": p.More}
	if p.PrunedThrough > 0 {
		out["pruned_through"] = p.PrunedThrough
	}
	return out
}

// Resource is hostkey://events: the most recent events as JSON, with next_cursor.
// Register it with ResourceTemplate, which serves hostkey://events?cursor=N
// (events after N; also kind= and limit=). Clients that subscribe to hostkey://events get
// notifications/resources/updated whenever an event is recorded.
func Resource(r Reader) (mcp.Resource, server.ResourceHandlerFunc) {
	res := mcp.NewResource(URI, "events",
		mcp.WithResourceDescription("Webhook events (install_done, login_alert, workflow), newest "+strconv.Itoa(resourceRecentLimit)+
			"; read hostkey://events?cursor=N for the events after cursor N (pass the next_cursor you last saw after reconnecting)."),
		mcp.WithMIMEType("application/json"))
	return res, events{r}.readEvents
}

// ResourceTemplate serves hostkey://events?cursor=N&kind=K&limit=L.
func ResourceTemplate(r Reader) (mcp.ResourceTemplate, server.ResourceTemplateHandlerFunc) {
	t := mcp.NewResourceTemplate(uriTemplate, "events-since",
		mcp.WithTemplateDescription("Webhook events after a cursor: hostkey://events?cursor=N (optional kind=install_done|login_alert|workflow, limit=1..500)."),
		mcp.WithTemplateMIMEType("application/json"))
	return t, events{r}.readEvents
}

func (e events) readEvents(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "hostkey" || u.Host != "events" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("resource %q: want hostkey://events or hostkey://events?cursor=N", uri)
	}
	q := u.Query()
	limit := resourceRecentLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, fmt.Errorf("resource %q: limit must be 1..500", uri)
		}
		limit = n
	}
	var f store.Filter
	if k := q.Get("kind"); k != "" {
		if !store.ValidKind(k) {
			return nil, fmt.Errorf("resource %q: kind must be install_done, login_alert or workflow", uri)
		}
		f.Kinds = []string{k}
	}
	var since uint64
	if s := q.Get("cursor"); s != "" {
		since, err = strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("resource %q: cursor must be a non-negative integer", uri)
		}
	} else {
		last, err := e.r.LastCursor(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", URI, err)
		}
		if last > uint64(limit) {
			since = last - uint64(limit)
		}
	}
	page, err := e.r.Since(ctx, since, limit, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	out := pageJSON(page)
	out["next_uri"] = URI + "?cursor=" + strconv.FormatUint(page.Next, 10)
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

// ResourceSubscriptions is the part of tools.Subscriptions the notifier uses.
type ResourceSubscriptions interface {
	NotifyUpdated(s *server.MCPServer, uri string) int
}

// Notifier delivers events to MCP sessions:
//   - notifications/message to every connected session (warning for login alerts,
//     notice for installs, info for workflow events), honouring each session's
//     logging/setLevel (mcp-go's default level is error, so a client sees them after
//     setting info/notice/warning);
//   - notifications/resources/updated for hostkey://servers/{id} and hostkey://events to
//     their subscribers;
//   - notifications/progress on the originating tool call while it is still open.
//
// Register its hooks with Attach on the same *server.Hooks the MCP server uses.
type Notifier struct {
	srv       *server.MCPServer
	subs      ResourceSubscriptions
	serverURI func(int64) string

	mu       sync.Mutex
	sessions map[string]time.Time // session → when it registered
	progress map[string]float64   // session + token → last progress value sent
}

// NewNotifier builds a notifier. subs may be nil (no resources/updated); serverURI
// maps a server ID to its resource URI (tools.ServerURI).
func NewNotifier(srv *server.MCPServer, subs ResourceSubscriptions, serverURI func(int64) string) *Notifier {
	return &Notifier{srv: srv, subs: subs, serverURI: serverURI, sessions: map[string]time.Time{}, progress: map[string]float64{}}
}

// Attach tracks sessions through the server's hooks. Call it before serving.
func (n *Notifier) Attach(h *server.Hooks) {
	h.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		n.mu.Lock()
		n.sessions[s.SessionID()] = time.Now()
		n.mu.Unlock()
		// Until the client sets a level, the spec lets the server choose: send notices
		// and above (install done, login alerts), not mcp-go's default of errors only.
		if l, ok := s.(server.SessionWithLogging); ok {
			l.SetLogLevel(mcp.LoggingLevelNotice)
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		n.mu.Lock()
		delete(n.sessions, s.SessionID())
		for k := range n.progress {
			if strings.HasPrefix(k, s.SessionID()+"\x00") {
				delete(n.progress, k)
			}
		}
		n.mu.Unlock()
	})
}

func levelFor(kind string) mcp.LoggingLevel {
	switch kind {
	case store.KindLoginAlert:
		return mcp.LoggingLevelWarning
	case store.KindInstallDone:
		return mcp.LoggingLevelNotice
	}
	return mcp.LoggingLevelInfo
}

// Notify implements webhook.Notifier.
func (n *Notifier) Notify(ctx context.Context, ev webhook.Event) {
	msg := webhook.Summarize(ev)
	data := map[string]any{
		"message": msg,
		"event": map[string]any{"id": ev.ID, "cursor": ev.Cursor, "kind": ev.Kind, "server_id": ev.ServerID,
			"job_id": ev.JobID, "action": ev.Action, "time": ev.Time.UTC().Format(time.RFC3339)},
		"read_more": fmt.Sprintf("events_list since=%d", ev.Cursor-1),
	}
	note := mcp.NewLoggingMessageNotification(levelFor(ev.Kind), logLoggerName, data)
	accepted, stamped := webhook.AcceptedFromContext(ctx)
	n.mu.Lock()
	ids := make([]string, 0, len(n.sessions))
	for id, since := range n.sessions {
		// A session that connected after the event was stored finds it in events_list;
		// a live notification about the past would read as news.
		if stamped && since.After(accepted) {
			continue
		}
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		_ = n.srv.SendLogMessageToSpecificClient(id, note)
	}
	if n.subs != nil {
		if ev.ServerID != 0 && n.serverURI != nil {
			n.subs.NotifyUpdated(n.srv, n.serverURI(ev.ServerID))
		}
		n.subs.NotifyUpdated(n.srv, URI)
	}
	if o, ok := webhook.OriginFromContext(ctx); ok && o.Session != "" && o.ProgressToken != nil {
		key := o.Session + "\x00" + fmt.Sprint(o.ProgressToken)
		n.mu.Lock()
		p := n.progress[key] + 1
		n.progress[key] = p
		n.mu.Unlock()
		_ = n.srv.SendNotificationToSpecificClient(o.Session, string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": o.ProgressToken, "progress": p, "message": msg,
		})
	}
}
