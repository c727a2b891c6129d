package sim

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPowerStateMachine(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	pin := e.sim.PIN()
	power := func(action string, id string) map[string]any {
		return e.call("eq", "action", action, "id", id, "pin", pin, "token", tok)
	}
	state := func(id int64) string {
		st, _ := e.sim.Server(id)
		return st.Power
	}

	// 40201 starts powered off.
	if state(40201) != "off" {
		t.Fatalf("40201 power %s", state(40201))
	}
	wantErr(t, power("reboot", "40201"), -1, "Reboot request failed: server is powered off")
	m := power("on", "40201")
	wantKV(t, m, "result", "OK")
	wantKV(t, m, "scope", "Chassis Power Control: Up/On")
	if k, _ := m["key"].(string); len(k) != 32 {
		t.Fatalf("async key %v", m["key"])
	}
	wantKV(t, ctxOf(m), "id", "40201")
	wantKV(t, ctxOf(m), "location", "US")
	if state(40201) != "on" {
		t.Fatal("not on")
	}
	// The async key answers again through eq_callback/check.
	again := e.call("eq_callback", "action", "check", "key", m["key"].(string))
	wantKV(t, again, "scope", "Chassis Power Control: Up/On")

	st := e.call("eq", "action", "status", "id", "40201", "token", tok)
	wantKV(t, st, "scope", "Chassis Power is on")
	wantKV(t, power("reboot", "40201"), "scope", "Chassis Power Control: Reset")
	wantKV(t, power("off", "40201"), "scope", "Chassis Power Control: Down/Off")
	if state(40201) != "off" {
		t.Fatal("not off")
	}
	wantKV(t, e.call("eq", "action", "status", "id", "40201", "token", tok), "scope", "Chassis Power is off")
	power("on", "40201")
	// hard_off (no PIN in the catalog: only 000 documents it).
	wantKV(t, e.call("eq", "action", "hard_off", "id", "40201", "token", tok), "result", "OK")
	if state(40201) != "off" {
		t.Fatal("hard_off left it on")
	}

	// A suspended server refuses power actions; unsuspend lets them through.
	wantErr(t, power("on", "40302"), -1, "suspended")
	e.call("eq", "action", "unsuspend", "id", "40302", "token", tok)
	wantKV(t, power("on", "40302"), "result", "OK")

	// Unknown server.
	wantErr(t, power("on", "99999"), -1, "EQ/on: invalid server id")
	// Missing id, named by the catalog.
	wantErr(t, e.call("eq", "action", "on", "pin", pin, "token", tok), -1, "id required")
}

func TestPINLockout(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	pin := e.sim.PIN()
	reboot := func(p string) map[string]any {
		return e.call("eq", "action", "reboot", "id", "40101", "pin", p, "token", tok)
	}
	wantResultErr(t, e.call("eq", "action", "reboot", "id", "40101", "token", tok), "PIN code required")
	for i := 0; i < 3; i++ {
		wantResultErr(t, reboot("0000"), "Invalid pin code")
	}
	// Locked: even the right PIN fails, on every PIN action.
	wantResultErr(t, reboot(pin), "Blocked For Security Purposes")
	wantResultErr(t, e.call("nat", "action", "add_static_nat", "id", "40101", "pin", pin, "token", tok), "Blocked For Security Purposes")
	cp := e.call("eq", "action", "check_pin", "pin", pin, "token", tok)
	wantKV(t, cp, "scope", "Invalid pin code")
	wantKV(t, cp, "debug", "Blocked For Security Purposes")
	// Actions without a PIN still work.
	wantKV(t, e.call("eq", "action", "show", "id", "40101", "token", tok), "result", "OK")

	e.sim.Advance(14 * time.Minute)
	wantResultErr(t, reboot(pin), "Blocked For Security Purposes")
	e.sim.Advance(time.Minute)
	wantKV(t, reboot(pin), "result", "OK")

	// check_pin: 001's shape, failures count too.
	wantKV(t, e.call("eq", "action", "check_pin", "pin", pin, "token", tok), "scope", "Pin code is valid")
	wantKV(t, e.call("eq", "action", "check_pin", "old_pin", "1", "token", tok), "scope", "Invalid pin code")
	e.call("eq", "action", "check_pin", "pin", "2", "token", tok)
	e.call("eq", "action", "check_pin", "pin", "3", "token", tok)
	wantResultErr(t, reboot(pin), "Blocked For Security Purposes")
}

func TestPINLockoutIsSlow(t *testing.T) {
	const delay = 40 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.NoPINFailDelay = false; o.PINFailDelay = delay })
	tok := e.accountToken()
	for i := 0; i < 3; i++ {
		e.call("eq", "action", "on", "id", "40101", "pin", "9", "token", tok)
	}
	start := time.Now()
	wantResultErr(t, e.call("eq", "action", "on", "id", "40101", "pin", e.sim.PIN(), "token", tok), "Blocked")
	if el := time.Since(start); el < delay {
		t.Fatalf("locked answer took %v, want >= %v", el, delay)
	}
}

func TestSetPIN(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	old := e.sim.PIN()
	wantResultErr(t, e.call("eq", "action", "set_pin", "new_pin", "98765", "token", tok), "old_pin required")
	wantResultErr(t, e.call("eq", "action", "set_pin", "new_pin", "98765", "old_pin", "1111", "token", tok), "Invalid pin code")
	wantResultErr(t, e.call("eq", "action", "set_pin", "new_pin", "12", "old_pin", old, "token", tok), "4-10")
	wantKV(t, e.call("eq", "action", "set_pin", "new_pin", "98765", "old_pin", old, "token", tok), "result", "OK")
	if e.sim.PIN() != "98765" {
		t.Fatal("PIN not changed")
	}
	wantResultErr(t, e.call("eq", "action", "on", "id", "40101", "pin", old, "token", tok), "Invalid pin code")
	wantKV(t, e.call("eq", "action", "on", "id", "40101", "pin", "98765", "token", tok), "result", "OK")
}

func TestListShowSearch(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	ids := func(m map[string]any) []int64 {
		var out []int64
		for _, x := range m["servers"].([]any) {
			out = append(out, int64(x.(float64)))
		}
		return out
	}
	if got := ids(e.call("eq", "action", "list", "token", tok)); len(got) != 5 {
		t.Fatalf("list %v", got)
	}
	if got := ids(e.call("eq", "action", "list", "location", "FI,US", "token", tok)); len(got) != 3 {
		t.Fatalf("list FI,US %v", got)
	}
	if got := ids(e.call("eq", "action", "list", "location[]", "NL", "status", "rent", "token", tok)); len(got) != 2 {
		t.Fatalf("list NL %v", got)
	}
	if got := ids(e.call("eq", "action", "list", "ip", "198.51.100.10", "token", tok)); len(got) != 1 || got[0] != 40201 {
		t.Fatalf("list ip %v", got)
	}
	srch := e.call("eq", "action", "search", "params[location][]", "NL", "params[group][]", "VPS", "token", tok)
	rows := srch["servers"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["hostname"] != "db-nl-02.example" {
		t.Fatalf("search %v", rows)
	}
	us := e.call("eq", "action", "unified_server_search", "query", "gpu-us", "token", tok)
	if r := us["results"].(map[string]any)["servers"].([]any); len(r) != 1 {
		t.Fatalf("unified %v", r)
	}

	show := e.call("eq", "action", "show", "id", "40101", "token", tok)
	sd := show["server_data"].(map[string]any)
	wantKV(t, sd, "Condition_Component", "rent")
	wantKV(t, sd, "status", "rent")
	if ip := show["IP"].([]any)[0].(map[string]any); ip["IP"] != "203.0.113.10" || ip["main_ip"].(float64) != 1 {
		t.Fatalf("IP %v", ip)
	}
	if ipmi := show["IPMI"].(map[string]any); ipmi["model"] != "supermicro" {
		t.Fatalf("IPMI %v", ipmi)
	}
	wantKV(t, show["location"].(map[string]any), "dc_location", "NL")
	wantKV(t, show, "preset", "bm.v1-mini")
	found := false
	for _, tg := range show["tags"].([]any) {
		m := tg.(map[string]any)
		found = found || (m["tag"] == "hostname" && m["value"] == "web-nl-01.example")
	}
	if !found {
		t.Fatal("hostname tag missing")
	}
	wantErr(t, e.call("eq", "action", "show", "id", "12345", "token", tok), -1, "Nothing found for 12345")
}

func TestPTRTagsAndKeys(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	wantKV(t, e.call("ip", "action", "get_ptr", "id", "40101", "ip", "203.0.113.10", "token", tok), "message", "web-nl-01.example")
	wantErr(t, e.call("ip", "action", "update_ptr", "id", "40102", "ip", "203.0.113.10", "ptr", "x.example", "token", tok), -1,
		"IP 203.0.113.10 is not assigned for server 40102")
	wantKV(t, e.call("ip", "action", "update_ptr", "id", "40101", "ip", "203.0.113.10", "ptr", "www.example", "token", tok), "result", "OK")
	st, _ := e.sim.Server(40101)
	if st.PTR["203.0.113.10"] != "www.example" {
		t.Fatalf("ptr %v", st.PTR)
	}

	wantKV(t, e.call("tags", "action", "add", "id", "40101", "tag", "owner", "value", "alice", "token", tok), "result", "OK")
	st, _ = e.sim.Server(40101)
	if st.Tags["owner"] != "alice" {
		t.Fatalf("tags %v", st.Tags)
	}
	e.call("tags", "action", "remove", "id", "40101", "tag", "owner", "token", tok)
	st, _ = e.sim.Server(40101)
	if _, ok := st.Tags["owner"]; ok {
		t.Fatal("tag not removed")
	}

	add := e.call("api_keys", "action", "add", "params[name]", "ci", "params[login_notify_method]", "none", "params[active]", "1", "token", tok)
	d := add["data"].(map[string]any)
	newKey := d["api_key"].(string)
	if !strings.Contains(newKey, "-") || d["token_view"] != newKey[:4] {
		t.Fatalf("add %v", d)
	}
	ntok := e.login(newKey)
	id := int64(d["id"].(float64))
	e.call("api_keys", "action", "delete", "id", itoa(id), "token", tok)
	wantErr(t, e.call("eq", "action", "list", "token", ntok), -2, "Authentication required")
	wantErr(t, e.call("auth", "action", "login", "key", newKey), -2, "invalid API key")
	// Missing required params are named (catalog marks params[name] required).
	wantErr(t, e.call("api_keys", "action", "add", "params[login_notify_method]", "none", "params[active]", "1", "token", tok), -1, "params[name] required")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCancellationAndInvoices(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	inv := e.call("whmcs", "action", "get_invoices", "token", tok)
	list := inv["invoices"].(map[string]any)["invoice"].([]any)
	if len(list) != 5 || inv["result"] != "success" {
		t.Fatalf("invoices %v", inv)
	}
	rel := e.call("whmcs", "action", "get_related_invoices", "id", "40302", "token", tok)["invoices"].([]any)
	if len(rel) != 1 || rel[0].(map[string]any)["status"] != "Unpaid" {
		t.Fatalf("related %v", rel)
	}
	wantKV(t, e.call("whmcs", "action", "apply_credit", "invoice_id", "23451", "amount", "35", "token", tok), "result", "success")
	wantKV(t, e.call("whmcs", "action", "get_invoice", "invoice_id", "23451", "token", tok), "status", "Paid")

	wantKV(t, e.call("whmcs", "action", "request_cancellation", "id", "40102", "cancellation_type", "1", "token", tok), "result", "success")
	wantKV(t, e.call("whmcs", "action", "request_cancellation", "id", "40102", "cancellation_type", "1", "token", tok), "result", "error")
	wantKV(t, e.call("eq", "action", "show", "id", "40102", "token", tok)["server_data"].(map[string]any), "status", "rent")
	e.sim.Advance(sd)
	wantKV(t, e.call("eq", "action", "show", "id", "40102", "token", tok)["server_data"].(map[string]any), "status", "cancelled")

	// A cancellation at the end of the period can be withdrawn.
	e.call("whmcs", "action", "request_cancellation", "id", "40301", "cancellation_type", "0", "token", tok)
	if r := e.call("whmcs", "action", "get_cancellation_requests", "token", tok)["requests"].([]any); len(r) != 2 {
		t.Fatalf("requests %v", r)
	}
	wantKV(t, e.call("whmcs", "action", "delete_cancellation_request", "id", "40301", "token", tok), "result", "success")
}
