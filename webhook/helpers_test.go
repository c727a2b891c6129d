package webhook

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// stores runs f on the shared store in memory and in a SQLite file (as hostkey-mcp
// runs), whose path finds the job inside the completing write.
func stores(t *testing.T, f func(t *testing.T, o envOpts)) {
	for _, k := range []struct {
		name string
		o    envOpts
	}{{"memory", envOpts{}}, {"sqlite", envOpts{sqlite: true}}} {
		t.Run(k.name, func(t *testing.T) { f(t, k.o) })
	}
}

// env is a receiver served over real HTTP on loopback.
type env struct {
	t      *testing.T
	r      *Receiver
	st     store.Store
	url    string // base URL of the listener (also the public URL unless set)
	cancel context.CancelFunc
	done   chan error
}

type envOpts struct {
	cfg      Config
	sqlite   bool // a SQLite file rather than memory
	timeouts Timeouts
	noPublic bool
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := o.cfg
	if cfg.Store == nil {
		target := state.Memory
		if o.sqlite {
			target = filepath.Join(t.TempDir(), state.FileName)
		}
		cfg.Store = sharedStore(t, target)
	}
	if cfg.PublicURL == "" && !o.noPublic {
		cfg.PublicURL = base
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = rate.Inf
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, r: r, st: cfg.Store, url: base, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- Serve(ctx, ln, r.Handler(), o.timeouts) }()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Error("server did not shut down")
	}
	ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
	defer c()
	_ = e.r.Close(ctx)
	_ = e.st.Close()
}

func (e *env) job(serverID int64, ips ...string) string {
	e.t.Helper()
	u, err := e.r.NewInstallJob(context.Background(), serverID, "eq_order_instance", "sess-1", ips)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, method, u, contentType string, body io.Reader, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func get(t *testing.T, u string) (int, string) { return do(t, http.MethodGet, u, "", nil) }

func events(t *testing.T, s store.Store) []store.Event {
	t.Helper()
	p, err := s.Since(context.Background(), 0, 100000, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

func jobIDOf(t *testing.T, s store.Store, cbURL string) store.Job {
	t.Helper()
	secret := cbURL[strings.LastIndexByte(cbURL, '/')+1:]
	j, err := s.JobBySecretHash(context.Background(), sum(secret))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
