package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// MCP names.
const (
	EventsToolName      = "events_list"
	EventsURI           = "hostkey://events"
	eventsURITemplate   = "hostkey://events{?cursor,kind,limit}"
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

// EventsTool is events_list: the events recorded since a cursor (install callbacks,
// login alerts, workflow steps). Read-only.
func (r *Receiver) EventsTool() server.ServerTool {
	tool := mcp.Tool{
		Name:  EventsToolName,
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
	return server.ServerTool{Tool: tool, Handler: r.handleEventsList}
}

func (r *Receiver) handleEventsList(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	var since uint64
	if v, ok := args["since"]; ok && v != nil {
		n, ok := toInt64(v)
		if !ok || n < 0 {
			return mcp.NewToolResultError("events_list: since must be a non-negative integer cursor"), nil
		}
		since = uint64(n)
	}
	limit := defaultListLimit
	if v, ok := args["limit"]; ok && v != nil {
		n, ok := toInt64(v)
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
		n, ok := toInt64(v)
		if !ok || n <= 0 {
			return mcp.NewToolResultError("events_list: server_id must be a positive integer"), nil
		}
		f.ServerID = n
	}
	page, err := r.store.Since(ctx, since, limit, f)
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
			fmt.Fprintf(&text, "- #%d %s %s\n", ev.Cursor, ev.Time.UTC().Format(time.RFC3339), Summarize(ev))
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

// EventsResource is hostkey://events: the most recent events as JSON, with next_cursor.
// Register it with EventsResourceTemplate, which serves hostkey://events?cursor=N
// (events after N; also kind= and limit=). Clients that subscribe to hostkey://events get
// notifications/resources/updated whenever an event is recorded.
func (r *Receiver) EventsResource() (mcp.Resource, server.ResourceHandlerFunc) {
	res := mcp.NewResource(EventsURI, "events",
		mcp.WithResourceDescription("Webhook events (install_done, login_alert, workflow), newest "+strconv.Itoa(resourceRecentLimit)+
			"; read hostkey://events?cursor=N for the events after cursor N (pass the next_cursor you last saw after reconnecting)."),
		mcp.WithMIMEType("application/json"))
	return res, r.readEvents
}

// EventsResourceTemplate serves hostkey://events?cursor=N&kind=K&limit=L.
func (r *Receiver) EventsResourceTemplate() (mcp.ResourceTemplate, server.ResourceTemplateHandlerFunc) {
	t := mcp.NewResourceTemplate(eventsURITemplate, "events-since",
		mcp.WithTemplateDescription("Webhook events after a cursor: hostkey://events?cursor=N (optional kind=install_done|login_alert|workflow, limit=1..500)."),
		mcp.WithTemplateMIMEType("application/json"))
	return t, r.readEvents
}

func (r *Receiver) readEvents(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
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
		last, err := r.store.LastCursor(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", EventsURI, err)
		}
		if last > uint64(limit) {
			since = last - uint64(limit)
		}
	}
	page, err := r.store.Since(ctx, since, limit, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	out := pageJSON(page)
	out["next_uri"] = EventsURI + "?cursor=" + strconv.FormatUint(page.Next, 10)
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

// Summarize is a one-line, secret-free description of an event.
func Summarize(ev Event) string {
	switch ev.Kind {
	case store.KindInstallDone:
		var b strings.Builder
		if ev.ServerID != 0 {
			fmt.Fprintf(&b, "Install finished on server %d", ev.ServerID)
		} else {
			b.WriteString("Install finished (new order)")
		}
		if ev.Action != "" {
			fmt.Fprintf(&b, " (%s)", ev.Action)
		}
		if d, ok := toInt64(ev.Data["duration_seconds"]); ok && d > 0 {
			fmt.Fprintf(&b, " after %s", (time.Duration(d) * time.Second).String())
		}
		if src, _ := ev.Data["source_ip"].(string); src != "" {
			fmt.Fprintf(&b, "; callback from %s", src)
			if v, ok := ev.Data["source_verified"].(bool); ok && !v {
				b.WriteString(" (source not verified)")
			}
		}
		fmt.Fprintf(&b, ". Job %s, event %s.", ev.JobID, ev.ID)
		return b.String()
	case store.KindLoginAlert:
		var parts []string
		for _, m := range []any{ev.Data["body"], ev.Data["query"]} {
			mm, _ := m.(map[string]any)
			keys := make([]string, 0, len(mm))
			for k := range mm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s := fmt.Sprint(mm[k]); len(s) <= 80 && len(parts) < 8 {
					parts = append(parts, k+"="+s)
				}
			}
		}
		s := "API key login alert"
		if len(parts) > 0 {
			s += ": " + strings.Join(parts, ", ")
		}
		if src, _ := ev.Data["source_ip"].(string); src != "" {
			s += " (delivered from " + src + ")"
		}
		return s + ". Event " + ev.ID + "."
	default:
		s := "Workflow event"
		if ev.Action != "" {
			s += " " + ev.Action
		}
		if ev.ServerID != 0 {
			s += fmt.Sprintf(" on server %d", ev.ServerID)
		}
		if m, _ := ev.Data["message"].(string); m != "" {
			s += ": " + m
		}
		return s + ". Event " + ev.ID + "."
	}
}

// ResourceSubscriptions is the part of tools.Subscriptions the notifier uses.
type ResourceSubscriptions interface {
	NotifyUpdated(s *server.MCPServer, uri string) int
}

// MCPNotifier delivers events to MCP sessions:
//   - notifications/message to every connected session (warning for login alerts,
//     notice for installs, info for workflow events), honouring each session's
//     logging/setLevel (mcp-go's default level is error, so a client sees them after
//     setting info/notice/warning);
//   - notifications/resources/updated for hostkey://servers/{id} and hostkey://events to
//     their subscribers;
//   - notifications/progress on the originating tool call while it is still open.
//
// Register its hooks with Attach on the same *server.Hooks the MCP server uses.
type MCPNotifier struct {
	srv       *server.MCPServer
	subs      ResourceSubscriptions
	serverURI func(int64) string

	mu       sync.Mutex
	sessions map[string]time.Time // session → when it registered
	progress map[string]float64   // session + token → last progress value sent
}

// NewMCPNotifier builds a notifier. subs may be nil (no resources/updated); serverURI
// maps a server ID to its resource URI (tools.ServerURI).
func NewMCPNotifier(srv *server.MCPServer, subs ResourceSubscriptions, serverURI func(int64) string) *MCPNotifier {
	return &MCPNotifier{srv: srv, subs: subs, serverURI: serverURI, sessions: map[string]time.Time{}, progress: map[string]float64{}}
}

// Attach tracks sessions through the server's hooks. Call it before serving.
func (n *MCPNotifier) Attach(h *server.Hooks) {
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

// Notify implements Notifier.
func (n *MCPNotifier) Notify(ctx context.Context, ev Event) {
	msg := Summarize(ev)
	data := map[string]any{
		"message": msg,
		"event": map[string]any{"id": ev.ID, "cursor": ev.Cursor, "kind": ev.Kind, "server_id": ev.ServerID,
			"job_id": ev.JobID, "action": ev.Action, "time": ev.Time.UTC().Format(time.RFC3339)},
		"read_more": fmt.Sprintf("events_list since=%d", ev.Cursor-1),
	}
	note := mcp.NewLoggingMessageNotification(levelFor(ev.Kind), logLoggerName, data)
	accepted, stamped := AcceptedFromContext(ctx)
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
		n.subs.NotifyUpdated(n.srv, EventsURI)
	}
	if o, ok := OriginFromContext(ctx); ok && o.Session != "" && o.ProgressToken != nil {
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
