package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Limits bound how long a connection may hold a server: slow-loris senders are cut off
// by ReadHeader/Read, stalled readers by Write, parked keep-alives by Idle. A zero
// duration is no limit (net/http's meaning): a server with long-lived streams (SSE) has
// no Write limit.
type Limits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int // 0: net/http's default (1 MiB)
	// Shutdown is how long Serve lets requests in flight finish once ctx ends; what is
	// still open then is closed. 0 closes at once.
	Shutdown time.Duration
}

// ErrForcedClose: connections were still open when the shutdown grace period ended and
// were closed.
var ErrForcedClose = errors.New("connections still open after the shutdown grace period were closed")

// NewServer returns an *http.Server for h with the limits.
func NewServer(h http.Handler, l Limits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Serve serves h on ln until ctx ends, then stops: the listener closes at once and
// requests in flight finish, up to l.Shutdown. A requested stop returns nil, or an error
// wrapping ErrForcedClose when connections had to be cut.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, l Limits) error {
	hs := NewServer(h, l)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		if l.Shutdown <= 0 {
			_ = hs.Close()
			<-errc
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), l.Shutdown)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
			<-errc
			return fmt.Errorf("%w (%v)", ErrForcedClose, err)
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

// Start is Serve in the background for a listener that lives as long as its owner:
// stop ends it and waits. A failure other than the requested stop (connections cut at
// the stop included) goes to onErr.
func Start(ln net.Listener, h http.Handler, l Limits, onErr func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Serve(ctx, ln, h, l); err != nil && !errors.Is(err, ErrForcedClose) && onErr != nil {
			onErr(err)
		}
	}()
	return func() { cancel(); <-done }
}
