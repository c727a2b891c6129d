package outbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// registered waits until the engine has registered d (its cursor starts at the end of
// the log then: events appended after this are delivered).
func registered(t testing.TB, st state.Store, d Destination) {
	t.Helper()
	eventually(t, "the destination to be registered", func() bool {
		all, err := st.(state.Outbox).OutboxStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Dest == d.Key() {
				return true
			}
		}
		return false
	})
}

func TestSignatureVerification(t *testing.T) {
	body := []byte(`{"type":"job.done"}`)
	now := time.Unix(1_790_000_000, 0)
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, "v0,bogus "+Sign(secret, "msg_1", now.Unix(), body))

	if id, err := Verify(secret, h, body, now.Add(time.Minute), 0); err != nil || id != "msg_1" {
		t.Fatalf("good signature: %q %v", id, err)
	}
	if _, err := Verify("whsec_"+"b3RoZXI=", h, body, now, 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := Verify(secret, h, append(body, ' '), now, 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed body: %v", err)
	}
	if _, err := Verify(secret, h, body, now.Add(6*time.Minute), 0); !errors.Is(err, ErrStale) {
		t.Fatalf("stale timestamp: %v", err)
	}
	if _, err := Verify(secret, h, body, now.Add(-6*time.Minute), 0); !errors.Is(err, ErrStale) {
		t.Fatalf("timestamp from the future: %v", err)
	}
	h2 := h.Clone()
	h2.Del(HeaderSignature)
	if _, err := Verify(secret, h2, body, now, 0); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("unsigned: %v", err)
	}
	v := Verifier{Secret: secret}
	if _, err := v.Verify(h, body, now); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(h, body, now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// The known Standard Webhooks test vector.
	if got := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`)); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("test vector: %s", got)
	}
}

// Every event reaches the destination signed, in cursor order, with the session, the
// callback URL and every secret field removed from the body; a destination's answer is
// dropped.
func TestDeliversSignedInOrderWithoutSecrets(t *testing.T) {
	st := openStore(t, "")
	r := newReceiver(t, secret)
	d := Destination{URL: r.srv.URL + "/hook", Secret: secret}
	e := startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true})
	registered(t, st, d)
	var want []string
	for i := range 20 {
		ev := appendEvent(t, st, "install_done", 40101, "eq_reinstall", map[string]any{
			"body":   map[string]any{"hostname": "web-nl-01", "os": "Ubuntu 24.04", "ip": "203.0.113.10", "root_pass": "Hunter2!x", "n": i},
			"query":  map[string]any{"token": []any{"tok-SECRET"}},
			"note":   "called back from https://mcp.example.com/cb/SECRETPATH?x=1 ok",
			"method": "POST",
		})
		want = append(want, state.WebhookID(d.Key(), ev.ID))
	}
	eventually(t, "20 deliveries", func() bool { return len(r.got()) == 20 })
	eventually(t, "the outcomes recorded", func() bool {
		s, _ := e.Status(ctx, 0)
		return s[0].Pending == 0
	})
	if got := r.got(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("order or ids:\n got %v\nwant %v", got, want)
	}
	b := string(r.body(want[3]))
	for _, s := range []string{"Hunter2", "tok-SECRET", "SECRETPATH", "mcp-session-secret", "root_pass"} {
		if strings.Contains(b, s) {
			t.Fatalf("delivered body carries %q: %s", s, b)
		}
	}
	var p Payload
	if err := json.Unmarshal(r.body(want[3]), &p); err != nil || p.Type != TypeInstallFinished || p.ServerID != 40101 ||
		!strings.Contains(b, "https://mcp.example.com/…") || !strings.Contains(b, `"n":3`) {
		t.Fatalf("payload: %+v %v\n%s", p, err, b)
	}
	var m bytes.Buffer
	e.WriteMetrics(ctx, &m)
	if !strings.Contains(m.String(), `hostkey_notify_deliveries_total{dest="`+d.Key()+`"} 20`) ||
		!strings.Contains(m.String(), `hostkey_notify_delivery_seconds_count{dest="`+d.Key()+`"} 20`) ||
		!strings.Contains(m.String(), `hostkey_notify_pending{dest="`+d.Key()+`"} 0`) {
		t.Fatalf("metrics:\n%s", m.String())
	}
	if strings.Contains(m.String(), r.srv.URL) {
		t.Fatal("metrics name the destination URL")
	}
}

func TestFilters(t *testing.T) {
	st := openStore(t, "")
	r := newReceiver(t, secret)
	d := Destination{URL: r.srv.URL, Secret: secret, Filter: Filter{Types: []string{"job", TypeApprovalRequested}, Servers: []int64{40101}, Toolsets: []string{"power"}}}
	startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true,
		ToolsetOf: func(tool string) string {
			return map[string]string{"eq_reboot": "power", "eq_reinstall": "install"}[tool]
		}})
	registered(t, st, d)
	keep := []state.Event{
		appendEvent(t, st, "workflow", 40101, "eq_reboot", map[string]any{"state": "running", "stage": 0}),
		appendEvent(t, st, "approval.requested", 40101, "eq_reboot", map[string]any{"approval_id": "A1"}),
	}
	appendEvent(t, st, "workflow", 40102, "eq_reboot", map[string]any{"state": "done"})             // other server
	appendEvent(t, st, "workflow", 40101, "eq_reinstall", map[string]any{"state": "done"})          // other toolset
	appendEvent(t, st, "approval.decided", 40101, "eq_reboot", map[string]any{"approval_id": "A1"}) // other type
	appendEvent(t, st, "login_alert", 40101, "", map[string]any{})                                  // no tool
	last := appendEvent(t, st, "workflow", 40101, "eq_reboot", map[string]any{"state": "done", "stage": 2})
	keep = append(keep, last)
	eventually(t, "the wanted events", func() bool { return len(r.got()) == len(keep) })
	// Everything up to the last event was looked at: nothing else arrives.
	eventually(t, "the cursor", func() bool {
		all, _ := st.(state.Outbox).OutboxStats(ctx)
		return len(all) == 1 && all[0].Through == last.Cursor && all[0].Pending == 0
	})
	got := r.got()
	for i, ev := range keep {
		if got[i] != state.WebhookID(d.Key(), ev.ID) {
			t.Fatalf("delivery %d is not event %d", i, ev.Cursor)
		}
	}
	var types []string
	for _, id := range got {
		var p Payload
		_ = json.Unmarshal(r.body(id), &p)
		types = append(types, p.Type)
	}
	if strings.Join(types, " ") != "job.started approval.requested job.done" {
		t.Fatalf("types %v", types)
	}
	if _, err := New(Options{Store: st, Destinations: []Destination{{URL: r.srv.URL, Secret: "x", Filter: Filter{Types: []string{"jobs"}}}}, AllowPrivate: true}); err == nil || !strings.Contains(err.Error(), `unknown event type "jobs"`) {
		t.Fatalf("bad filter: %v", err)
	}
}

func TestSlackFormat(t *testing.T) {
	st := openStore(t, "")
	r := newReceiver(t, "") // Slack's incoming webhooks do not verify
	d := Destination{URL: r.srv.URL + "/services/T000/B000/XXXXSECRET", Format: FormatSlack}
	startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true})
	registered(t, st, d)
	appendEvent(t, st, "install_done", 40101, "eq_reinstall", map[string]any{
		"body": map[string]any{"hostname": "web-nl-01", "os": "Ubuntu 24.04", "ip": "203.0.113.10"}})
	appendEvent(t, st, "approval.requested", 40101, "eq_reboot", map[string]any{"approval_id": "A1", "expires_at": "2026-11-29T16:00:00Z",
		"summary": "Reboot server 40101 (web-nl-01)\n  IPs: 203.0.113.10"})
	eventually(t, "two messages", func() bool { return len(r.got()) == 2 })
	var m map[string]string
	if err := json.Unmarshal(r.body(r.got()[0]), &m); err != nil || len(m) != 1 || m["text"] != "web-nl-01 (40101) install finished: Ubuntu 24.04, 203.0.113.10" {
		t.Fatalf("install line: %v %v", m, err)
	}
	_ = json.Unmarshal(r.body(r.got()[1]), &m)
	if m["text"] != "approval A1 requested for eq_reboot, expires 2026-11-29T16:00:00Z: Reboot server 40101 (web-nl-01) IPs: 203.0.113.10" {
		t.Fatalf("approval line: %q", m["text"])
	}
	if d.Redacted() != r.srv.URL+"/…" {
		t.Fatalf("redacted %q", d.Redacted())
	}
}

// The destination is down for 30 s (of a test clock running 100 times faster), asks for
// Retry-After: 10, then comes back: every event arrives, each webhook-id once after
// dedupe, in order, and no attempt came before the Retry-After.
func TestDestinationDownThenBack(t *testing.T) {
	st := openStore(t, "")
	clk := newScaled(100)
	r := newReceiver(t, secret)
	r.now = clk.Now
	var downUntil time.Time // 30 s after the first attempt
	var mu = make(chan struct{}, 1)
	var attempts []time.Time
	r.onHit = func(req *http.Request) int {
		now := clk.Now()
		mu <- struct{}{}
		attempts = append(attempts, now)
		if downUntil.IsZero() {
			downUntil = now.Add(30 * time.Second)
		}
		down := now.Before(downUntil)
		<-mu
		if down {
			req.Header.Set("X-Test-Retry-After", "10")
			return http.StatusServiceUnavailable
		}
		return 0
	}
	d := Destination{URL: r.srv.URL, Secret: secret}
	e := startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true, Now: clk.Now, after: clk.After,
		BaseBackoff: time.Second, MaxBackoff: time.Minute})
	registered(t, st, d)
	var want []string
	for range 50 {
		want = append(want, state.WebhookID(d.Key(), appendEvent(t, st, "login_alert", 0, "", map[string]any{}).ID))
	}
	eventually(t, "all 50 after the outage", func() bool { return len(r.got()) == 50 })
	if strings.Join(r.got(), ",") != strings.Join(want, ",") {
		t.Fatal("order lost or an id delivered twice")
	}
	mu <- struct{}{}
	defer func() { <-mu }()
	var failed []time.Time
	for _, a := range attempts {
		if a.Before(downUntil) {
			failed = append(failed, a)
		}
	}
	if len(failed) < 2 {
		t.Fatalf("only %d failed attempts during 30 s", len(failed))
	}
	for i := 1; i < len(failed); i++ {
		if gap := failed[i].Sub(failed[i-1]); gap < 10*time.Second {
			t.Fatalf("attempt %d came %s after the one before, despite Retry-After: 10", i, gap)
		}
	}
	var m bytes.Buffer
	e.WriteMetrics(ctx, &m)
	if !strings.Contains(m.String(), `hostkey_notify_retries_total{dest="`+d.Key()+`"} `+strconv.Itoa(len(failed))) {
		t.Fatalf("retries not counted (%d failed):\n%s", len(failed), m.String())
	}
}

// A delivery that keeps failing becomes a dead letter after MaxAge, and the next event
// is delivered after it.
func TestDeadLetterAfterMaxAge(t *testing.T) {
	st := openStore(t, "")
	clk := newScaled(100)
	r := newReceiver(t, secret)
	r.now = clk.Now
	first := true
	r.onHit = func(*http.Request) int {
		if first {
			return http.StatusInternalServerError
		}
		return 0
	}
	d := Destination{URL: r.srv.URL, Secret: secret}
	e := startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true, Now: clk.Now, after: clk.After,
		BaseBackoff: time.Second, MaxBackoff: 10 * time.Second, MaxAge: time.Minute})
	registered(t, st, d)
	dead := appendEvent(t, st, "login_alert", 0, "", map[string]any{})
	eventually(t, "a dead letter", func() bool {
		dl, _ := st.(state.Outbox).DeadLetters(ctx, "", 10)
		return len(dl) == 1
	})
	first = false
	next := appendEvent(t, st, "login_alert", 0, "", map[string]any{})
	eventually(t, "the next event", func() bool { return len(r.got()) == 1 })
	if r.got()[0] != state.WebhookID(d.Key(), next.ID) {
		t.Fatal("wrong event delivered")
	}
	s, err := e.Status(ctx, 5)
	if err != nil || len(s) != 1 || s[0].Dead != 1 || len(s[0].DeadLetters) != 1 || s[0].DeadLetters[0].EventID != dead.ID ||
		!strings.Contains(s[0].DeadLetters[0].Error, "HTTP 500") || strings.Contains(s[0].DeadLetters[0].Error, "diagnostics") {
		t.Fatalf("status: %+v %v", s, err)
	}
}

func TestGoneDisablesTheDestination(t *testing.T) {
	st := openStore(t, "")
	r := newReceiver(t, secret)
	r.status.Store(http.StatusGone)
	d := Destination{URL: r.srv.URL, Secret: secret}
	e := startEngine(t, Options{Store: st, Destinations: []Destination{d}, AllowPrivate: true})
	registered(t, st, d)
	appendEvent(t, st, "login_alert", 0, "", nil)
	eventually(t, "the destination disabled", func() bool {
		s, _ := e.Status(ctx, 0)
		return len(s) == 1 && strings.HasPrefix(s[0].Disabled, "410 Gone")
	})
	hits := r.hits.Load()
	appendEvent(t, st, "login_alert", 0, "", nil)
	// Give the loop every chance to misbehave: several wake-ups.
	for range 5 {
		appendEvent(t, st, "login_alert", 0, "", nil)
		time.Sleep(20 * time.Millisecond)
	}
	if r.hits.Load() != hits {
		t.Fatalf("a disabled destination got %d more requests", r.hits.Load()-hits)
	}
	if s, _ := e.Status(ctx, 0); s[0].Pending == 0 {
		t.Fatal("the undelivered events were dropped instead of kept")
	}
}

// SSRF: a private address is refused in the configuration and at dial time (a name that
// resolves to loopback); a redirect to loopback is refused; http is refused except to
// loopback.
func TestSSRFRefusals(t *testing.T) {
	st := openStore(t, "")
	for _, u := range []string{"https://10.1.2.3/hook", "https://169.254.169.254/latest", "https://[fd00::1]/x", "http://example.com/hook", "ftp://example.com/"} {
		if _, err := New(Options{Store: st, Destinations: []Destination{{URL: u, Secret: secret}}}); err == nil {
			t.Errorf("%s accepted", u)
		} else if strings.Contains(err.Error(), "/hook") || strings.Contains(err.Error(), "latest") {
			t.Errorf("the error repeats the URL's path: %v", err)
		}
	}

	// A name resolving to loopback, without --notify-allow-private: refused when dialing.
	r := newReceiver(t, secret)
	port := r.srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":"):]
	d := Destination{URL: "http://localhost" + port + "/hook", Secret: secret}
	e := startEngine(t, Options{Store: st, Destinations: []Destination{d}})
	registered(t, st, d)
	appendEvent(t, st, "login_alert", 0, "", nil)
	eventually(t, "a refused attempt", func() bool {
		s, _ := e.Status(ctx, 0)
		return len(s) == 1 && strings.Contains(s[0].LastError, "refused")
	})
	if r.hits.Load() != 0 {
		t.Fatal("the loopback destination was reached without --notify-allow-private")
	}

	// A destination "on the internet" (127.0.0.2, by the test's classifier) redirects
	// to 127.0.0.1: the redirect is refused and 127.0.0.1 never sees a request.
	st2 := openStore(t, "")
	inner := newReceiver(t, secret)
	outer := newReceiverOn(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, inner.srv.URL+"/admin", http.StatusTemporaryRedirect)
	}))
	pub := func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") }
	d2 := Destination{URL: outer.URL + "/hook", Secret: secret}
	e2 := startEngine(t, Options{Store: st2, Destinations: []Destination{d2}, public: pub})
	registered(t, st2, d2)
	appendEvent(t, st2, "login_alert", 0, "", nil)
	eventually(t, "a refused redirect", func() bool {
		s, _ := e2.Status(ctx, 0)
		return len(s) == 1 && strings.Contains(s[0].LastError, "redirect refused")
	})
	if inner.hits.Load() != 0 {
		t.Fatal("the redirect reached loopback")
	}
}
