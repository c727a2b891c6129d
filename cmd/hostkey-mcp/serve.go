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

	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/transport"
)

func serveCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, rest, err := parseConfig("hostkey-mcp", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before it; see --help)", rest[0])
	}
	if cfg.HTTP != "" && !transport.IsLoopbackAddr(cfg.HTTP) && cfg.HTTPToken == "" {
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
	mux := http.NewServeMux()
	mux.Handle("/mcp", transport.Guard(mcpHTTP, transport.GuardOptions{
		Token:          a.cfg.HTTPToken,
		AllowedOrigins: splitCSV(a.cfg.AllowedOrigins),
		MaxBody:        a.cfg.HTTPMaxBody,
	}))
	// The webhook routes share the listener: callbacks are authenticated by their own
	// secrets, never by the MCP bearer token.
	if a.receiver != nil {
		for _, p := range []string{"/cb/", "/alerts/", "/metrics"} {
			mux.Handle(p, a.withNotifyMetrics(a.receiver.Handler()))
		}
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

func (a *app) serveHTTP(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("--http %s: %w", a.cfg.HTTP, err)
	}
	hs := &http.Server{
		Handler:           a.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		// ReadTimeout bounds reading a whole request (1 MiB arrives well within it); no
		// WriteTimeout, which would cut the long-lived SSE streams of GET /mcp.
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	a.log.Info("streamable HTTP listening", zap.String("url", "http://"+ln.Addr().String()+"/mcp"))
	// doctor --healthz (the image's HEALTHCHECK) finds the listener here.
	if hf := healthFile(a.cfg); os.MkdirAll(filepath.Dir(hf), 0o700) == nil && os.WriteFile(hf, []byte(ln.Addr().String()+"\n"), 0o600) == nil {
		defer os.Remove(hf)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			// Open SSE streams never go idle: after the grace period close them; a
			// requested stop is still a clean exit.
			a.log.Warn("closing HTTP connections still open after 10 s", zap.Error(err))
			_ = hs.Close()
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
