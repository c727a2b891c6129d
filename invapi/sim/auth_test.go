package sim

import (
	"testing"
	"time"
)

func TestLoginShapeAndExpiry(t *testing.T) {
	e := newEnv(t)
	acct, _ := e.sim.Keys()
	m := e.call("auth", "action", "login", "key", acct)
	r := m["result"].(map[string]any)
	tok := r["token"].(string)
	if len(tok) != 32 {
		t.Fatalf("token %q", tok)
	}
	wantKV(t, r, "token_expire", t0.Add(time.Hour).Unix())
	if perms, _ := r["permissions"].([]any); len(perms) < 100 {
		t.Fatalf("permissions: %d", len(perms))
	}
	if sv, _ := r["servers"].([]any); len(sv) != 5 {
		t.Fatalf("servers %v", r["servers"])
	}
	if bo := r["billing_options"].(map[string]any); bo["native_endpoint"] == "invapi.hostkey.com" {
		t.Fatal("sandbox must not point clients at the vendor host")
	}

	// A second login within the TTL returns the same token.
	if again := e.login(acct); again != tok {
		t.Fatalf("relogin gave a new token")
	}
	wantKV(t, e.call("eq", "action", "list", "token", tok), "result", "OK")

	e.sim.Advance(30 * time.Minute)
	// Logging in again keeps the token and moves its expiry.
	r = e.call("auth", "action", "login", "key", acct)["result"].(map[string]any)
	if r["token"] != tok {
		t.Fatal("relogin gave a new token")
	}
	wantKV(t, r, "token_expire", t0.Add(90*time.Minute).Unix())
	e.sim.Advance(59 * time.Minute)
	wantKV(t, e.call("eq", "action", "list", "token", tok), "result", "OK")
	e.sim.Advance(2 * time.Minute)
	wantErr(t, e.call("eq", "action", "list", "token", tok), -2, "Authentication required")

	// After expiry a login gives a fresh token.
	if fresh := e.login(acct); fresh == tok {
		t.Fatal("expired token reused")
	}
}

func TestLoginTTLAndFailures(t *testing.T) {
	e := newEnv(t)
	acct, _ := e.sim.Keys()
	r := e.call("auth", "action", "login", "key", acct, "ttl", "60")["result"].(map[string]any)
	wantKV(t, r, "token_expire", t0.Add(time.Minute).Unix())
	e.sim.Advance(61 * time.Second)
	wantErr(t, e.call("eq", "action", "list", "token", r["token"].(string)), -2, "Authentication required")

	// ttl cannot raise the configured TTL.
	r = e.call("auth", "action", "login", "key", acct, "ttl", "86400")["result"].(map[string]any)
	wantKV(t, r, "token_expire", e.sim.Now().Add(time.Hour).Unix())

	wantErr(t, e.call("auth", "action", "login", "key", "nope-nope"), -2, "invalid API key")
	wantErr(t, e.call("auth", "action", "login", "key", "c0ffee00deadbeef-d15abledkey00003"), -2, "disabled")
	wantErr(t, e.call("eq", "action", "list"), -2, "Authentication required")
	wantErr(t, e.call("eq", "action", "list", "token", "0123456789abcdef0123456789abcdef"), -2, "Authentication required")
}

func TestLogoutInfoAndExpireTokens(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	info := e.call("auth", "action", "info", "token", tok)["result"].(map[string]any)
	if sv := info["servers"].(map[string]any); sv["40101"] != "40101" || len(sv) != 5 {
		t.Fatalf("info servers %v", sv)
	}
	if p, _ := info["permissions"].([]any); len(p) == 0 {
		t.Fatal("no permissions")
	}
	e.call("auth", "action", "logout", "token", tok)
	wantErr(t, e.call("auth", "action", "info", "token", tok), -2, "Authentication required")

	tok = e.accountToken()
	e.sim.ExpireTokens()
	wantErr(t, e.call("eq", "action", "show", "id", "40101", "token", tok), -2, "Authentication required")

	// whmcslogin with the account's billing credentials.
	m := e.call("auth", "action", "whmcslogin", "user", e.sim.fx.account.Email, "password", e.sim.fx.account.Password)
	wtok := m["result"].(map[string]any)["token"].(string)
	wantKV(t, e.call("eq", "action", "show", "id", "40101", "token", wtok), "result", "OK")
	wantErr(t, e.call("auth", "action", "whmcslogin", "user", e.sim.fx.account.Email, "password", "wrong"), -2, "invalid user")
}

func TestPerServerKeyIsolation(t *testing.T) {
	e := newEnv(t)
	_, per := e.sim.Keys()
	key, ok := per[40101]
	if !ok {
		t.Fatal("no per-server key for 40101")
	}
	tok := e.login(key)

	list := e.call("eq", "action", "list", "token", tok)
	if ids := list["servers"].([]any); len(ids) != 1 || ids[0].(float64) != 40101 {
		t.Fatalf("per-server list %v", ids)
	}
	wantKV(t, e.call("eq", "action", "show", "id", "40101", "token", tok), "result", "OK")
	wantErr(t, e.call("eq", "action", "show", "id", "40102", "token", tok), -1, "Nothing found for 40102")
	wantErr(t, e.call("eq", "action", "reboot", "id", "40102", "pin", e.sim.PIN(), "token", tok), -1, "EQ/reboot: invalid server id")
	wantErr(t, e.call("whmcs", "action", "get_invoices", "token", tok), -1, "access denied")
	wantErr(t, e.call("eq", "action", "order_instance", "preset", "vm.mini", "location_name", "NL", "os_id", "187",
		"traffic_plan", "25", "root_pass", "Sandbox-Root1", "pin", e.sim.PIN(), "token", tok), -1, "access denied")

	// update_servers keeps the per-server view.
	us := e.call("eq", "action", "update_servers", "token", tok)
	if ids := us["servers"].([]any); len(ids) != 1 {
		t.Fatalf("update_servers %v", ids)
	}
	info := e.call("auth", "action", "info", "token", tok)["result"].(map[string]any)
	if sv := info["servers"].(map[string]any); len(sv) != 1 {
		t.Fatalf("info %v", sv)
	}
	for _, p := range info["permissions"].([]any) {
		if p == "whmcs/get_invoices" {
			t.Fatal("per-server permissions include whmcs")
		}
	}
	// Its own keys only.
	keys := e.call("api_keys", "action", "list_for_server", "server_id", "40101", "token", tok)
	if d := keys["data"].([]any); len(d) != 1 {
		t.Fatalf("keys %v", d)
	}
}
