package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gorilla/mux"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
	"github.com/hostkey/hostkey-mcp/tools"
)

func serveCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, rest, err := parseConfig("hostkey-mcp", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it; see --help)", rest[0])
	}
	if cfg.HTTP != "" && !httpx.IsLoopback(cfg.HTTP) && cfg.HTTPToken == "" {
		return fmt.Errorf("--http %s is reachable from other machines: set HOSTKEY_HTTP_TOKEN (or --http-token-file) or bind to 127.0.0.1", cfg.HTTP)
	}
	a, err := newApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	// mcp-go prints some lines through the standard library logger ("Delivered sampling
	// response"): route them into zap so --log-format json stays JSON.
	defer a.redirectStdLog()()
	if err := a.buildServer(ctx); err != nil {
		return err
	}
	if err := a.startNotify(ctx); err != nil {
		return err
	}
	if err := a.serveWebhooks(ctx); err != nil {
		return err
	}
	a.takeOverJobs(ctx)
	a.refreshPermissions(ctx)
	a.log.Info("serving", zap.String("transport", map[bool]string{true: "http " + cfg.HTTP, false: "stdio"}[cfg.HTTP != ""]),
		zap.Int("tools", len(a.srv.ToolNames())), zap.Strings("toolsets", a.selection().Toolsets),
		zap.Bool("dynamic", cfg.Dynamic), zap.Bool("read_only", cfg.ReadOnly))
	// Measuring tools/list builds a second server and lists through a client: a fifth
	// of a start's CPU, so only at debug level (`hostkey-mcp tools --sizes` measures it).
	if a.log.Core().Enabled(zap.DebugLevel) {
		n, size := a.toolsListSize(ctx)
		a.log.Debug("tools/list size", zap.Int("tools", n), zap.Int("tools_list_bytes", size))
	}
	if cfg.HTTP != "" {
		return a.serveHTTP(ctx)
	}
	return a.serveStdio(ctx, stdin, stdout)
}

// toolsListSize measures the tools/list a new client gets (count and JSON bytes: what
// every model turn pays for), through an in-process client.
func (a *app) toolsListSize(ctx context.Context) (int, int) {
	// A twin server with the same options: a client session on the served one would be
	// counted by the notifier and the audit.
	opts := a.toolsOpts
	opts.Hooks, opts.Logger = nil, nil
	twin, err := tools.New(opts)
	if err != nil {
		return len(a.srv.ToolNames()), 0
	}
	list, err := listThrough(ctx, twin)
	if err != nil {
		return len(a.srv.ToolNames()), 0
	}
	raw, _ := json.Marshal(list)
	return len(list), len(raw)
}

// redirectStdLog sends the standard library logger's output to the app's logger (debug
// level: mcp-go's lines are diagnostics) and returns the function that restores it.
func (a *app) redirectStdLog() func() {
	restore, err := zap.RedirectStdLogAt(a.log.Named("stdlib"), zap.DebugLevel)
	if err != nil {
		return func() {}
	}
	return restore
}

// refreshPermissions logs in early so the first tools/list already shows only what the
// token may call. A failure is not fatal: invapi may be briefly down, and every tool call
// reports its own error.
func (a *app) refreshPermissions(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := a.srv.RefreshPermissions(lctx); err != nil {
		a.log.Warn("could not read the token's permissions; showing every selected tool", zap.Error(err))
	}
}

func (a *app) serveStdio(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	s := server.NewStdioServer(a.srv.MCP())
	s.SetErrorLogger(zap.NewStdLog(a.log.Named("stdio")))
	err := s.Listen(ctx, stdin, stdout)
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// httpHandler is the streamable HTTP endpoint behind the Origin and bearer checks.
func (a *app) httpHandler() http.Handler {
	mcpHTTP := server.NewStreamableHTTPServer(a.srv.MCP(),
		server.WithEndpointPath("/mcp"),
		server.WithSessionIdleTTL(30*time.Minute),
	)
	var mcpHandler http.Handler = mcpHTTP
	if a.state != nil && a.state.Engine() == "postgres" {
		// Replicas: a form answer that lands on another replica than the one waiting
		// for it is relayed through the store (relay.go).
		relay := newAnswerRelay(a.state, mcpHTTP, a.log.Named("relay"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); relay.run(ctx, 300*time.Millisecond) }()
		a.closers = append(a.closers, func() { cancel(); <-done })
		mcpHandler = relay
	}
	rt := mux.NewRouter()
	rt.Handle("/mcp", httpx.Guard(mcpHandler, httpx.GuardOptions{
		Token:          a.cfg.HTTPToken,
		AllowedOrigins: a.cfg.AllowedOrigins,
		MaxBody:        a.cfg.HTTPMaxBody,
	}))
	// The webhook routes share the listener: callbacks are authenticated by their own
	// secrets, never by the MCP bearer token.
	if a.receiver != nil {
		wh := a.withNotifyMetrics(a.receiver.Handler())
		rt.PathPrefix("/cb/").Handler(wh)
		rt.PathPrefix("/alerts/").Handler(wh)
		rt.Handle("/metrics", wh)
	}
	rt.HandleFunc("/healthz", a.healthz)
	return rt
}

// healthz is the readiness probe: ready while the shared state store answers. Without
// it this process refuses destructive calls and answers callbacks 503, so a balancer
// should send its traffic to a replica that is ready. The reason names the engine only
// (a store's error may name hosts and users).
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.state != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.state.Ping(ctx); err != nil {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: the shared state store (%s) is unreachable: destructive calls are refused and webhook callbacks answered 503 until it returns\n", a.state.Engine())
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (a *app) serveHTTP(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("--http %s: %w", a.cfg.HTTP, err)
	}
	a.log.Info("streamable HTTP listening", zap.String("url", "http://"+ln.Addr().String()+"/mcp"))
	// doctor --healthz (the image's HEALTHCHECK) finds the listener here.
	if hf := healthFile(a.cfg); os.MkdirAll(filepath.Dir(hf), 0o700) == nil && os.WriteFile(hf, []byte(ln.Addr().String()+"\n"), 0o600) == nil {
		defer os.Remove(hf)
	}
	// ReadTimeout bounds reading a whole request (1 MiB arrives well within it); no Write
	// limit, which would cut the long-lived SSE streams of GET /mcp.
	err = httpx.Serve(ctx, ln, a.httpHandler(), httpx.Limits{ReadHeader: 10 * time.Second, Read: 30 * time.Second,
		Idle: 2 * time.Minute, MaxHeaderBytes: 64 << 10, Shutdown: 10 * time.Second})
	if errors.Is(err, httpx.ErrForcedClose) {
		// Open SSE streams never go idle: they are closed after the grace period; a
		// requested stop is still a clean exit.
		a.log.Warn("closed HTTP connections still open after 10 s", zap.Error(err))
		return nil
	}
	return err
}
