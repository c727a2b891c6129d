package tools

import (
	"context"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Subscriptions remembers which session subscribed to which resource URI. mcp-go
// acknowledges resources/subscribe (protocol ≤ 2025-11-25) and subscriptions/listen
// (2026-07-28) but keeps no per-URI state for our sessions, so notifications/resources/updated
// would otherwise reach nobody or everybody.
type Subscriptions struct {
	mu   sync.Mutex
	bySe map[string]map[string]bool // session → URIs
}

// NewSubscriptions returns an empty tracker.
func NewSubscriptions() *Subscriptions {
	return &Subscriptions{bySe: map[string]map[string]bool{}}
}

// Attach registers the hooks that keep the tracker current.
func (t *Subscriptions) Attach(h *server.Hooks) {
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if id := SessionID(ctx); id != "" {
			t.mu.Lock()
			if t.bySe[id] == nil {
				t.bySe[id] = map[string]bool{}
			}
			t.bySe[id][req.Params.URI] = true
			t.mu.Unlock()
		}
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if id := SessionID(ctx); id != "" {
			t.mu.Lock()
			delete(t.bySe[id], req.Params.URI)
			t.mu.Unlock()
		}
	})
	// Protocol 2026-07-28: the URIs arrive in the filter of a subscriptions/listen request
	// that stays open while the client listens.
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		if id := SessionID(ctx); id != "" {
			t.mu.Lock()
			if t.bySe[id] == nil {
				t.bySe[id] = map[string]bool{}
			}
			for _, u := range req.Params.Notifications.ResourceSubscriptions {
				t.bySe[id][u] = true
			}
			t.mu.Unlock()
		}
	})
	h.AddAfterSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest, _ *mcp.SubscriptionsListenResult) {
		if id := SessionID(ctx); id != "" {
			t.mu.Lock()
			for _, u := range req.Params.Notifications.ResourceSubscriptions {
				delete(t.bySe[id], u)
			}
			t.mu.Unlock()
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		t.mu.Lock()
		delete(t.bySe, s.SessionID())
		t.mu.Unlock()
	})
}

// Subscribers returns the sessions subscribed to uri, or to a collection it belongs to
// (a subscription to hostkey://servers covers hostkey://servers/123).
func (t *Subscriptions) Subscribers(uri string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for sid, uris := range t.bySe {
		for u := range uris {
			if u == uri || strings.HasPrefix(uri, u+"/") {
				out = append(out, sid)
				break
			}
		}
	}
	return out
}

// NotifyUpdated sends notifications/resources/updated for uri to its subscribers.
func (t *Subscriptions) NotifyUpdated(s *server.MCPServer, uri string) int {
	n := 0
	for _, sid := range t.Subscribers(uri) {
		if s.SendNotificationToSpecificClient(sid, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri}) == nil {
			n++
		}
	}
	return n
}

// SessionID is the MCP session of the request in ctx ("" outside a session).
func SessionID(ctx context.Context) string {
	if s := server.ClientSessionFromContext(ctx); s != nil {
		return s.SessionID()
	}
	return ""
}
