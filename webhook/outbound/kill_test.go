package outbound

import (
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// TestHelperDeliverer is the child process of TestKill9MidDelivery (it does nothing in
// a normal run).
func TestHelperDeliverer(t *testing.T) {
	path, url := os.Getenv("OUTBOUND_HELPER_STORE"), os.Getenv("OUTBOUND_HELPER_URL")
	if path == "" {
		t.Skip("the child process of TestKill9MidDelivery")
	}
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Store: st, Destinations: []Destination{{URL: url, Secret: secret}}, AllowPrivate: true,
		Owner: "child", LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(ctx)
	select {} // until killed
}

// A delivering process is killed (SIGKILL) while a delivery is in flight: another
// process takes the destination over when the lease lapses and delivers everything;
// the interrupted delivery arrives again with the same webhook-id (deduped), nothing is
// lost.
func TestKill9MidDelivery(t *testing.T) {
	path := t.TempDir() + "/state.db"
	st := openStore(t, path)
	r := newReceiver(t, secret)
	d := Destination{URL: r.srv.URL, Secret: secret}
	// Register the destination at cursor 0 with a lease that has lapsed already.
	if _, err := st.(state.Outbox).ClaimDestination(ctx, d.Key(), "test", 0, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	var want []string
	for range 20 {
		want = append(want, state.WebhookID(d.Key(), appendEvent(t, st, "login_alert", 0, "", nil).ID))
	}
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var n atomic.Int32
	r.setOnHit(func(req *http.Request) int {
		if n.Add(1) == 6 {
			close(inFlight)
			<-release // the child dies while this request is open
			return http.StatusServiceUnavailable
		}
		return 0
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeliverer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OUTBOUND_HELPER_STORE="+path, "OUTBOUND_HELPER_URL="+r.srv.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child never delivered")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, lease held
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(release)
	if got := len(r.got()); got != 5 {
		t.Fatalf("%d delivered before the kill, want 5", got)
	}
	startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true, Owner: "parent", LeaseTTL: time.Second})
	eventually(t, "every event after the takeover", func() bool { return len(r.got()) == 20 })
	got := r.got()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivery %d: got %s, want %s", i, got[i], want[i])
		}
	}
}
