package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/webhook/outbound"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// notifyState is the chat-ops side of the app: the delivery engine (when --notify-url
// is set) and the store approval events are appended to.
type notifyState struct {
	store  atomic.Pointer[stateBox]
	engine *outbound.Engine
}

type stateBox struct{ st state.Store }

// NotifyStatusURI is the operators' resource: destinations, queues and dead letters.
const NotifyStatusURI = "hostkey://notify/deliveries"

// parseDestinations reads --notify-url values. Per-destination settings ride in the
// URL's fragment, which is never sent to the destination:
//
//	https://bot.example.com/hook#format=standard&types=approval,job&servers=40101&toolsets=power&secret-env=BOT_SECRET
//
// The signing secret is HOSTKEY_NOTIFY_SECRET (or --notify-secret-file), or per
// destination secret-env=NAME or secret-file=PATH; never the secret itself.
func parseDestinations(cfg *Config, getenv func(string) string) ([]outbound.Destination, error) {
	var out []outbound.Destination
	for i, raw := range strings.Fields(cfg.NotifyURLs) {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("--notify-url #%d: not a URL", i+1)
		}
		opts, err := url.ParseQuery(u.Fragment)
		if err != nil {
			return nil, fmt.Errorf("--notify-url #%d (%s): the #fragment must be key=value&…", i+1, outbound.RedactURL(raw))
		}
		u.Fragment, u.RawFragment = "", ""
		d := outbound.Destination{URL: u.String(), Secret: cfg.NotifySecret, Format: opts.Get("format")}
		for k, vs := range opts {
			v := vs[len(vs)-1]
			switch k {
			case "format":
			case "types":
				d.Filter.Types = splitCSV(v)
			case "toolsets":
				d.Filter.Toolsets = splitCSV(v)
			case "servers":
				for _, s := range splitCSV(v) {
					id, err := strconv.ParseInt(s, 10, 64)
					if err != nil || id <= 0 {
						return nil, fmt.Errorf("--notify-url #%d (%s): servers=%q: want server IDs, comma-separated", i+1, outbound.RedactURL(raw), v)
					}
					d.Filter.Servers = append(d.Filter.Servers, id)
				}
			case "secret-env":
				if d.Secret = getenv(v); d.Secret == "" {
					return nil, fmt.Errorf("--notify-url #%d (%s): secret-env=%s is not set", i+1, outbound.RedactURL(raw), v)
				}
			case "secret-file":
				b, err := os.ReadFile(v)
				if err != nil {
					return nil, fmt.Errorf("--notify-url #%d (%s): secret-file: %v", i+1, outbound.RedactURL(raw), err)
				}
				d.Secret = strings.TrimSpace(string(b))
			default:
				return nil, fmt.Errorf("--notify-url #%d (%s): unknown setting %q in the #fragment (format, types, servers, toolsets, secret-env, secret-file)", i+1, outbound.RedactURL(raw), k)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// startNotify opens the delivery engine on the receiver's store and starts it.
func (a *app) startNotify(ctx context.Context) error {
	sh, ok := a.receiver.Store().(*store.Shared)
	if !ok {
		return errors.New("chat-ops deliveries need the shared state store")
	}
	a.notify.store.Store(&stateBox{sh.State()})
	dests := a.cfg.Notify
	if len(dests) == 0 {
		return nil
	}
	eng, err := outbound.New(outbound.Options{
		Store:        sh.State(),
		Destinations: dests,
		AllowPrivate: a.cfg.NotifyAllowPrivate,
		MaxAge:       a.cfg.NotifyMaxAge,
		Logger:       a.log.Named("notify"),
		ToolsetOf: func(tool string) string {
			if act, ok := a.cat.Tool(tool); ok {
				return act.Toolset
			}
			return "workflows"
		},
	})
	if err != nil {
		return err
	}
	// A destination disabled by 410 Gone is retried once per start: restarting is how
	// an operator says the destination is fixed.
	if st, err := eng.Status(ctx, 0); err == nil {
		for _, s := range st {
			if s.Disabled != "" {
				a.log.Warn("re-enabling a destination disabled earlier", zap.String("to", s.URL), zap.String("why", s.Disabled))
				_ = sh.State().(state.Outbox).EnableDestination(ctx, s.Key)
			}
		}
	}
	eng.Start(context.WithoutCancel(ctx))
	a.notify.engine = eng
	a.closers = append(a.closers, eng.Close)
	a.attachNotify(a.srv)
	for _, d := range dests {
		a.log.Info("chat-ops deliveries", zap.String("to", d.Redacted()), zap.String("format", d.Format), zap.String("key", d.Key()))
	}
	return nil
}

// onApproval appends the policy's approval events to the event log, from which every
// destination's outbox is filled (approval.requested carries the same text the human
// sees; the PIN is never part of it).
func (a *app) onApproval(ev policy.ApprovalEvent) {
	box := a.notify.store.Load()
	if box == nil {
		return
	}
	data := map[string]any{"approval_id": ev.ID, "summary": ev.Summary, "details": ev.Details, "approvers": ev.Approvers,
		"expires_at": ev.Expires.UTC().Format(time.RFC3339), "servers": ev.ServerIDs}
	if ev.Type == policy.ApprovalDecided {
		data["decision"], data["via"] = ev.Decision, ev.Via
	}
	var sid int64
	if len(ev.ServerIDs) == 1 {
		sid = ev.ServerIDs[0]
	}
	raw, err := json.Marshal(map[string]any{"kind": ev.Type, "server_id": sid, "action": ev.Tool, "time": time.Now().UTC(), "data": data})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err = box.st.Append(ctx, state.Event{Kind: ev.Type, ServerID: sid, Data: raw}, ev.Type+"/"+ev.ID)
	}
	if err != nil {
		a.log.Warn("could not record the approval event for chat-ops", zap.String("approval", ev.ID), zap.Error(err))
	}
}

// withNotifyMetrics appends the delivery metrics to the receiver's /metrics.
func (a *app) withNotifyMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.URL.Path == "/metrics" && a.notify.engine != nil {
			a.notify.engine.WriteMetrics(r.Context(), w)
		}
	})
}

// attachNotify adds the operators' resource: destinations (URLs cut to their host),
// queues, the last error in words and recent dead letters; never a response body.
func (a *app) attachNotify(srv *tools.Server) {
	if a.notify.engine == nil {
		return
	}
	res := mcp.NewResource(NotifyStatusURI, "Chat-ops deliveries",
		mcp.WithResourceDescription("Outbound webhook destinations: pending deliveries, last error, disabled destinations and recent dead letters (for operators)."),
		mcp.WithMIMEType("application/json"))
	srv.MCP().AddResource(res, func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		st, err := a.notify.engine.Status(ctx, 20)
		if err != nil {
			return nil, fmt.Errorf("the delivery status is unavailable: %w", err)
		}
		b, _ := json.MarshalIndent(map[string]any{"destinations": st}, "", "  ")
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: NotifyStatusURI, MIMEType: "application/json", Text: string(b)}}, nil
	})
}

// doctorNotify reports the destinations and their queues (doctor).
func doctorNotify(ctx context.Context, a *app, w io.Writer) bool {
	dests := a.cfg.Notify
	sh, ok := a.receiver.Store().(*store.Shared)
	if !ok {
		return true
	}
	ob, ok := sh.State().(state.Outbox)
	if len(dests) == 0 || !ok {
		return true
	}
	all, err := outbound.StatusOf(ctx, ob, dests, 3)
	if err != nil {
		fmt.Fprintf(w, "  FAIL  chat-ops: the outbox is unreadable: %v\n", err)
		return false
	}
	good := true
	for _, s := range all {
		switch {
		case s.Disabled != "":
			good = false
			fmt.Fprintf(w, "  FAIL  chat-ops %s: disabled (%s); fix the destination, then restart to re-enable\n", s.URL, s.Disabled)
		case s.Dead > 0:
			good = false
			fmt.Fprintf(w, "  FAIL  chat-ops %s: %d dead letters (last: %s), %d pending\n", s.URL, s.Dead, s.DeadLetters[0].Error, s.Pending)
		default:
			fmt.Fprintf(w, "  ok    chat-ops %s (%s): %d pending, %d delivered\n", s.URL, s.Format, s.Pending, s.Delivered)
		}
	}
	return good
}
