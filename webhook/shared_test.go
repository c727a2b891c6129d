package webhook

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
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

// Events accepted by one process reach the notifier (the MCP sessions) of every other
// process on the same store: each follows the event log by cursor (issue "Processes are
// replicas"). The install callback also wakes WaitJob in the process whose workflow
// waits for it, though another process's listener received it.
func TestEventsFollowedAcrossProcesses(t *testing.T) {
	eventsFollowed(t, filepath.Join(t.TempDir(), state.FileName))
}

func TestEventsFollowedAcrossProcessesPostgres(t *testing.T) {
	eventsFollowed(t, statetest.PostgresURL(t))
}

func eventsFollowed(t *testing.T, path string) {
	ctx := context.Background()
	got := make(chan Event, 16)
	holder := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path)}})
	other := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path), PublicURL: holder.url,
		Notifier: NotifierFunc(func(_ context.Context, ev Event) { got <- ev })}})
	// The other process creates the job (its workflow), the holder's listener gets the call.
	cb := other.job(40101)
	waited := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		j, err := other.r.WaitJob(wctx, jobIDOf(t, other.st, cb).ID)
		if err == nil && j.State != store.JobDone {
			err = fmt.Errorf("job state %s", j.State)
		}
		waited <- err
	}()
	if st, body := get(t, cb); st != 200 {
		t.Fatalf("callback: %d %s", st, body)
	}
	select {
	case ev := <-got:
		if ev.Kind != store.KindInstallDone || ev.ServerID != 40101 {
			t.Fatalf("notified %s for server %d", ev.Kind, ev.ServerID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other process's sessions were never notified of the callback")
	}
	if err := <-waited; err != nil {
		t.Fatalf("WaitJob in the other process: %v", err)
	}
	// Each event once: a Record in the other process is notified there once too.
	if _, _, err := other.r.Record(ctx, Event{Kind: "workflow", ServerID: 40101, Data: map[string]any{"state": "running"}}, "k1"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Kind != "workflow" {
			t.Fatalf("notified %s, want workflow", ev.Kind)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("own Record not notified")
	}
	select {
	case ev := <-got:
		t.Fatalf("notified twice: %s %s", ev.Kind, ev.ID)
	case <-time.After(300 * time.Millisecond):
	}
}
