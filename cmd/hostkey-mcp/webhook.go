package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// dataDir is where the durable event store lives: --data-dir, else the user's state
// directory. The sandbox keeps its own, so simulated events never mix with real ones.
func (a *app) dataDir() (string, error) {
	dir := a.cfg.DataDir
	if dir == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no --data-dir and no home directory: %w", err)
			}
			base = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(base, "hostkey-mcp")
	}
	if a.sandbox != nil {
		dir = filepath.Join(dir, "sandbox")
	}
	return dir, os.MkdirAll(dir, 0o700)
}

// sharedState opens, once per process, the shared state store in the data dir
// (state.db, SQLite) that every hostkey-mcp process on this machine opens at once; the
// receiver and the policy use the same handle. An events.db of an earlier version is
// imported on first start. An unusable data dir or store is an error: state is kept in
// memory only when asked for (--ephemeral). The store closes after everything that uses
// it (closers run last-in first-out, and this one is registered first).
func (a *app) sharedState(ctx context.Context) (state.Store, error) {
	if a.state != nil {
		return a.state, nil
	}
	if a.cfg.Ephemeral {
		st, err := state.Open(ctx, state.Memory)
		if err != nil {
			return nil, err
		}
		a.log.Warn("--ephemeral: events, jobs, approvals, rate limits, the PIN cool-down and the audit chain live in this process only and are lost when it exits")
		a.state = st
		a.closers = append(a.closers, func() { _ = st.Close() })
		return st, nil
	}
	if a.cfg.Store != "" {
		// No fallback: replicas that silently kept their own state would each approve,
		// rate-limit and audit alone.
		st, err := state.Open(ctx, a.cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("--store %s: %w", storeDisplay(a.cfg.Store), err)
		}
		a.log.Info("shared state store", zap.String("engine", st.Engine()), zap.String("store", storeDisplay(a.cfg.Store)))
		a.state = st
		a.closers = append(a.closers, func() { _ = st.Close() })
		return st, nil
	}
	dir, err := a.dataDir()
	if err != nil {
		return nil, fmt.Errorf("data dir: %w (set --data-dir, or --ephemeral to keep state in memory)", err)
	}
	st, err := state.Open(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("%w (set --data-dir, or --ephemeral to keep state in memory)", err)
	}
	if n, err := store.ImportBolt(ctx, filepath.Join(dir, "events.db"), st); err != nil {
		_ = st.Close()
		return nil, err
	} else if n > 0 {
		a.log.Info("imported the events of the earlier bbolt store", zap.Int("events", n), zap.String("from", filepath.Join(dir, "events.db")))
	}
	a.state = st
	a.closers = append(a.closers, func() { _ = st.Close() })
	return st, nil
}

// buildReceiver sets up the webhook receiver's settings (install callbacks, login
// alerts, events) on the shared store; the stack builds the receiver.
func (a *app) buildReceiver(ctx context.Context) (webhook.Config, error) {
	sst, err := a.sharedState(ctx)
	if err != nil {
		return webhook.Config{}, err
	}
	return webhook.Config{
		PublicURL:      a.cfg.PublicURL,
		Store:          store.NewShared(sst),
		Logger:         a.log.Named("webhook"),
		TrustedProxies: a.cfg.TrustedProxies,
		CheckSourceIP:  a.cfg.CheckSourceIP,
		Retention:      a.cfg.Retention,
	}, nil
}

// serveWebhooks starts --webhook-listen; it stops with ctx (before the receiver closes).
// One process of a store holds the address at a time: when a sibling on the same data
// dir holds it, this one stands by and takes it over when the sibling goes. Anything
// else on the address is an error at start.
func (a *app) serveWebhooks(ctx context.Context) error {
	if a.cfg.WebhookListen == "" {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	l, err := webhook.ServeShared(wctx, a.cfg.WebhookListen, a.receiver.Identity(), a.withNotifyMetrics(a.receiver.Handler()), a.log.Named("webhook"), 0)
	if err != nil {
		cancel()
		return err
	}
	a.log.Info("webhooks", zap.String("addr", a.cfg.WebhookListen), zap.String("public_url", a.cfg.PublicURL))
	a.closers = append(a.closers, func() { cancel(); <-l.Done() })
	return nil
}

// takeOverJobs follows, in a server, the workflow jobs of processes that stopped.
func (a *app) takeOverJobs(ctx context.Context) {
	if a.workflows == nil {
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.workflows.TakeOver(tctx)
	}()
	a.closers = append(a.closers, func() { cancel(); <-done })
}
