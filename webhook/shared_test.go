package webhook

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

func sharedStore(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s := store.NewShared(st)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// `login-alerts` run while a server runs on the same data dir: both open the one store,
// so the URL the CLI points the key at is one the running server accepts, and a later
// rotation by either is honoured by the other (issue "Processes are replicas").
func TestLoginAlertsAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), state.FileName)
	server := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path)}})
	cli := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path), PublicURL: server.url}})
	lu, err := cli.r.LoginAlertURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, body := get(t, lu+"?ip=198.51.100.7"); st != 200 {
		t.Fatalf("the running server answered %d to the URL the CLI handed out: %s", st, body)
	}
	if err := cli.r.RotateLoginToken(ctx); err != nil {
		t.Fatal(err)
	}
	lu2, _ := cli.r.LoginAlertURL(ctx)
	if st, _ := get(t, lu2+"?ip=198.51.100.8"); st != 200 {
		t.Fatalf("the running server answered %d after the CLI rotated the token", st)
	}
	if st, _ := get(t, lu+"?ip=198.51.100.9"); st != 404 {
		t.Fatalf("the old URL still works after rotation: %d", st)
	}
	// Both processes see both alerts.
	for _, e := range []*env{server, cli} {
		if evs := events(t, e.st); len(evs) != 2 {
			t.Fatalf("%d events, want 2", len(evs))
		}
	}
}
