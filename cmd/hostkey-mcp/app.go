package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
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
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel)
	}
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

// buildServer creates the MCP server the flags select.
func (a *app) buildServer(ctx context.Context) error {
	cfg := a.cfg
	eng, err := a.buildPolicy(ctx)
	if err != nil {
		return err
	}
	a.policy = eng
	rcv, err := a.buildReceiver(ctx)
	if err != nil {
		return err
	}
	a.receiver = rcv
	guarded := eng.Guard(a.client)
	var callbacks workflows.Callbacks
	if cfg.PublicURL != "" {
		callbacks = rcv
	}
	wfOpts := workflows.Options{
		Catalog:   a.cat,
		Client:    guarded,
		Checker:   a.client,
		Policy:    eng,
		Facts:     policy.ShowFacts(a.client),
		Callbacks: callbacks,
		Events:    jobEvents{rcv},
		Logger:    a.log.Named("workflows"),
		// Jobs live in the shared store, so they survive this process; the CLI's one
		// session is the operator at the terminal.
		Store:    sharedWorkflows(rcv),
		Operator: a.operator,
		LeaseTTL: cfg.JobLease,
	}
	if a.operator {
		wfOpts.DefaultWait = 24 * time.Hour // the CLI waits for the job's end unless told
	}
	if a.sandbox != nil {
		// Sandbox stages last seconds: check twice a stage, so every stage is reported
		// (the default back-off, made for real installs, would skip some).
		stage := a.cfg.SandboxInstall / 5
		wfOpts.PollInitial, wfOpts.PollMax = stage/2, stage/2
	}
	wf, err := workflows.New(wfOpts)
	if err != nil {
		return err
	}
	hooks := &server.Hooks{}
	taskHooks := &server.TaskHooks{}
	wf.AttachTaskHooks(taskHooks)
	wf.AttachStatusHooks(hooks) // tasks/get shows the job's stage as statusMessage
	extra := []server.ServerTool{rcv.EventsTool()}
	a.toolsOpts = tools.Options{
		Version:      invapi.Version,
		Instructions: a.instructions(),
		Catalog:      a.cat,
		Client:       guarded,
		Sessions:     a.client,
		Selection:    a.selection(),
		Dynamic:      cfg.Dynamic,
		PIN:          policy.PINFrom,
		// The policy decides first; the callback is injected innermost, so a job (and its
		// secret URL) exists only for a call that really goes to invapi.
		Middleware:    []server.ToolHandlerMiddleware{eng.Middleware, rcv.InjectCallback},
		ArgsValidated: true, // by eng.Middleware, which audits the rejects
		ServerAllowed: eng.ServerAllowed,
		Gate:          eng,
		ExtraTools:    extra,
		ExtraToolsets: []tools.ExtraToolset{{
			Name:        "workflows",
			Description: "Order and reinstall servers as one confirmed, followed job (server_order, server_reinstall, server_reinstall_pxe, server_job_watch, server_job_cancel).",
			Tools:       wf.Tools(),
			With:        []string{"reinstall"},
		}},
		Hooks: hooks,
		ExtraOptions: []server.ServerOption{
			server.WithTaskCapabilities(true, true, true),
			server.WithTaskHooks(taskHooks),
		},
		Logger: a.log.Named("mcp"),
	}
	srv, err := tools.New(a.toolsOpts)
	if err != nil {
		return err
	}
	a.srv = srv
	n := webhook.NewMCPNotifier(srv.MCP(), srv.Subscriptions(), tools.ServerURI)
	n.Attach(hooks)
	rcv.SetNotifier(wakeJobs{next: n, wf: wf})
	srv.MCP().AddResource(rcv.EventsResource())
	srv.MCP().AddResourceTemplate(rcv.EventsResourceTemplate())
	a.workflows = wf
	// Closers run last-in first-out: jobs stop (PXE jobs clean up) while the policy,
	// the receiver, the audit log and the session are still there.
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		wf.Shutdown(ctx)
	})
	return nil
}

// workflowToolsets name the workflow tools in --toolsets: they are not catalog actions.
var workflowToolsets = map[string]bool{"workflows": true, "reinstall": true, "all": true}

func (a *app) wantsWorkflows() bool {
	for _, t := range a.selection().Toolsets {
		if workflowToolsets[t] {
			return true
		}
	}
	return false
}

func (a *app) selection() tools.Selection {
	toolsets := splitCSV(a.cfg.Toolsets)
	if a.cfg.Dynamic && !a.cfg.set["toolsets"] {
		// Dynamic mode starts with the discovery tools only (plus --tools): the model
		// loads what it needs. An explicit --toolsets still preloads those.
		toolsets = nil
	}
	return tools.Selection{
		Toolsets: toolsets,
		ReadOnly: a.cfg.ReadOnly,
		Include:  splitCSV(a.cfg.Tools),
		Exclude:  splitCSV(a.cfg.ExcludeTools),
		// The session tools are opt-in: hostkey-mcp runs the invapi session itself.
		AuthTools: a.cfg.AuthTools,
	}
}

func (a *app) instructions() string {
	var b strings.Builder
	b.WriteString("hostkey-mcp operates Hostkey servers through the invapi API. ")
	b.WriteString("Destructive tools (power, reinstall, order, delete, pay) are confirmed by a human outside this conversation and the account PIN is supplied by the server: never ask the user for the PIN. ")
	b.WriteString("Tools that start a long job return a key: follow it with eq_callback_check (loaded with them). ")
	if a.wantsWorkflows() {
		b.WriteString("Prefer server_order, server_reinstall and server_reinstall_pxe to raw actions: they validate, confirm once and follow progress; server_job_watch resumes a job. ")
	}
	b.WriteString("events_list shows install callbacks, login alerts and workflow progress, also from before you connected. ")
	if a.cfg.Dynamic {
		b.WriteString("Only some toolsets are loaded: use tools_search to find a tool and toolsets_enable to load it. ")
	}
	if a.cfg.ReadOnly {
		b.WriteString("Read-only mode: no tool changes anything. ")
	}
	if scope := allowlistText(a.cfg.Servers, a.cfg.ServerTags); scope != "" {
		// Listings still show every server of the token; say up front which ones are
		// off limits so the model does not offer actions that will be refused.
		b.WriteString("Scope: only " + scope + " may be acted on; calls naming other servers are refused before anything is sent. ")
	}
	if a.cfg.Ephemeral {
		b.WriteString("EPHEMERAL: events, jobs, approvals, rate limits, the PIN cool-down and the audit chain are kept in this process only and are lost when it exits. ")
	}
	if a.sandbox != nil {
		b.WriteString("SANDBOX: this is the built-in simulator with example servers; nothing real is changed and installs finish in about " + a.cfg.SandboxInstall.String() + ".")
	}
	return strings.TrimSpace(b.String())
}

// allowlistText describes --servers/--server-tags for the instructions ("" when unset).
func allowlistText(servers, tags string) string {
	var parts []string
	if ids := splitCSV(servers); len(ids) > 0 {
		parts = append(parts, "servers "+strings.Join(ids, ", "))
	}
	if ts := splitCSV(tags); len(ts) > 0 {
		parts = append(parts, "servers tagged "+strings.Join(ts, " or "))
	}
	return strings.Join(parts, " and ")
}

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
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("sandbox stopped", zap.Error(err))
		}
	}()
	rctx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.RunRealtime(rctx, 1) }()
	account, _ := s.Keys()
	return &sandbox{
		sim:    s,
		url:    "http://" + ln.Addr().String() + "/",
		apiKey: account,
		stop: func() {
			cancel()
			sctx, c2 := context.WithTimeout(context.Background(), 2*time.Second)
			defer c2()
			_ = hs.Shutdown(sctx)
		},
	}, nil
}
