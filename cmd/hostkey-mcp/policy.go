package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/state"
)

// policyHints are the settings the policy's messages advise, in this binary's words.
var policyHints = policy.Hints{
	ConfirmOff:   "--confirm off",
	ConfirmToken: "--confirm token",
	SetPIN:       "set HOSTKEY_PIN or --pin-file",
	ApprovalPage: "serve --http",
}

// loadPIN reads the PIN from HOSTKEY_PIN or --pin-file; errors name the one at fault.
func loadPIN(cfg *Config) (policy.PINProvider, error) {
	if cfg.PIN != "" && cfg.PINFile != "" {
		return nil, errors.New("both HOSTKEY_PIN and --pin-file are set: keep one")
	}
	p, err := policy.LoadPIN(cfg.PIN, cfg.PINFile)
	switch {
	case err == nil:
		return p, nil
	case cfg.PINFile != "":
		return nil, fmt.Errorf("--pin-file %s: %w", cfg.PINFile, err)
	default:
		return nil, fmt.Errorf("HOSTKEY_PIN: %w", err)
	}
}

// buildPolicy sets up the policy engine's options from the flags: PIN source, classes,
// limits, allowlist, audit log, and the loopback listener of the approval and PIN pages.
// The stack builds the engine from them.
func (a *app) buildPolicy(ctx context.Context) (policy.Options, error) {
	cfg := a.cfg
	var pin policy.PINProvider
	var err error
	if a.sandbox != nil && cfg.PIN == "" && cfg.PINFile == "" {
		pin = policy.StaticPIN(a.sandbox.sim.PIN()) // the simulator's own account PIN
	} else if pin, err = loadPIN(cfg); err != nil {
		return policy.Options{}, err
	}
	var classes policy.File
	if cfg.PolicyFile != "" {
		f, err := policy.LoadFile(cfg.PolicyFile, a.cat)
		if err != nil {
			return policy.Options{}, fmt.Errorf("--policy-file: %w", err)
		}
		classes = *f
	}
	limits := policy.Limits{Global: cfg.RateGlobal, Destructive: cfg.RateDestructive, Server: cfg.RateServer, Session: cfg.RateSession}
	maxPending := cfg.MaxPending
	if maxPending == 0 {
		maxPending = -1 // policy: negative is no limit, 0 its default
	}
	st, err := a.openPolicyState(ctx)
	if err != nil {
		return policy.Options{}, err
	}
	// The store's chain is the audit log of every process on the data dir (export it
	// with audit-export); --audit-log also keeps the file chain it always kept.
	chain := audit.NewChain(st, func(err error) { a.log.Error("audit chain write failed", zap.Error(err)) })
	stopChainAnchor := a.anchorChain(chain)
	a.closers = append(a.closers, func() {
		chain.Flush() // the queued lines, before the store closes
		stopChainAnchor()
	})
	var auditLog policy.Auditor = chain
	if cfg.AuditLog != "" {
		l, err := audit.Open(cfg.AuditLog)
		if err != nil {
			return policy.Options{}, fmt.Errorf("--audit-log: %w", err)
		}
		stopAnchor := a.anchorAudit(l)
		a.closers = append(a.closers, func() {
			stopAnchor()
			_ = l.Close()
		})
		auditLog = teeAuditor{chain, l}
	}
	pageURL, err := a.startApprovalListener()
	if err != nil {
		return policy.Options{}, err
	}
	if cfg.Confirm == policy.ConfirmOff {
		a.log.Warn("--confirm off: destructive calls run WITHOUT human confirmation")
	}
	return policy.Options{
		Confirm:        cfg.Confirm,
		ConfirmWrites:  cfg.ConfirmWrites,
		PIN:            pin,
		PINPageBaseURL: pageURL,
		ApproverToken:  cfg.ApproverToken,
		Classes:        classes.Classes,
		ReadOnly:       cfg.ReadOnly,
		Servers:        cfg.Servers,
		ServerTags:     cfg.ServerTags,
		Limits:         limits,
		MaxPending:     maxPending,
		DryRun:         cfg.DryRun,
		Audit:          auditLog,
		State:          st,
		Logger:         a.log.Named("policy"),
		Catalog:        a.cat,
		OnApproval:     a.onApproval, // chat-ops deliveries (notify.go)
		Hints:          policyHints,
	}, nil
}

// openPolicyState is the shared store that holds the policy's safety state (PIN
// cool-down, rate limits, approvals, the audit chain): the process's one handle.
func (a *app) openPolicyState(ctx context.Context) (state.Store, error) {
	return a.sharedState(ctx)
}

// teeAuditor writes each entry to the store's chain and to the --audit-log file.
type teeAuditor struct {
	chain *audit.Chain
	file  *audit.Log
}

func (t teeAuditor) Append(e audit.Entry) (string, error) {
	hash, err := t.chain.Append(e)
	if _, ferr := t.file.Append(e); ferr != nil && err == nil {
		err = ferr
	}
	return hash, err
}

func (t teeAuditor) AppendLater(e audit.Entry) {
	t.chain.AppendLater(e)
	_, _ = t.file.Append(e)
}

// anchorChain logs the store chain's line count and head every auditHeadEvery and at
// shutdown (the returned stop), as anchorAudit does for the file.
func (a *app) anchorChain(c *audit.Chain) (stop func()) {
	logHead := func(when string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, head, err := c.Head(ctx)
		if err != nil {
			a.log.Warn("audit head of the store could not be read", zap.Error(err))
			return
		}
		a.log.Info("audit chain head (the store; audit-export writes it)", zap.Int("lines", n), zap.String("head", head), zap.String("when", when))
	}
	return everyAndAtStop(auditHeadEvery, logHead)
}

// auditExportCmd writes the store's audit chain as the JSON Lines audit-verify checks.
func auditExportCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, rest, err := parseConfig("hostkey-mcp audit-export", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return errors.New("want at most one FILE (default: standard output)")
	}
	if cfg.Ephemeral {
		return errors.New("--ephemeral keeps the audit chain in the memory of the process that wrote it: there is nothing to export")
	}
	a := &app{cfg: cfg, log: zap.NewNop()}
	if cfg.usesSandbox() {
		a.sandbox = &sandbox{} // only picks the sandbox's data dir, where its chain is
	}
	st, err := a.openPolicyState(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	w := stdout
	var f *os.File
	if len(rest) == 1 {
		if f, err = os.OpenFile(rest[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		w = f
	}
	n, err := audit.NewChain(st, nil).Export(ctx, w)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d audit lines (check them with hostkey-mcp audit-verify)\n", n)
	return nil
}

// startApprovalListener serves the policy's one-time pages on loopback, in every
// transport mode (stdio included), and returns their base URL.
func (a *app) startApprovalListener() (string, error) {
	if a.cfg.ApprovalListen == "" || a.cfg.ApprovalListen == "off" {
		return "", nil
	}
	ln, err := net.Listen("tcp", a.cfg.ApprovalListen)
	if err != nil {
		return "", fmt.Errorf("--approval-listen %s: %w", a.cfg.ApprovalListen, err)
	}
	rt := mux.NewRouter()
	rt.PathPrefix("/policy/").Handler(http.StripPrefix("/policy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := a.pageHandler.Load().(http.Handler)
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})))
	stop := httpx.Start(ln, rt, httpx.Limits{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second},
		func(err error) { a.log.Error("approval pages stopped", zap.Error(err)) })
	a.closers = append(a.closers, stop)
	url := "http://" + ln.Addr().String() + "/policy"
	// Bots need this address (with port 0 it changes every start): say it at info.
	a.log.Info("approval listener", zap.String("pages", url+"/approve/{id}"), zap.String("bot_api", url+"/api/approvals/{id}"))
	return url, nil
}

// auditVerifyFlags declares audit-verify's own flags (its --help lists them): an anchor
// to check the file against, since cutting lines off the end leaves a chain that verifies.
func auditVerifyFlags(fs *flag.FlagSet, anchor *audit.Anchor) {
	fs.IntVar(&anchor.Lines, "expect-lines", 0, "the file must still hold this many lines (an anchor's count)")
	fs.StringVar(&anchor.Head, "expect-head", "", "an anchored head hash that must be in the chain (at line --expect-lines when given)")
}

// auditVerifyCmd checks a file's chain and prints its line count and head hash: the
// anchor to keep elsewhere.
func auditVerifyCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("audit-verify")
	var anchor audit.Anchor
	auditVerifyFlags(fs, &anchor)
	if err := fs.Parse(args); err != nil {
		return flagError("audit-verify", err)
	}
	if fs.NArg() != 1 {
		return errors.New("want exactly one FILE (see 'hostkey-mcp audit-verify --help')")
	}
	if anchor.Lines < 0 {
		return errors.New("--expect-lines must be 0 or more (see 'hostkey-mcp audit-verify --help')")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := audit.Check(f, anchor)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(stdout, "%s: hash chain intact; lines %d, head %s", path, got.Lines, got.Head)
	switch {
	case anchor == (audit.Anchor{}):
	case got.Lines == anchor.Lines || anchor.Lines == 0 && got.Head == anchor.Head:
		fmt.Fprint(stdout, "; matches the anchor")
	default:
		fmt.Fprintf(stdout, "; extends the anchor (line %d) by %d lines", anchor.Lines, got.Lines-anchor.Lines)
	}
	fmt.Fprintln(stdout)
	return nil
}

// auditHeadEvery is how often the server logs the audit head: a log collector then holds
// a recent anchor without any cron job.
const auditHeadEvery = 10 * time.Minute

// everyAndAtStop calls logHead("periodic") every d until the returned stop, which calls
// logHead("shutdown") once more.
func everyAndAtStop(d time.Duration, logHead func(when string)) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				logHead("periodic")
			}
		}
	}()
	return func() {
		close(done)
		logHead("shutdown")
	}
}

// anchorAudit logs l's line count and head every auditHeadEvery and once more when the
// returned stop is called (at shutdown).
func (a *app) anchorAudit(l *audit.Log) (stop func()) {
	logHead := func(when string) {
		n, head := l.Head()
		a.log.Info("audit head", zap.String("file", a.cfg.AuditLog), zap.Int("lines", n), zap.String("head", head), zap.String("when", when))
	}
	return everyAndAtStop(auditHeadEvery, logHead)
}
