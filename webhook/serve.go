package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
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

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	if t.ReadHeader <= 0 {
		t.ReadHeader = d.ReadHeader
	}
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	if t.Shutdown <= 0 {
		t.Shutdown = d.Shutdown
	}
	return t
}

// NewHTTPServer returns an *http.Server for h with the timeouts and a 16 KiB header limit.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
	}
}

// ListenAndServe serves h on addr with DefaultTimeouts until ctx ends, then shuts down
// gracefully: the listener closes at once and requests in flight (whose events are being
// written) finish, up to the shutdown timeout.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook: listen %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, DefaultTimeouts)
}

// Serve is ListenAndServe on an existing listener with explicit timeouts.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, t Timeouts) error {
	t = t.withDefaults()
	hs := NewHTTPServer(h, t)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), t.Shutdown)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
			return fmt.Errorf("webhook: shutdown: %w", err)
		}
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
