package webhook

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// CallbackParam is the invapi parameter that carries the install callback URL.
const CallbackParam = "post_install_callback"

// ErrNoPublicURL means no --public-url is configured, so nothing can call back.
var ErrNoPublicURL = errors.New("webhook: no public URL configured")

// PublicURL is the configured public URL without trailing slash ("" when none).
func (r *Receiver) PublicURL() string { return r.public }

// NewInstallJob creates a job awaiting an install callback and returns the URL to give
// invapi as post_install_callback: <public-url>/cb/install/<secret>, the secret being 256
// random bits. Only the secret's SHA-256 is stored. serverIPs (or, when empty and the
// source check is on, the ServerIPs lookup) are the addresses allowed to call back.
func (r *Receiver) NewInstallJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (string, error) {
	_, u, err := r.NewJob(ctx, serverID, action, session, serverIPs)
	return u, err
}

// NewJob is NewInstallJob that also returns the job.
func (r *Receiver) NewJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (Job, string, error) {
	if r.public == "" {
		return Job{}, "", ErrNoPublicURL
	}
	if len(serverIPs) == 0 && r.cfg.CheckSourceIP && r.cfg.ServerIPs != nil && serverID != 0 {
		ips, err := r.cfg.ServerIPs(ctx, serverID)
		if err != nil {
			r.log.Warn("could not look up the server's IPs; will retry when the callback arrives", zap.Int64("server", serverID), zap.Error(err))
		}
		serverIPs = ips
	}
	for range 3 {
		secret, err := newSecret()
		if err != nil {
			return Job{}, "", err
		}
		h := sha256.Sum256([]byte(secret))
		j := Job{ID: store.NewID("job_"), SecretHash: h[:], ServerID: serverID, Action: action, Session: session,
			ServerIPs: serverIPs, Created: r.now().UTC(), State: store.JobPending}
		err = r.store.CreateJob(ctx, j)
		if errors.Is(err, store.ErrExists) {
			continue // astronomically unlikely; try fresh randomness
		}
		if err != nil {
			return Job{}, "", fmt.Errorf("webhook: create job: %w", err)
		}
		r.log.Info("install job created", zap.String("job", j.ID), zap.Int64("server", serverID), zap.String("action", action),
			zap.String("secret_sha256_prefix", secretPrefix(secret)))
		return j, r.public + "/cb/install/" + secret, nil
	}
	return Job{}, "", errors.New("webhook: could not create a unique job")
}

// Track records that the tool call o is waiting for job jobID, so that its event carries
// the call as OriginFromContext (progress on the open call); the returned function
// forgets it when the call returns.
func (r *Receiver) Track(jobID string, o Origin) (untrack func()) {
	r.mu.Lock()
	r.open[jobID] = o
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.open, jobID)
		r.mu.Unlock()
	}
}

// WaitJob blocks until the job's callback has been stored (or ctx ends) and returns the
// job. A workflow that must wait for an install can use it instead of polling.
func (r *Receiver) WaitJob(ctx context.Context, jobID string) (Job, error) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters[jobID] = append(r.waiters[jobID], ch)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		list := r.waiters[jobID]
		for i, c := range list {
			if c == ch {
				r.waiters[jobID] = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(r.waiters[jobID]) == 0 {
			delete(r.waiters, jobID)
		}
		r.mu.Unlock()
	}()
	j, err := r.store.GetJob(ctx, jobID)
	if err != nil || j.State == store.JobDone {
		return j, err
	}
	select {
	case <-ch:
		return r.store.GetJob(ctx, jobID)
	case <-ctx.Done():
		return j, ctx.Err()
	}
}

// Since reads the event log after a cursor (the events tool and resources).
func (r *Receiver) Since(ctx context.Context, after uint64, limit int, f store.Filter) (store.Page, error) {
	return r.store.Since(ctx, after, limit, f)
}

// LastCursor is the newest event's cursor (0 when there is none).
func (r *Receiver) LastCursor(ctx context.Context) (uint64, error) { return r.store.LastCursor(ctx) }

// Job reads a job.
func (r *Receiver) Job(ctx context.Context, id string) (Job, error) { return r.store.GetJob(ctx, id) }

// Record appends an event that did not come through HTTP (kind workflow) and notifies
// about it unless dedupeKey names an event already recorded.
func (r *Receiver) Record(ctx context.Context, ev Event, dedupeKey string) (Event, bool, error) {
	if !store.ValidKind(ev.Kind) {
		return Event{}, false, fmt.Errorf("webhook: unknown event kind %q", ev.Kind)
	}
	if ev.Time.IsZero() {
		ev.Time = r.now().UTC()
	}
	if ev.Data != nil {
		ev.Data = sanitizeMap(ev.Data, 0)
	}
	stored, dup, err := r.store.Append(ctx, ev, dedupeKey)
	if err != nil || dup {
		if dup {
			r.metrics.duplicates.Add(1)
		}
		return stored, dup, err
	}
	r.metrics.accept(stored.Kind)
	r.delivered(stored)
	return stored, false, nil
}
