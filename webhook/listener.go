package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The webhook listener's address is held by one process at a time. Every process of a
// store answers /healthz with these headers, so a process that finds the port taken can
// tell a sibling on the same store (wait and take the port over when it goes) from
// anything else (an error at start).
const (
	HeaderStore = "Hostkey-Mcp-Store" // the store's identity (random, stored once)
	HeaderPID   = "Hostkey-Mcp-Pid"   // the process holding the listener
)

const identitySecretName = "store_identity"

// Identity names the store this receiver writes to: equal in every process on it.
func (r *Receiver) Identity() string { return r.identity }

// Holder is what answers on a webhook address.
type Holder struct {
	Identity string // "" when the answer is not a hostkey-mcp's
	PID      int
}

// ProbeHolder asks what serves addr through its /healthz. An error means nothing
// answered HTTP there.
func ProbeHolder(ctx context.Context, addr string) (Holder, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Holder{}, err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return Holder{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Holder{}, err
	}
	resp.Body.Close()
	pid, _ := strconv.Atoi(resp.Header.Get(HeaderPID))
	return Holder{Identity: resp.Header.Get(HeaderStore), PID: pid}, nil
}

// ListenerState tells who serves the webhook address, as this process knows it.
type ListenerState struct {
	Addr      string
	Held      bool // by this process
	HolderPID int  // the sibling holding it while this process stands by (0: unknown)
	Since     time.Time
}

// SharedListener serves the receiver's routes on one address for every process of a
// store: the first binds it, the others stand by and bind it when it frees.
type SharedListener struct {
	addr  string
	retry time.Duration
	log   *zap.Logger
	done  chan struct{}

	mu    sync.Mutex
	state ListenerState
}

// State returns who holds the address.
func (l *SharedListener) State() ListenerState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Done is closed when the listener has stopped (ctx ended and requests finished).
func (l *SharedListener) Done() <-chan struct{} { return l.done }

// ServeShared binds addr and serves h until ctx ends. When another hostkey-mcp on the
// same store (identity) holds the address, it stands by, trying the bind every retry
// (default 500ms), and takes the address over when the holder goes. Anything else on the
// address, or an address that cannot be bound, is an error before anything is served.
func ServeShared(ctx context.Context, addr, identity string, h http.Handler, log *zap.Logger, retry time.Duration) (*SharedListener, error) {
	if retry <= 0 {
		retry = 500 * time.Millisecond
	}
	if log == nil {
		log = zap.NewNop()
	}
	l := &SharedListener{addr: addr, retry: retry, log: log, done: make(chan struct{})}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("webhook: listen %s: %w", addr, err)
		}
		holder, perr := ProbeHolder(ctx, addr)
		switch {
		case perr != nil:
			return nil, fmt.Errorf("webhook: --webhook-listen %s is in use by a program that does not answer HTTP (%v): choose another address or stop it", addr, perr)
		case holder.Identity == "":
			return nil, fmt.Errorf("webhook: --webhook-listen %s is in use by a program that is not hostkey-mcp: choose another address or stop it", addr)
		case holder.Identity != identity:
			return nil, fmt.Errorf("webhook: --webhook-listen %s is held by a hostkey-mcp (pid %d) on another data dir or store: its callbacks would not reach this store; use another address or the same --data-dir", addr, holder.PID)
		}
		l.state = ListenerState{Addr: addr, HolderPID: holder.PID, Since: time.Now()}
		log.Info("webhook listener: held by another hostkey-mcp on this store; standing by to take it over when it goes",
			zap.String("addr", addr), zap.Int("holder_pid", holder.PID))
	} else {
		l.held(ln, false)
	}
	go l.run(ctx, ln, h)
	return l, nil
}

func (l *SharedListener) held(_ net.Listener, takeover bool) {
	l.mu.Lock()
	l.state = ListenerState{Addr: l.addr, Held: true, HolderPID: os.Getpid(), Since: time.Now()}
	l.mu.Unlock()
	if takeover {
		l.log.Info("webhook listener: took over the address from the process that held it", zap.String("addr", l.addr))
	} else {
		l.log.Info("webhook listener: held by this process", zap.String("addr", l.addr))
	}
}

func (l *SharedListener) run(ctx context.Context, ln net.Listener, h http.Handler) {
	defer close(l.done)
	if ln == nil {
		t := time.NewTicker(l.retry)
		defer t.Stop()
		for ln == nil {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var err error
			if ln, err = net.Listen("tcp", l.addr); err == nil {
				l.held(ln, true)
			}
		}
	}
	if err := Serve(ctx, ln, h, DefaultTimeouts); err != nil {
		l.log.Error("webhook listener stopped", zap.Error(err))
	}
}
