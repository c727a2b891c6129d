package invapi

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy governs retries of read-only requests on network errors, timeouts, HTTP
// 429 and 5xx (the public Terraform provider's policy). Writes are never retried: a
// write that timed out may well have been applied.
type RetryPolicy struct {
	Attempts      int           // total tries, default 3; 1 disables retries
	Initial       time.Duration // first backoff, default 300ms, doubling
	Max           time.Duration // backoff cap, default 8s
	MaxRetryAfter time.Duration // Retry-After is honoured up to this, default 30s
	// Sleep waits d or until ctx is done; tests inject it. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.Initial <= 0 {
		p.Initial = 300 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 8 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 30 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

// delay is the wait before try attempt+1: exponential with "equal jitter" (half fixed,
// half random) so parallel clients spread out, or the server's Retry-After if longer.
func (p RetryPolicy) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	d = half + rand.N(half+1)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, p.MaxRetryAfter))
	}
	return d
}

func (p RetryPolicy) sleep(ctx context.Context, d time.Duration) error { return p.Sleep(ctx, d) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
