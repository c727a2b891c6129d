package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/tools"
)

// buildPolicy assembles the policy engine from the flags: PIN source, classes, limits,
// allowlist, audit log, and the loopback listener of the approval and PIN pages.
func (a *app) buildPolicy() (*policy.Engine, error) {
	cfg := a.cfg
	var pin policy.PINProvider
	var err error
	if a.sandbox != nil && cfg.PIN == "" && cfg.PINFile == "" {
		pin = policy.StaticPIN(a.sandbox.sim.PIN()) // the simulator's own account PIN
	} else if pin, err = policy.LoadPIN(cfg.PIN, cfg.PINFile); err != nil {
		return nil, err
	}
	var classes policy.File
	if cfg.PolicyFile != "" {
		f, err := policy.LoadFile(cfg.PolicyFile, a.cat)
		if err != nil {
			return nil, err
		}
		classes = *f
	}
	var limits policy.Limits
	for _, l := range []struct {
		flag, value string
		into        *policy.Limit
	}{
		{"--rate-global", cfg.RateGlobal, &limits.Global},
		{"--rate-destructive", cfg.RateDestructive, &limits.Destructive},
		{"--rate-server", cfg.RateServer, &limits.Server},
		{"--rate-session", cfg.RateSession, &limits.Session},
	} {
		if *l.into, err = policy.ParseLimit(l.value); err != nil {
			return nil, fmt.Errorf("%s %q: %v (want rps:burst, e.g. 5:10, or off)", l.flag, l.value, err)
		}
	}
	var servers []int64
	for _, s := range splitCSV(cfg.Servers) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("--servers: %q is not a server ID", s)
		}
		servers = append(servers, id)
	}
	var auditLog policy.Auditor
	if cfg.AuditLog != "" {
		l, err := audit.Open(cfg.AuditLog)
		if err != nil {
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
		a.closers = append(a.closers, func() { _ = l.Close() })
		auditLog = l
	}
	pageURL, err := a.startApprovalListener()
	if err != nil {
		return nil, err
	}
	if cfg.Confirm == policy.ConfirmOff {
		a.log.Warn("--confirm off: destructive calls run WITHOUT human confirmation")
	}
	eng, err := policy.New(policy.Options{
		Describe:       tools.Describer(a.cat),
		Facts:          policy.ShowFacts(a.client),
		Confirm:        cfg.Confirm,
		ConfirmWrites:  cfg.ConfirmWrites,
		PIN:            pin,
		PINPageBaseURL: pageURL,
		ApproverToken:  cfg.ApproverToken,
		Classes:        classes.Classes,
		ReadOnly:       cfg.ReadOnly,
		Servers:        servers,
		ServerTags:     splitCSV(cfg.ServerTags),
		Limits:         limits,
		DryRun:         cfg.DryRun,
		Audit:          auditLog,
		Logger:         a.log.Named("policy"),
		Catalog:        a.cat,
	})
	if err != nil {
		return nil, err
	}
	a.pageHandler.Store(eng.Handler())
	return eng, nil
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
	mux := http.NewServeMux()
	mux.Handle("/policy/", http.StripPrefix("/policy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := a.pageHandler.Load().(http.Handler)
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("approval pages stopped", zap.Error(err))
		}
	}()
	a.closers = append(a.closers, func() { _ = hs.Close() })
	url := "http://" + ln.Addr().String() + "/policy"
	// Bots need this address (with port 0 it changes every start): say it at info.
	a.log.Info("approval listener", zap.String("pages", url+"/approve/{id}"), zap.String("bot_api", url+"/api/approvals/{id}"))
	return url, nil
}

// auditVerifyFlags declares audit-verify's own flags (its --help lists them).
func auditVerifyFlags(fs *flag.FlagSet) {}

func auditVerifyCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("audit-verify")
	auditVerifyFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flagError("audit-verify", err)
	}
	args = fs.Args()
	if len(args) != 1 {
		return errors.New("want exactly one FILE (see 'hostkey-mcp audit-verify --help')")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	fmt.Fprintf(stdout, "%s: %d lines, hash chain intact\n", args[0], n)
	return nil
}
