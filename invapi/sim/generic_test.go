package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/schemas"
)

const testCatalog = `{"actions":[
 {"tool":"widgets_frob","module":"widgets","action":"frob","endpoint":"widgets.php","methods":["POST"],"class":"write","toolset":"t",
  "description":"d","input_schema":{},"params":[
   {"wire":"id","path":["id"],"type":"integer","required":true,"server_id":true},
   {"wire":"size","path":["size"],"type":"integer","required":true},
   {"wire":"opts[colors][]","path":["opts","colors"],"type":"string","array":true,"required":true},
   {"wire":"mode","path":["mode"],"type":"string","enum":["fast","slow"]}]},
 {"tool":"widgets_spin","module":"widgets","action":"spin","endpoint":"widgets.php","methods":["POST"],"class":"destructive","toolset":"t",
  "description":"d","input_schema":{},"pin":true,"async":true,"params":[
   {"wire":"id","path":["id"],"type":"integer","required":true,"server_id":true}]},
 {"tool":"widgets_peek","module":"widgets","action":"peek","endpoint":"widgets.php","methods":["GET"],"class":"read","toolset":"t",
  "description":"d","input_schema":{},"no_auth":true,"params":[]}
],"undocumented":[{"module":"gadgets","action":"poke","class":"read"}]}`

func TestGenericHandlerFromCatalog(t *testing.T) {
	cat, err := schemas.Parse([]byte(testCatalog))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Catalog = cat })
	tok := e.accountToken()

	m := e.call("widgets", "action", "frob", "id", "40101", "opts[colors][]", "red", "token", tok)
	wantErr(t, m, -1, "WIDGETS/frob: size required")
	m = e.call("widgets", "action", "frob", "id", "40101", "size", "3", "token", tok)
	wantErr(t, m, -1, "opts[colors][] required")
	m = e.call("widgets", "action", "frob", "id", "40101", "size", "big", "opts[colors][]", "red", "token", tok)
	wantErr(t, m, -1, "WIDGETS/frob: invalid size")
	m = e.call("widgets", "action", "frob", "id", "40101", "size", "3", "opts[colors][]", "red", "mode", "warp", "token", tok)
	wantErr(t, m, -1, "invalid mode")
	m = e.call("widgets", "action", "frob", "id", "99", "size", "3", "opts[colors][]", "red", "token", tok)
	wantErr(t, m, -1, "WIDGETS/frob: invalid server id")
	m = e.call("widgets", "action", "frob", "id", "40101", "size", "3", "opts[colors][]", "red", "opts[colors][]", "blue", "token", tok)
	if !reflect.DeepEqual(m, map[string]any{"result": "OK", "module": "widgets", "action": "frob"}) {
		t.Fatalf("frob %v", m)
	}

	// Async + PIN from the catalog.
	wantResultErr(t, e.call("widgets", "action", "spin", "id", "40101", "token", tok), "PIN code required")
	sp := e.call("widgets", "action", "spin", "id", "40101", "pin", e.sim.PIN(), "token", tok)
	key := sp["key"].(string)
	wantKV(t, ctxOf(sp), "location", "NL")
	wantKV(t, e.call("eq_callback", "action", "check", "key", key), "key", key)

	// no_auth from the catalog.
	wantKV(t, e.call("widgets", "action", "peek"), "result", "OK")
	// Undocumented actions answer too (with a token).
	wantErr(t, e.call("gadgets", "action", "poke"), -2, "Authentication required")
	wantKV(t, e.call("gadgets", "action", "poke", "token", tok), "result", "OK")
	// Unknown action of a known module.
	wantErr(t, e.call("widgets", "action", "explode", "token", tok), -1, "WIDGETS: invalid action explode")
}

func TestGenericWithRealCatalog(t *testing.T) {
	if len(schemas.Load().Actions) == 0 {
		t.Skip("catalog not generated yet")
	}
	e := newEnv(t)
	tok := e.accountToken()
	wantErr(t, e.call("eq", "action", "traffic_add", "id", "40101", "token", tok), -1, "EQ/traffic_add: new_limit required")
	wantKV(t, e.call("eq", "action", "traffic_add", "id", "40101", "new_limit", "5", "token", tok), "result", "OK")
	wantErr(t, e.call("eq", "action", "backup_save_schedule", "id", "40101", "backup_schedule[days][]", "monday",
		"backup_schedule[timezone]", "UTC", "token", tok), -1, "backup_schedule[time] required")
	wantKV(t, e.call("eq", "action", "backup_save_schedule", "id", "40101", "backup_schedule[days][]", "monday",
		"backup_schedule[days][]", "friday", "backup_schedule[time]", "03:00", "backup_schedule[timezone]", "UTC", "token", tok), "result", "OK")
	// Canned answers with placeholders.
	bd := e.call("whmcs", "action", "get_billing_data", "id", "40102", "token", tok)
	wantKV(t, bd, "billing_dedicatedip", "203.0.113.20")
	wantKV(t, bd, "product_id", 40102)
	sens := e.call("eq", "action", "sensors", "id", "40101", "token", tok)
	if !strings.Contains(sens["scope"].(string), "CPU Temp") || ctxOf(sens)["action"] != "get_sensors" || len(sens["key"].(string)) != 32 {
		t.Fatalf("sensors %v", sens)
	}
	wantKV(t, e.call("whmcs", "action", "get_client", "token", tok)["client"].(map[string]any), "email", e.sim.fx.account.Email)
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	st, body, h := e.raw("nosuchmodule", "action", "list")
	if st != 404 || !strings.Contains(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "404") {
		t.Fatalf("unknown module: %d %q", st, body)
	}
	wantErr(t, e.call("eq"), -2, "EQ: action required")
	wantErr(t, e.call("eq", "action", "frobnicate", "token", "x"), -1, "EQ: invalid action frobnicate")

	// GET with a query string works too.
	res, err := http.Get(e.ts.URL + "/traffic_plans.php?action=list&location=US")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	res.Body.Close()
	if plans := m["traffic_plans"].([]any); len(plans) != 3 {
		t.Fatalf("US plans %v", plans)
	}
	// Any path prefix.
	res, err = http.Post(e.ts.URL+"/api/v1/os.php", "application/x-www-form-urlencoded", strings.NewReader("action=list&instance_id=15"))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&m)
	res.Body.Close()
	for _, o := range m["os_list"].([]any) {
		if o.(map[string]any)["name"] == "Windows Server 2022 VM" {
			t.Fatal("VM-only OS listed for a bare-metal preset")
		}
	}
}

func TestPublicListsWithAndWithoutToken(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	for _, kv := range [][]string{
		{"traffic_plans", "action", "list", "location", "NL"},
		{"presets", "action", "list", "location", "FI"},
		{"presets", "action", "info", "id", "108"},
		{"os", "action", "list"},
		{"software", "action", "list", "instance_id", "109"},
		{"stocks", "action", "list", "location", "FI", "group", "ALL"},
		{"jenkins", "action", "get_tasks"},
	} {
		wantKV(t, e.call(kv[0], kv[1:]...), "result", "OK")
		wantKV(t, e.call(kv[0], append(kv[1:], "token", tok)...), "result", "OK")
		wantKV(t, e.call(kv[0], append(kv[1:], "token", "stale-token")...), "result", "OK")
	}
	p := e.call("presets", "action", "info", "preset", "vm.pico")["preset"].(map[string]any)
	wantKV(t, p, "id", 108)
	wantErr(t, e.call("traffic_plans", "action", "list"), -1, "location required")
}

func TestNATAsync(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	m := e.call("nat", "action", "add_static_nat", "id", "40101", "pin", e.sim.PIN(), "token", tok)
	key := m["key"].(string)
	wantKV(t, e.call("nat_callback", "action", "check", "key", key), "result", "Not ready")
	wantErr(t, e.call("eq_callback", "action", "check", "key", key), -1, "AsyncKey "+key+" not found")
	e.sim.Advance(time.Minute)
	done := e.call("nat_callback", "action", "check", "key", key)
	wantKV(t, done, "result", "OK")
	wantKV(t, ctxOf(done), "ipmi_ip", "10.20.1.10")
	wantErr(t, e.call("nat_callback", "action", "check", "key", "feedface"), -1, "AsyncKey feedface not found")
	// GET like the docs' URL.
	res, err := http.Get(e.ts.URL + "/nat_callback.php?action=check&key=" + key)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	// A VPS has no IPMI to NAT to.
	wantErr(t, e.call("nat", "action", "add_static_nat", "id", "40102", "pin", e.sim.PIN(), "token", tok), -1, "no IPMI")
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()

	e.sim.Inject(Fault{Module: "eq", Action: "list", Kind: Fault5xx})
	st, body, _ := e.raw("eq", "action", "list", "token", tok)
	if st != 502 || !strings.Contains(body, "502 Bad Gateway") {
		t.Fatalf("5xx: %d %q", st, body)
	}
	// Count 1 by default: the next call is fine.
	wantKV(t, e.call("eq", "action", "list", "token", tok), "result", "OK")

	e.sim.Inject(Fault{Kind: Fault5xx, Status: 503, Count: 2})
	for i := 0; i < 2; i++ {
		if st, _, _ := e.raw("eq", "action", "show", "id", "40101", "token", tok); st != 503 {
			t.Fatalf("503 #%d: %d", i, st)
		}
	}
	wantKV(t, e.call("eq", "action", "show", "id", "40101", "token", tok), "result", "OK")

	e.sim.Inject(Fault{Module: "eq", Kind: FaultHTML})
	st, body, h := e.raw("eq", "action", "list", "token", tok)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html>") {
		t.Fatalf("html: %d %q", st, body)
	}
	e.sim.Inject(Fault{Kind: FaultEmpty})
	if st, body, _ := e.raw("eq", "action", "list", "token", tok); st != 200 || body != "" {
		t.Fatalf("empty: %d %q", st, body)
	}
	e.sim.Inject(Fault{Kind: FaultResponse, Body: `{"result":"success","message":"odd"}`})
	wantKV(t, e.call("eq", "action", "list", "token", tok), "message", "odd")

	// Module filter: a fault for ip does not hit eq.
	e.sim.Inject(Fault{Module: "ip", Kind: FaultEmpty})
	wantKV(t, e.call("eq", "action", "list", "token", tok), "result", "OK")
	e.sim.ClearFaults()

	// Expired token: this answer and every later one with the token.
	e.sim.Inject(Fault{Kind: FaultExpireToken})
	wantErr(t, e.call("eq", "action", "list", "token", tok), -2, "Authentication required")
	wantErr(t, e.call("eq", "action", "list", "token", tok), -2, "Authentication required")
	tok2 := e.accountToken()
	if tok2 == tok {
		t.Fatal("expired token handed out again")
	}

	// Dropped connection.
	e.sim.Inject(Fault{Kind: FaultDrop})
	_, err := http.PostForm(e.ts.URL+"/eq.php", url.Values{"action": {"list"}, "token": {tok2}})
	if err == nil {
		t.Fatal("dropped connection gave an answer")
	}

	// Latency, cut short by the client's deadline.
	e.sim.Inject(Fault{Kind: FaultLatency, Latency: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+"/eq.php", strings.NewReader("action=list&token="+tok2))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latency: %v", err)
	}
	// A short latency then the normal answer.
	e.sim.Inject(Fault{Kind: FaultLatency, Latency: 30 * time.Millisecond})
	start := time.Now()
	wantKV(t, e.call("eq", "action", "list", "token", tok2), "result", "OK")
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("no latency")
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t)
	acct, _ := e.sim.Keys()
	tok := e.login(acct)
	e.sim.ResetRequests()
	e.call("eq", "action", "backup_save_schedule", "id", "40101", "backup_schedule[days][]", "monday", "backup_schedule[days][]", "sunday",
		"backup_schedule[time]", "03:00", "backup_schedule[timezone]", "UTC", "token", tok)
	reqs := e.sim.Requests()
	if len(reqs) != 1 {
		t.Fatalf("requests %d", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Module != "eq" || r.Action != "backup_save_schedule" || r.Token != tok || !r.Time.Equal(t0) {
		t.Fatalf("request %+v", r)
	}
	if got := r.Form["backup_schedule[days][]"]; !reflect.DeepEqual(got, []string{"monday", "sunday"}) {
		t.Fatalf("form %v", r.Form)
	}
	// The log is a copy.
	reqs[0].Form.Set("token", "x")
	if e.sim.Requests()[0].Form.Get("token") != tok {
		t.Fatal("log shared")
	}
}

func TestPHPNesting(t *testing.T) {
	body := "a[]=1&a[]=2&params[name]=x&params[tags][]=p&params[tags][]=q&backup_schedule[days][]=monday&" +
		"backup_schedule[days][]=friday&backup_schedule[time]=03%3A00&plain=v&m[0]=zero&m[1]=one&sparse[3]=three&" +
		"bad[key=literal&deep[a][b][c]=d"
	got := ParseForm([]byte(body))
	want := map[string]any{
		"a":               []any{"1", "2"},
		"params":          map[string]any{"name": "x", "tags": []any{"p", "q"}},
		"backup_schedule": map[string]any{"days": []any{"monday", "friday"}, "time": "03:00"},
		"plain":           "v",
		"m":               []any{"zero", "one"},
		"sparse":          map[string]any{"3": "three"},
		"bad_key":         "literal", // PHP: an unclosed '[' becomes '_'
		"deep":            map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}}},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		t.Fatalf("ParseForm = %s", gb)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	rcv := newReceiver(t)
	e.reinstallByOrder(tok, "40102", "post_install_callback", rcv.srv.URL)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			form := url.Values{"action": {"show"}, "id": {"40101"}, "token": {tok}}
			if i%3 == 0 {
				form = url.Values{"action": {"check"}, "key": {"x"}}
			}
			mod := "eq"
			if i%3 == 0 {
				mod = "eq_callback"
			}
			res, err := http.PostForm(e.ts.URL+"/"+mod+".php", form)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			_ = e.sim.Requests()
			_, _ = e.sim.Server(40102)
		}(i)
	}
	for i := 0; i < 10; i++ {
		e.sim.Advance(sd / 2)
	}
	wg.Wait()
	if rcv.hits.Load() != 1 {
		t.Fatalf("callback hits %d", rcv.hits.Load())
	}
}

func TestRunRealtimeAndServe(t *testing.T) {
	rcv := newReceiver(t)
	s, err := New(Options{StageDuration: time.Second, NoPINFailDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 50) }() // 5 s of sim time per 100 ms
	base := "http://" + ln.Addr().String()
	acct, _ := s.Keys()
	post := func(mod string, v url.Values) map[string]any {
		res, err := http.PostForm(base+"/"+mod+".php", v)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return m
	}
	tok := post("auth", url.Values{"action": {"login"}, "key": {acct}})["result"].(map[string]any)["token"].(string)
	r := post("eq", url.Values{"action": {"order_instance"}, "id": {"40301"}, "os_id": {"187"}, "root_pass": {"Sandbox-Root1"},
		"location_name": {"FI"}, "pin": {s.PIN()}, "token": {tok}, "post_install_callback": {rcv.srv.URL}})
	key, _ := r["callback"].(string)
	if key == "" {
		t.Fatalf("order %v", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rcv.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rcv.hits.Load() != 1 {
		t.Fatal("install did not complete in real time")
	}
	if st, _ := s.Server(40301); st.Installs != 1 {
		t.Fatalf("state %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEveryCatalogActionAnswers calls every catalog action with its required parameters
// filled in and checks that the simulator answers with an invapi envelope: never "invalid
// action", never a missing-parameter error, never a session error.
func TestEveryCatalogActionAnswers(t *testing.T) {
	cat := schemas.Load()
	if len(cat.Actions) == 0 {
		t.Skip("catalog not generated yet")
	}
	e := newEnv(t)
	tok := e.accountToken()
	for _, a := range cat.Actions {
		if a.Module == "auth" && a.Action == "logout" {
			continue
		}
		kv := []string{"action", a.Action, "token", tok}
		if a.PIN {
			kv = append(kv, "pin", e.sim.PIN())
		}
		for _, p := range a.Params {
			if !p.Required {
				continue
			}
			v := "x"
			switch {
			case p.ServerID:
				v = "40101"
			case len(p.Enum) > 0:
				v = p.Enum[0]
			case p.Type == "integer" || p.Type == "number" || p.Type == "boolean":
				v = "1"
			}
			kv = append(kv, p.Wire, v)
		}
		ep := strings.TrimSuffix(a.Endpoint, ".php")
		st, body, _ := e.raw(ep, kv...)
		var m map[string]any
		if st != 200 || json.Unmarshal([]byte(body), &m) != nil {
			t.Errorf("%s/%s: HTTP %d %q", a.Module, a.Action, st, body)
			continue
		}
		_, hasResult := m["result"]
		_, hasCode := m["code"]
		msg, _ := m["message"].(string)
		if !hasResult && !hasCode && a.Module != "ip" && a.Module != "whmcs" {
			t.Errorf("%s/%s: no envelope: %v", a.Module, a.Action, m)
		}
		// Two actions have requirements the catalog cannot state: a key or reinstall_key,
		// a preset or an id.
		conditional := a.Module+"/"+a.Action == "eq_callback/check" || a.Module+"/"+a.Action == "eq/order_instance"
		if strings.Contains(msg, "invalid action") || (strings.Contains(msg, " required") && !conditional) || msg == "Authentication required" {
			t.Errorf("%s/%s: %v", a.Module, a.Action, m)
		}
		if a.Async && m["result"] == "OK" && m["key"] == nil && m["callback"] == nil {
			t.Errorf("%s/%s: async OK without key: %v", a.Module, a.Action, m)
		}
	}
}
