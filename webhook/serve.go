package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
)

// Timeouts bound how long a connection may hold the listener: slow-loris senders are cut
// off by ReadHeader/Read, stalled readers by Write, parked keep-alives by Idle.
type Timeouts struct {
	ReadHeader time.Duration // default 5s
	Read       time.Duration // whole request incl. body, default 15s
	Write      time.Duration // default 15s
	Idle       time.Duration // default 60s
	Shutdown   time.Duration // how long Shutdown waits for in-flight requests, default 15s
}

// DefaultTimeouts are the production timeouts.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 15 * time.Second,
	Idle: 60 * time.Second, Shutdown: 15 * time.Second}

// limits are t with the defaults for what is unset, and a 16 KiB header limit.
func (t Timeouts) limits() httpx.Limits {
	d := DefaultTimeouts
	or := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return v
	}
	return httpx.Limits{ReadHeader: or(t.ReadHeader, d.ReadHeader), Read: or(t.Read, d.Read), Write: or(t.Write, d.Write),
		Idle: or(t.Idle, d.Idle), Shutdown: or(t.Shutdown, d.Shutdown), MaxHeaderBytes: 16 << 10}
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: the listener closes at
// once and requests in flight (whose events are being written) finish, up to the
// shutdown timeout.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, t Timeouts) error {
	if err := httpx.Serve(ctx, ln, h, t.limits()); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}
