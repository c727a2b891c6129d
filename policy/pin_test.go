package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy"
)

// After invapi refuses the PIN, PIN calls are refused locally for the cool-down: none
// reaches invapi, nobody is asked to confirm one, and they resume afterwards.
func TestWrongPINStartsCooldown(t *testing.T) {
	const wrong = "WRONG-pin-5577"
	e := newEnv(t, envOpts{PIN: wrong, Policy: policy.Options{PINCooldown: 15 * time.Minute}})
	el := &elicitor{env: e}
	c, _ := e.connect(legacyClient, el, formOnly)

	res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
	if !res.IsError || !strings.Contains(text(res), "PIN") {
		t.Fatalf("wrong PIN: %q", text(res))
	}
	if got := e.sent("eq", "reboot"); len(got) != 1 || got[0].Form.Get("pin") != wrong {
		t.Fatalf("want one reboot with the configured PIN, got %d", len(got))
	}
	asked := len(el.requests())

	for _, tool := range []string{"eq_on", "eq_reboot", "net_get_status"} {
		res := e.call(c, tool, map[string]any{"id": 40101})
		if !res.IsError || !strings.Contains(text(res), "paused for 15m0s") {
			t.Fatalf("%s during cool-down: %q", tool, text(res))
		}
	}
	e.clock.Advance(14 * time.Minute)
	if res := e.call(c, "eq_on", map[string]any{"id": 40101}); !strings.Contains(text(res), "paused for 1m0s") {
		t.Fatalf("after 14 minutes: %q", text(res))
	}
	if len(e.sent("eq", "reboot")) != 1 || len(e.sent("eq", "on")) != 0 || len(e.sent("net", "get_status")) != 0 {
		t.Fatal("a PIN call was sent during the cool-down")
	}
	if len(el.requests()) != asked {
		t.Fatal("a human was asked to confirm a call the cool-down refuses")
	}
	// Calls without the PIN are not affected.
	if res := e.call(c, "eq_show", map[string]any{"id": 40101}); res.IsError {
		t.Fatalf("eq_show during cool-down: %s", text(res))
	}
	e.clock.Advance(61 * time.Second)
	e.call(c, "eq_on", map[string]any{"id": 40101})
	if len(e.sent("eq", "on")) != 1 {
		t.Fatal("PIN calls did not resume after the cool-down")
	}
	if st, _ := e.sim.Server(40101); st.ID == 0 {
		t.Fatal("no server")
	}
}

func TestLoadPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte(testPIN+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.LoadPIN("", file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("mode 0644 accepted: %v", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.LoadPIN("", file)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.PIN(context.Background()); got != testPIN {
		t.Fatalf("read %q", got)
	}
	for _, s := range []string{stringOf(p), stringOfV(p)} {
		if strings.Contains(s, testPIN) {
			t.Fatalf("printing the provider shows the PIN: %s", s)
		}
	}
	if _, err := policy.LoadPIN(testPIN, file); err == nil {
		t.Fatal("both sources accepted")
	}
	if p, err := policy.LoadPIN("", ""); p != nil || err != nil {
		t.Fatalf("nothing configured: %v %v", p, err)
	}
	if p, err := policy.LoadPIN(" 1234 ", ""); err != nil {
		t.Fatal(err)
	} else if got, _ := p.PIN(context.Background()); got != "1234" {
		t.Fatalf("env PIN %q", got)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := policy.LoadPIN("", empty); err == nil {
		t.Fatal("empty PIN file accepted")
	}
	if _, err := policy.LoadPIN("", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	ctx := policy.WithPIN(context.Background(), testPIN)
	if policy.PINFrom(ctx) != testPIN || policy.PINFrom(context.Background()) != "" {
		t.Fatal("WithPIN/PINFrom")
	}
}
