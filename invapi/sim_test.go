package invapi_test

// These tests drive the real client against the simulator over real HTTP.

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/schemas"
)

type simEnv struct {
	sim    *sim.Server
	clock  *sim.ManualClock
	client *invapi.Client
	logs   *bytes.Buffer
	key    string
}

func newSimEnv(t testing.TB) *simEnv {
	t.Helper()
	clock := sim.NewManualClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	s, err := sim.New(sim.Options{Clock: clock, NoPINFailDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	key, _ := s.Keys()
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(lockedWriter{&mu, logs}), zap.DebugLevel)
	c, err := invapi.New(invapi.Options{
		BaseURL:  hs.URL + "/",
		APIKey:   key,
		Resolver: invapi.CatalogResolver(schemas.Load()),
		Logger:   zap.New(core),
		Now:      clock.Now,
		Retry:    invapi.RetryPolicy{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &simEnv{sim: s, clock: clock, client: c, logs: logs, key: key}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (e *simEnv) count(module, action string) int {
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Module == module && r.Action == action {
			n++
		}
	}
	return n
}

func TestSimNestedFormArrivesAsPHPWouldParseIt(t *testing.T) {
	e := newSimEnv(t)
	_, err := e.client.Call(t.Context(), "eq", "backup_save_schedule", map[string]any{
		"id":              40101,
		"backup_schedule": map[string]any{"days": []any{"monday", "friday"}, "time": "03:00", "timezone": "UTC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	form := reqs[len(reqs)-1].Form
	if got := form["backup_schedule[days][]"]; strings.Join(got, ",") != "monday,friday" {
		t.Errorf("backup_schedule[days][] = %v (form %v)", got, form)
	}
	if form.Get("backup_schedule[time]") != "03:00" || form.Get("id") != "40101" || form.Get("action") != "backup_save_schedule" {
		t.Errorf("form = %v", form)
	}
}

func TestSimTokenExpiryFiftyConcurrentCallsOneLogin(t *testing.T) {
	e := newSimEnv(t)
	if _, err := e.client.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour) // the 1 h token is gone on both sides
	logins := e.count("auth", "login")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.client.Call(context.Background(), "eq", "show", map[string]any{"id": 40101}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.count("auth", "login") - logins; n != 1 {
		t.Errorf("%d logins after expiry, want exactly 1", n)
	}
}

func TestSimServerSideExpiryReplaysReadsOnly(t *testing.T) {
	e := newSimEnv(t)
	if _, err := e.client.Call(t.Context(), "eq", "show", map[string]any{"id": 40101}); err != nil {
		t.Fatal(err)
	}
	// invapi forgets the token before its announced expiry: a read is replayed once...
	e.sim.ExpireTokens()
	if _, err := e.client.Call(t.Context(), "eq", "status", map[string]any{"id": 40101}); err != nil {
		t.Fatalf("read after server-side expiry: %v", err)
	}
	if n := e.count("eq", "status"); n != 2 {
		t.Errorf("eq/status sent %d times, want 2 (original + one replay)", n)
	}
	// ...a write is not.
	e.sim.ExpireTokens()
	_, err := e.client.Call(t.Context(), "eq", "reboot", map[string]any{"id": 40101, "pin": e.sim.PIN()})
	if !invapi.IsAuth(err) {
		t.Fatalf("write after expiry: %v, want an auth error", err)
	}
	if n := e.count("eq", "reboot"); n != 1 {
		t.Errorf("eq/reboot sent %d times after an auth error, want 1", n)
	}
	if st, _ := e.sim.Server(40101); st.Power != "on" {
		t.Errorf("server power %s: the refused reboot ran", st.Power)
	}
}

func TestSimWritesAreNeverRetried(t *testing.T) {
	e := newSimEnv(t)
	e.sim.Inject(sim.Fault{Module: "eq", Action: "off", Kind: sim.Fault5xx})
	_, err := e.client.Call(t.Context(), "eq", "off", map[string]any{"id": 40101, "pin": e.sim.PIN()})
	if invapi.KindOf(err) != invapi.KindServer {
		t.Fatalf("err = %v, want a server error", err)
	}
	if n := e.count("eq", "off"); n != 1 {
		t.Errorf("eq/off sent %d times, want 1", n)
	}
	e.sim.Inject(sim.Fault{Module: "eq", Action: "show", Kind: sim.FaultDrop})
	if _, err := e.client.Call(t.Context(), "eq", "show", map[string]any{"id": 40101}); err != nil {
		t.Errorf("a read should survive one dropped connection: %v", err)
	}
}

func TestSimEnvelopesBecomeTypedErrors(t *testing.T) {
	e := newSimEnv(t)
	ctx := t.Context()
	_, err := e.client.Call(ctx, "eq", "show", map[string]any{"id": 99999})
	if k := invapi.KindOf(err); k != invapi.KindNotFound {
		t.Errorf("unknown server: %v (%s)", err, k)
	}
	_, err = e.client.Call(ctx, "eq", "reboot", map[string]any{"id": 40101, "pin": "0000"})
	var ie *invapi.Error
	if !errors.As(err, &ie) || ie.Kind != invapi.KindPIN || ie.Module != "eq" || ie.Action != "reboot" {
		t.Errorf("wrong PIN: %#v", err)
	}
	_, err = e.client.Call(ctx, "eq", "order_instance", map[string]any{"id": 40101, "os_id": 187, "soft_id": 49, "root_pass": "Secret-pass1", "location_name": "NL", "pin": e.sim.PIN()})
	if invapi.KindOf(err) != invapi.KindAPI || !strings.Contains(err.Error(), "not compatible") {
		t.Errorf("incompatible software: %v", err)
	}
	e.sim.Inject(sim.Fault{Kind: sim.FaultHTML, Count: 3})
	_, err = e.client.Call(ctx, "eq", "list", nil)
	if invapi.KindOf(err) != invapi.KindProtocol {
		t.Errorf("HTML body: %v", err)
	}
}

func TestSimCheckFollowsTheFiveStages(t *testing.T) {
	e := newSimEnv(t)
	resp, err := e.client.Call(t.Context(), "eq", "order_instance", map[string]any{
		"id": 40102, "os_id": 187, "root_pass": "Secret-pass1", "location_name": "NL", "pin": e.sim.PIN(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The workflows poll with their own loop (tools/workflows watchInstall); this follows
	// the simulator's stages with CheckCallback alone.
	var stages []int
	var final *invapi.CallbackStatus
	for i := 0; i < 200 && (final == nil || !final.Done); i++ {
		if final, err = e.client.CheckCallback(t.Context(), resp.Key); err != nil {
			break
		}
		if n := len(stages); final.Stage > 0 && (n == 0 || stages[n-1] != final.Stage) {
			stages = append(stages, final.Stage)
		}
		e.sim.Advance(30 * time.Second)
	}
	if err != nil || !final.Done {
		t.Fatalf("final=%+v err=%v", final, err)
	}
	if len(stages) < 3 || stages[0] > stages[len(stages)-1] {
		t.Errorf("stages seen %v", stages)
	}
}

func TestSimSecretsNeverLogged(t *testing.T) {
	e := newSimEnv(t)
	pin, rootPass := e.sim.PIN(), "Sup3r-Secret-Root"
	_, _ = e.client.Call(t.Context(), "eq", "order_instance", map[string]any{"id": 40101, "os_id": 187, "root_pass": rootPass, "location_name": "XX", "pin": pin})
	_, err := e.client.Call(t.Context(), "eq", "reboot", map[string]any{"id": 40101, "pin": "9876"})
	sess, _ := e.client.Session(t.Context())
	logs := e.logs.String()
	if !strings.Contains(logs, "order_instance") {
		t.Fatal("no debug logs captured: the test would prove nothing")
	}
	for name, secret := range map[string]string{"pin": pin, "wrong pin": "9876", "root_pass": rootPass, "api key": e.key, "token": sess.Token()} {
		if strings.Contains(logs, secret) {
			t.Errorf("%s appears in the logs", name)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s appears in an error", name)
		}
	}
}

// BenchmarkCallAgainstSim is the client's cost per call against the simulator on
// loopback, token cached: encoding, HTTP, decoding (the simulator's own work included).
func BenchmarkCallAgainstSim(b *testing.B) {
	e := newSimEnv(b)
	ctx := context.Background()
	if _, err := e.client.Login(ctx); err != nil {
		b.Fatal(err)
	}
	params := map[string]any{"id": 40101}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.client.Call(ctx, "eq", "status", params); err != nil {
			b.Fatal(err)
		}
	}
}

// Nested parameters reach the wire as PHP reads them; a write carries its PIN and is
// sent once, even when invapi fails.
func TestSimNestedParamsAndWritesOnce(t *testing.T) {
	e := newSimEnv(t)
	ctx := t.Context()
	resp, err := e.client.Call(ctx, "eq", "status", map[string]any{"id": 40101})
	if err != nil || !strings.Contains(string(resp.Body), "Chassis Power is") {
		t.Fatalf("eq/status: %v %s", err, resp.Body)
	}
	_, err = e.client.Call(ctx, "eq", "backup_save_schedule", map[string]any{
		"id": 40101, "backup_schedule": map[string]any{"days": []string{"monday", "thursday"}, "time": "03:00", "timezone": "UTC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	form := reqs[len(reqs)-1].Form
	if strings.Join(form["backup_schedule[days][]"], ",") != "monday,thursday" || form.Get("backup_schedule[timezone]") != "UTC" {
		t.Errorf("typed nested params on the wire: %v", form)
	}
	e.sim.Inject(sim.Fault{Module: "eq", Action: "reboot", Kind: sim.Fault5xx})
	if _, err := e.client.Call(ctx, "eq", "reboot", map[string]any{"id": 40101, "pin": e.sim.PIN()}); invapi.KindOf(err) != invapi.KindServer {
		t.Fatalf("reboot: %v", err)
	}
	if got := e.sim.Requests(); got[len(got)-1].Form.Get("pin") != e.sim.PIN() || e.count("eq", "reboot") != 1 {
		t.Errorf("typed reboot: pin sent=%v, sent %d times", got[len(got)-1].Form.Get("pin") != "", e.count("eq", "reboot"))
	}
}
