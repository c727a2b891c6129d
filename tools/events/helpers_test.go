package events

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// env is a receiver served over real HTTP on loopback; its address is the public URL
// unless noPublic.
type env struct {
	t   *testing.T
	r   *webhook.Receiver
	st  store.Store
	url string
}

type envOpts struct {
	cfg      webhook.Config
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
		cfg.Store = memStore(t)
	}
	if !o.noPublic {
		cfg.PublicURL = base
	}
	cfg.RateLimit = rate.Inf
	r, err := webhook.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- webhook.Serve(ctx, ln, r.Handler(), webhook.Timeouts{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		c, cc := context.WithTimeout(context.Background(), 5*time.Second)
		defer cc()
		_ = r.Close(c)
		_ = cfg.Store.Close()
	})
	return &env{t: t, r: r, st: cfg.Store, url: base}
}

func (e *env) job(serverID int64) string {
	e.t.Helper()
	u, err := e.r.NewInstallJob(context.Background(), serverID, "eq_order_instance", "sess-1", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func do(t *testing.T, method, u, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func get(t *testing.T, u string) (int, string) { return do(t, http.MethodGet, u, "", nil) }

func jobIDOf(t *testing.T, s store.Store, cbURL string) store.Job {
	t.Helper()
	h := sha256.Sum256([]byte(cbURL[strings.LastIndexByte(cbURL, '/')+1:]))
	j, err := s.JobBySecretHash(context.Background(), h[:])
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// memStore is a shared store in memory, closed when the test ends.
func memStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.OpenShared(context.Background(), state.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
