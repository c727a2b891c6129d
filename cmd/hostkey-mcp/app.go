package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/httpx"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// app is one configured hostkey-mcp: logger, invapi client (real or sandbox), MCP server.
type app struct {
	cfg       *Config
	log       *zap.Logger
	cat       *schemas.Catalog
	client    *invapi.Client
	sandbox   *sandbox
	srv       *tools.Server
	policy    *policy.Engine
	receiver  *webhook.Receiver
	operator  bool // a CLI run: its session is the person at the terminal
	workflows *workflows.Workflows
	toolsOpts tools.Options // what srv was built from; tools --sizes varies the selection
	closers   []func()
	state     state.Store // the shared store, opened once (sharedState)
	// pageHandler is the policy's approval pages, set once the engine exists; the
	// listener starts first because the engine needs its URL.
	pageHandler atomic.Value
	notify      notifyState // chat-ops deliveries (notify.go)
}

// sandbox is the in-process invapi simulator a user gets without an API key.
type sandbox struct {
	sim    *sim.Server
	url    string
	apiKey string
	stop   func()
}

func newLogger(cfg *Config, w io.Writer) (*zap.Logger, error) {
	level := cfg.LogLevel
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// usesSandbox: --sandbox, or no API key at all (a fresh machine should just work).
func (c *Config) usesSandbox() bool { return c.Sandbox || c.APIKey == "" }

func newApp(ctx context.Context, cfg *Config, stderr io.Writer) (*app, error) {
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, cat: schemas.Load()}
	base, key := cfg.BaseURL, cfg.APIKey
	if cfg.usesSandbox() {
		sb, err := startSandbox(ctx, log, cfg.SandboxInstall)
		if err != nil {
			return nil, err
		}
		a.sandbox = sb
		a.closers = append(a.closers, sb.stop)
		base, key = sb.url, sb.apiKey
		log.Warn("SANDBOX: serving against the built-in invapi simulator; nothing real is changed",
			zap.String("why", map[bool]string{true: "--sandbox", false: "no HOSTKEY_API_KEY"}[cfg.Sandbox]))
	}
	a.client, err = invapi.New(invapi.Options{
		BaseURL:    base,
		APIKey:     key,
		Logger:     log.Named("invapi"),
		Resolver:   invapi.CatalogResolver(a.cat),
		HTTPClient: &http.Client{Timeout: cfg.Timeout},
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.client.Logout(ctx)
	})
	return a, nil
}

// buildServer assembles the stack the flags select (tools/stack): the policy engine
// from buildPolicy's options, the receiver, workflows, events and the MCP server.
func (a *app) buildServer(ctx context.Context) error {
	po, err := a.buildPolicy(ctx)
	if err != nil {
		return err
	}
	rc, err := a.buildReceiver(ctx)
	if err != nil {
		return err
	}
	o := a.stackOptions()
	o.Policy, o.Receiver = po, rc
	o.Workflows.Operator = a.operator
	o.Workflows.LeaseTTL = a.cfg.JobLease
	if a.operator {
		o.Workflows.DefaultWait = 24 * time.Hour // the CLI waits for the job's end unless told
	}
	if a.sandbox != nil {
		// Sandbox stages last seconds: check twice a stage, so every stage is reported
		// (the default back-off, made for real installs, would skip some).
		stage := a.cfg.SandboxInstall / 5
		o.Workflows.PollInitial, o.Workflows.PollMax = stage/2, stage/2
	}
	st, err := stack.New(ctx, o)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, st.Close)
	a.policy, a.receiver, a.workflows, a.srv, a.toolsOpts = st.Policy, st.Receiver, st.Workflows, st.Server, st.ToolsOptions
	a.pageHandler.Store(st.Policy.Handler())
	return nil
}

// stackOptions are the stack's settings from the flags, less the policy and receiver.
func (a *app) stackOptions() stack.Options {
	o := stack.Options{
		Catalog:   a.cat,
		Client:    a.client,
		Version:   invapi.Version,
		Logger:    a.log,
		Selection: a.selection(),
		Dynamic:   a.cfg.Dynamic,
		Ephemeral: a.cfg.Ephemeral,
		Policy:    policy.Options{ReadOnly: a.cfg.ReadOnly, Servers: a.cfg.Servers, ServerTags: a.cfg.ServerTags},
	}
	if a.sandbox != nil {
		o.SandboxInstall = a.cfg.SandboxInstall
	}
	return o
}

func (a *app) selection() tools.Selection {
	toolsets := a.cfg.Toolsets
	if a.cfg.Dynamic && !a.cfg.set["toolsets"] {
		// Dynamic mode starts with the discovery tools only (plus --tools): the model
		// loads what it needs. An explicit --toolsets still preloads those.
		toolsets = nil
	}
	return tools.Selection{
		Toolsets: toolsets,
		ReadOnly: a.cfg.ReadOnly,
		Include:  a.cfg.Tools,
		Exclude:  a.cfg.ExcludeTools,
		// The session tools are opt-in: hostkey-mcp runs the invapi session itself.
		AuthTools: a.cfg.AuthTools,
	}
}

// instructions is what the server tells the model (built by the stack).
func (a *app) instructions() string { return stack.Instructions(a.stackOptions()) }

func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	_ = a.log.Sync()
}

func startSandbox(ctx context.Context, log *zap.Logger, install time.Duration) (*sandbox, error) {
	// Real time, but short install stages: an install takes --sandbox-install-duration
	// (20 s) while tokens and PIN lock-outs keep their real lengths.
	if install <= 0 {
		install = sim.SandboxInstallDuration
	}
	s, err := sim.New(sim.Options{Logger: log.Named("sandbox"), StageDuration: install / 5})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	stopHTTP := httpx.Start(ln, s, httpx.Limits{ReadHeader: 10 * time.Second, Read: 30 * time.Second, MaxHeaderBytes: 64 << 10, Shutdown: 2 * time.Second},
		func(err error) { log.Error("sandbox stopped", zap.Error(err)) })
	// Sim time runs until the app closes, not with the ctx of the command that built it.
	rctx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.RunRealtime(rctx, 1) }()
	account, _ := s.Keys()
	return &sandbox{
		sim:    s,
		url:    "http://" + ln.Addr().String() + "/",
		apiKey: account,
		stop: func() {
			cancel()
			stopHTTP()
		},
	}, nil
}
