package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const sd = 4 * time.Minute // default StageDuration

type receiver struct {
	hits atomic.Int32
	srv  *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (e *env) reinstallByOrder(tok string, id string, extra ...string) map[string]any {
	kv := []string{"action", "order_instance", "id", id, "os_id", "187", "root_pass", "Sandbox-Root1", "location_name", "NL",
		"pin", e.sim.PIN(), "token", tok}
	return e.call("eq", append(kv, extra...)...)
}

func TestOrderInstanceReinstallErrors(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	pin := e.sim.PIN()

	// location_name is mandatory on reinstall (003).
	m := e.call("eq", "action", "order_instance", "id", "40101", "os_id", "187", "root_pass", "Sandbox-Root1", "pin", pin, "token", tok)
	wantResultErr(t, m, "location_name")
	wantResultErr(t, m, "Ubuntu 22.04 (#187) is not compatible with location")
	// Another location is wrong too.
	wantResultErr(t, e.call("eq", "action", "order_instance", "id", "40101", "os_id", "187", "root_pass", "Sandbox-Root1",
		"location_name", "US", "pin", pin, "token", tok), "location 'US'")

	// Incompatible extra software: the docs' exact message.
	wantResultErr(t, e.reinstallByOrder(tok, "40101", "soft_id", "49"),
		"reinstall: extra software Odoo (#49) is not compatible with Ubuntu 22.04")
	// Weak root password.
	wantResultErr(t, e.call("eq", "action", "order_instance", "id", "40101", "os_id", "187", "root_pass", "short#", "location_name", "NL",
		"pin", pin, "token", tok), "root_pass")
	// Windows VM image on a bare-metal server.
	wantResultErr(t, e.call("eq", "action", "order_instance", "id", "40101", "os_id", "202", "root_pass", "Sandbox-Root1", "location_name", "NL",
		"pin", pin, "token", tok), "not available for bm")

	// A reinstall while one runs: "previous reinstall not finished".
	ok1 := e.reinstallByOrder(tok, "40101")
	wantKV(t, ok1, "result", "OK")
	wantKV(t, ok1, "id", 40101)
	if cb, _ := ok1["callback"].(string); len(cb) != 32 {
		t.Fatalf("callback %v", ok1)
	}
	wantResultErr(t, e.reinstallByOrder(tok, "40101"), "previous reinstall of server 40101 is not finished")
	wantResultErr(t, e.call("eq", "action", "reinstall", "id", "40101", "token", tok), "not finished")
	// Power actions wait for the install.
	wantErr(t, e.call("eq", "action", "reboot", "id", "40101", "pin", pin, "token", tok), -1, "being reinstalled")

	// root_pass is required by the catalog.
	wantErr(t, e.call("eq", "action", "order_instance", "id", "40102", "pin", pin, "token", tok), -1, "root_pass required")
}

func TestInstallStagesAndCallback(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	tok := e.accountToken()
	m := e.reinstallByOrder(tok, "40101", "os_id", "219", "soft_id", "18", "hostname", "web-nl-01b.example",
		"post_install_callback", rcv.srv.URL+"/done?server=40101")
	key := m["callback"].(string)
	wantKV(t, m, "soft_name", "Grafana")

	check := func() map[string]any { return e.call("eq_callback", "action", "check", "key", key) }
	for stage := 1; stage <= 5; stage++ {
		c := check()
		wantKV(t, c, "result", "Stage")
		if sc := c["scope"].(string); !strings.Contains(sc, "("+string(rune('0'+stage))+"/5)") {
			t.Fatalf("stage %d: scope %q", stage, sc)
		}
		if _, hasIP := ctxOf(c)["ip"]; hasIP {
			t.Fatal("context carries ip before the end (clients read that as done)")
		}
		st, _ := e.sim.Server(40101)
		if !st.Installing || st.Stage != stage {
			t.Fatalf("state %+v", st)
		}
		if rcv.hits.Load() != 0 {
			t.Fatal("callback before completion")
		}
		e.sim.Advance(sd)
	}
	// Advance returned after running the completion and its callback.
	if got := rcv.hits.Load(); got != 1 {
		t.Fatalf("callback hits %d, want 1", got)
	}
	done := check()
	wantKV(t, done, "result", "OK")
	wantKV(t, done, "scope", "deploy_done")
	wantKV(t, ctxOf(done), "ip", "203.0.113.10")
	wantKV(t, ctxOf(done), "id", "40101")
	// The key is gone once its final answer was read.
	wantErr(t, check(), -1, "AsyncKey "+key+" not found")

	st, _ := e.sim.Server(40101)
	if st.Installing || st.OSName != "Ubuntu 24.04" || st.Hostname != "web-nl-01b.example" || st.Installs != 1 || st.BootDev != "disk" {
		t.Fatalf("after install %+v", st)
	}
	if len(st.Callbacks) != 1 || st.Callbacks[0].Status != http.StatusNoContent || st.Callbacks[0].Err != "" ||
		!strings.HasSuffix(st.Callbacks[0].URL, "/done?server=40101") {
		t.Fatalf("callbacks %+v", st.Callbacks)
	}
	e.sim.Advance(time.Hour)
	if got := rcv.hits.Load(); got != 1 {
		t.Fatalf("callback hits %d after more time", got)
	}
	// Power actions work again (a fresh token: an hour of sim time passed).
	tok = e.accountToken()
	wantKV(t, e.call("eq", "action", "reboot", "id", "40101", "pin", e.sim.PIN(), "token", tok), "result", "OK")
	if st, _ := e.sim.Server(40101); st.Installing {
		t.Fatal("reboot after an order_instance reinstall started another install")
	}
}

func TestCallbackFailureRecorded(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	e.reinstallByOrder(tok, "40101", "post_install_callback", "http://127.0.0.1:1/unreachable")
	e.sim.Advance(5 * sd)
	st, _ := e.sim.Server(40101)
	if len(st.Callbacks) != 1 || st.Callbacks[0].Err == "" || st.Callbacks[0].Status != 0 {
		t.Fatalf("callbacks %+v", st.Callbacks)
	}
}

func TestPXEReinstallAndSurprise(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	tok := e.accountToken()
	pin := e.sim.PIN()
	eq := func(kv ...string) map[string]any {
		return e.call("eq", append(kv, "token", tok)...)
	}

	r := eq("action", "reinstall", "id", "40101")
	key := r["key"].(string)
	c := e.call("eq_callback", "action", "check", "reinstall_key", key)
	wantKV(t, c, "result", "Not ready")

	wantErr(t, eq("action", "create_pxe", "id", "40101", "os_id", "187", "root_pass", "Sandbox-Root1", "reinstall_key", "bogus", "pin", pin), -1,
		"invalid reinstall_key")
	cp := eq("action", "create_pxe", "id", "40101", "os_id", "210", "root_pass", "Sandbox-Root1", "hostname", "pxe.example",
		"reinstall_key", key, "post_install_callback", rcv.srv.URL, "pin", pin)
	wantKV(t, cp, "key", key)
	wantErr(t, eq("action", "boot_dev", "id", "40101", "media", "floppy", "pin", pin), -1, "invalid media")
	wantKV(t, eq("action", "boot_dev", "id", "40101", "media", "pxe", "pin", pin), "result", "OK")
	// Nothing happens before the reboot.
	e.sim.Advance(30 * time.Minute)
	wantKV(t, e.call("eq_callback", "action", "check", "key", key), "result", "Not ready")

	eq("action", "reboot", "id", "40101", "pin", pin)
	c = e.call("eq_callback", "action", "check", "key", key)
	wantKV(t, c, "result", "Stage")
	wantKV(t, c, "scope", " (1/5) OS installation started")
	wantKV(t, ctxOf(c), "action", "reinstall")
	e.sim.Advance(5 * sd)
	tok = e.accountToken()
	wantKV(t, e.call("eq_callback", "action", "check", "key", key), "scope", "deploy_done")
	st, _ := e.sim.Server(40101)
	if st.OSName != "Debian 12" || st.Hostname != "pxe.example" || !st.PXE || st.BootDev != "pxe" || rcv.hits.Load() != 1 {
		t.Fatalf("after PXE install %+v hits %d", st, rcv.hits.Load())
	}

	// clear_pxe forgotten, boot_dev still pxe: the next reboot reinstalls the server.
	eq("action", "reboot", "id", "40101", "pin", pin)
	st, _ = e.sim.Server(40101)
	if !st.Installing || st.Surprise != 1 || st.Stage != 1 {
		t.Fatalf("no surprise reinstall: %+v", st)
	}
	show := eq("action", "show", "id", "40101")
	if show["reinstall"] != st.InstallKey || st.InstallKey == key {
		t.Fatalf("show reinstall %v, key %s", show["reinstall"], st.InstallKey)
	}
	e.sim.Advance(5 * sd)
	if got := rcv.hits.Load(); got != 2 {
		t.Fatalf("callback hits %d after the surprise reinstall", got)
	}

	// Doing it right: boot from disk and clear the PXE config; reboots are plain again.
	eq("action", "boot_dev", "id", "40101", "media", "disk", "pin", pin)
	eq("action", "clear_pxe", "id", "40101", "hostname", "pxe.example")
	eq("action", "reboot", "id", "40101", "pin", pin)
	st, _ = e.sim.Server(40101)
	if st.Installing || st.PXE || st.Surprise != 1 || st.Installs != 2 {
		t.Fatalf("after clear_pxe %+v", st)
	}
	// Even boot_dev pxe alone does nothing without a config.
	eq("action", "boot_dev", "id", "40101", "media", "pxe", "pin", pin)
	eq("action", "reboot", "id", "40101", "pin", pin)
	if st, _ = e.sim.Server(40101); st.Installing {
		t.Fatal("install without PXE config")
	}
}

func TestAbortReinstall(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	tok := e.accountToken()
	key := e.reinstallByOrder(tok, "40102", "os_id", "187", "location_name", "NL", "post_install_callback", rcv.srv.URL)["callback"].(string)
	e.sim.Advance(sd)
	wantKV(t, e.call("eq", "action", "abort_reinstall", "id", "40102", "token", tok), "result", "OK")
	c := e.call("eq_callback", "action", "check", "key", key)
	wantKV(t, c, "result", "Error")
	wantKV(t, c, "scope", "cancelled")
	e.sim.Advance(time.Hour)
	if rcv.hits.Load() != 0 {
		t.Fatal("callback after abort")
	}
	tok = e.accountToken()
	st, _ := e.sim.Server(40102)
	if st.Installing || st.Installs != 0 || st.OSName != "Debian 12" {
		t.Fatalf("after abort %+v", st)
	}
	wantErr(t, e.call("eq", "action", "abort_reinstall", "id", "40102", "token", tok), -1, "no reinstall in progress")
}

func TestOrderNewServer(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	tok := e.accountToken()
	pin := e.sim.PIN()
	order := func(kv ...string) map[string]any {
		base := []string{"action", "order_instance", "deploy_period", "monthly", "deploy_notify", "true", "pin", pin, "root_pass", "Sandbox-Root1", "token", tok}
		return e.call("eq", append(base, kv...)...)
	}
	wantResultErr(t, order("preset", "vm.nano", "location_name", "NL", "os_id", "187", "traffic_plan", "25"), "unknown preset")
	wantResultErr(t, order("preset", "vm.medium", "location_name", "US", "os_id", "187", "traffic_plan", "25"), "not available in location US")
	wantResultErr(t, order("preset", "vm.mini", "location_name", "NL", "os_id", "187", "soft_id", "49", "traffic_plan", "25"),
		"reinstall: extra software Odoo (#49) is not compatible with Ubuntu 22.04")
	wantResultErr(t, order("preset", "vm.mini", "location_name", "NL", "os_id", "187", "traffic_plan", "41"), "traffic plan")
	wantResultErr(t, order("preset", "vgpu.v1-mini", "location_name", "NL", "os_id", "187", "traffic_plan", "25"), "out of stock")
	wantErr(t, order("preset", "vm.mini", "location_name", "XX", "os_id", "187", "traffic_plan", "25"), -1, "invalid location_name")

	m := order("preset", "109", "location_name", "NL", "os_id", "180", "soft_id", "20", "traffic_plan", "25", "hostname", "blog.example",
		"post_install_callback", rcv.srv.URL)
	wantKV(t, m, "result", "OK")
	wantKV(t, m, "id", 0)
	wantKV(t, m, "status", "Paid")
	inv := int64(m["invoice"].(float64))
	key := m["callback"].(string)

	// update_servers exposes the deploy key by invoice.
	us := e.call("eq", "action", "update_servers", "token", tok)
	dk := us["deploy_keys"].(map[string]any)
	if dk[itoa(inv)] != key {
		t.Fatalf("deploy_keys %v", dk)
	}
	c := e.call("eq_callback", "action", "check", "key", key)
	wantKV(t, c, "result", "Stage")
	wantKV(t, ctxOf(c), "action", "deploy")
	newID := ctxOf(c)["id"].(string)

	// Not visible before delivery.
	wantErr(t, e.call("eq", "action", "show", "id", newID, "token", tok), -1, "Nothing found")
	e.sim.Advance(5 * sd)
	if rcv.hits.Load() != 1 {
		t.Fatalf("callback hits %d", rcv.hits.Load())
	}
	done := e.call("eq_callback", "action", "check", "key", key)
	wantKV(t, done, "scope", "deploy_done")
	if ctxOf(done)["ip"] == "" {
		t.Fatal("no ip in final context")
	}
	// Delivered, but the token sees it only after update_servers (001).
	wantErr(t, e.call("eq", "action", "show", "id", newID, "token", tok), -1, "Nothing found")
	us = e.call("eq", "action", "update_servers", "token", tok)
	if _, isList := us["deploy_keys"].([]any); !isList {
		t.Fatalf("deploy_keys after delivery %v", us["deploy_keys"])
	}
	show := e.call("eq", "action", "show", "id", newID, "token", tok)
	wantKV(t, show["server_data"].(map[string]any), "status", "rent")
	wantKV(t, show["OS"].(map[string]any), "name", "Debian 11")

	// The invoice is paid from credit.
	gi := e.call("whmcs", "action", "get_invoice", "invoice_id", itoa(inv), "token", tok)
	wantKV(t, gi, "status", "Paid")

	// An order the credit cannot cover waits for payment.
	big := order("preset", "gpu.a4000", "location_name", "US", "os_id", "187", "traffic_plan", "44", "deploy_period", "annually")
	wantKV(t, big, "status", "Unpaid")
	bkey := big["callback"].(string)
	e.sim.Advance(30 * time.Minute)
	wantKV(t, e.call("eq_callback", "action", "check", "key", bkey), "result", "Not ready")
	wantKV(t, e.call("whmcs", "action", "apply_credit", "invoice_id", itoa(int64(big["invoice"].(float64))), "amount", "5000", "token", tok),
		"message", "Insufficient credit balance")
}
