package invapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
)

func TestEncodeFormGolden(t *testing.T) {
	type named string
	cases := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"flat sorted", map[string]any{"id": 42, "hostname": "web 1", "action": "x"},
			"action=x&hostname=web+1&id=42"},
		{"nested object", map[string]any{"params": map[string]any{"name": "x", "location": "NL"}},
			"params[location]=NL&params[name]=x"},
		{"backup schedule", map[string]any{"id": 7, "backup_schedule": map[string]any{
			"days": []any{"monday", "tuesday"}, "time": "03:00", "timezone": "UTC"}},
			"backup_schedule[days][]=monday&backup_schedule[days][]=tuesday&backup_schedule[time]=03%3A00&backup_schedule[timezone]=UTC&id=7"},
		{"list keeps order", map[string]any{"servers": []any{json.Number("102"), json.Number("101")}},
			"servers[]=102&servers[]=101"},
		{"wire-named list", map[string]any{"group[]": []string{"1CPU", "2CPU"}},
			"group[]=1CPU&group[]=2CPU"},
		{"wire-named nested key", map[string]any{"params[group]": []any{"1CPU"}, "params[full]": true},
			"params[full]=true&params[group][]=1CPU"},
		{"search params", map[string]any{"params": map[string]any{"group": []any{"1CPU", "2CPU"}, "dc": []any{1, 2}}},
			"params[dc][]=1&params[dc][]=2&params[group][]=1CPU&params[group][]=2CPU"},
		{"list of objects gets indices", map[string]any{"records": []any{
			map[string]any{"type": "A", "ttl": 300}, map[string]any{"type": "MX"}}},
			"records[0][ttl]=300&records[0][type]=A&records[1][type]=MX"},
		{"bools", map[string]any{"deploy_notify": true, "own_os": false},
			"deploy_notify=true&own_os=false"},
		{"numbers without exponent", map[string]any{"a": 1e21, "b": 2.5, "c": json.Number("1e3"), "d": json.Number("-0.5"),
			"e": json.Number("123456789012345678901234567890"), "f": int64(math.MaxInt64), "g": float32(0.25), "h": uint8(7)},
			"a=1000000000000000000000&b=2.5&c=1000&d=-0.5&e=123456789012345678901234567890&f=9223372036854775807&g=0.25&h=7"},
		{"nil, NaN, empty skipped", map[string]any{"a": nil, "b": math.NaN(), "c": []any{}, "d": map[string]any{}, "": "x", "e": "ok"},
			"e=ok"},
		{"escaping", map[string]any{"script": "echo a&b=c; 100%", "k_y": "é"},
			"k_y=%C3%A9&script=echo+a%26b%3Dc%3B+100%25"},
		{"typed slices and maps via reflection", map[string]any{"ids": []int64{3, 1}, "m": map[string]int{"z": 1, "a": 2}, "n": named("v")},
			"ids[]=3&ids[]=1&m[a]=2&m[z]=1&n=v"},
		{"pointer", map[string]any{"p": ptr(5), "q": (*int)(nil)}, "p=5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeForm(tc.params)
			if err != nil || got != tc.want {
				t.Fatalf("EncodeForm:\n got %s (%v)\nwant %s", got, err, tc.want)
			}
			if _, err := url.ParseQuery(got); err != nil {
				t.Fatalf("not a valid query: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestEncodeFormDeterministic(t *testing.T) {
	p := map[string]any{}
	for _, k := range []string{"z", "a", "m", "b", "y", "c"} {
		p[k] = map[string]any{"q": 1, "b": []any{"x", "y"}, "a": map[string]any{"z": 1, "a": 2}}
	}
	first, _ := EncodeForm(p)
	for range 50 {
		if got, _ := EncodeForm(p); got != first {
			t.Fatalf("encoding changed between runs:\n%s\n%s", first, got)
		}
	}
}

// The body the client actually sends: action first, params, token last; GET puts the
// same form in the query string.
func TestRequestBodyGolden(t *testing.T) {
	f := newFake(t)
	f.handle("eq/search", okHandler(`{"result":"OK","data":[]}`))
	f.handle("eq/backup_set_schedule", okHandler(`{"result":"OK"}`))
	f.handle("ip/get_client_ip", okHandler(`{"ip":"192.0.2.1"}`))
	c, _ := testClient(t, f)
	ctx := context.Background()

	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "search", ReadOnly: true, Params: map[string]any{
		"params": map[string]any{"group": []any{"1CPU", "2CPU"}, "location": []string{"NL"}, "full": true},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "backup_set_schedule", Params: map[string]any{
		"id": 101, "backup_schedule": map[string]any{"days": []any{"monday", "tuesday"}, "time": "03:00", "timezone": "UTC"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &Request{Module: "ip", Action: "get_client_ip", Method: "GET", ReadOnly: true,
		Params: map[string]any{"ips": []any{"a", "b"}}}); err != nil {
		t.Fatal(err)
	}

	tok := f.requests("eq/search")[0].Form.Get("token")
	if tok == "" {
		t.Fatalf("token = %q, want the session token", tok)
	}
	got := f.requests("eq/search")[0]
	want := "action=search&params[full]=true&params[group][]=1CPU&params[group][]=2CPU&params[location][]=NL&token=" + tok
	if got.Body != want || got.Method != "POST" || got.RawQuery != "" {
		t.Fatalf("eq/search: %s %q query=%q\nwant body %q", got.Method, got.Body, got.RawQuery, want)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if ua := got.Header.Get("User-Agent"); ua != "hostkey-mcp/"+Version {
		t.Fatalf("User-Agent = %q", ua)
	}

	got = f.requests("eq/backup_set_schedule")[0]
	want = "action=backup_set_schedule&backup_schedule[days][]=monday&backup_schedule[days][]=tuesday&backup_schedule[time]=03%3A00&backup_schedule[timezone]=UTC&id=101&token=" + tok
	if got.Body != want {
		t.Fatalf("backup_set_schedule body\n got %q\nwant %q", got.Body, want)
	}

	got = f.requests("ip/get_client_ip")[0]
	want = "action=get_client_ip&ips[]=a&ips[]=b&token=" + tok
	if got.Method != "GET" || got.RawQuery != want || got.Body != "" || got.Path != "/ip.php" {
		t.Fatalf("GET: %s %s?%s body=%q\nwant query %q", got.Method, got.Path, got.RawQuery, got.Body, want)
	}

	// The login carried the API key in a POST body, never in the URL.
	login := f.requests("auth/login")[0]
	if login.Method != "POST" || login.RawQuery != "" || login.Body != "action=login&key="+f.apiKey+"&ttl=3600" {
		t.Fatalf("login: %s query=%q body=%q", login.Method, login.RawQuery, login.Body)
	}
}

func TestLoginForcedToPOST(t *testing.T) {
	f := newFake(t)
	c, _ := testClient(t, f)
	_, err := c.Do(context.Background(), &Request{Module: "auth", Action: "login", Method: "GET", NoAuth: true,
		Params: map[string]any{"ttl": 60}, loginKey: f.apiKey})
	if err != nil {
		t.Fatal(err)
	}
	r := f.requests("auth/login")[0]
	if r.Method != "POST" || r.RawQuery != "" {
		t.Fatalf("auth/login went out as %s with query %q", r.Method, r.RawQuery)
	}
}

// Names PHP would not read as written are refused with the name and the reason, and
// nothing is encoded. Each reading is PHP's (see sim.TestPHPParseRules).
func TestEncodeFormRefusesNames(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]any
		want   []string // substrings of the error
	}{
		{"leading space", map[string]any{" id": 1}, []string{`parameter name " id" is not allowed`, "names must match", `PHP would read it as "id"`}},
		{"space inside", map[string]any{"k y": 1}, []string{`"k y"`, `PHP would read it as "k_y"`}},
		{"dot", map[string]any{"a.b": 1}, []string{`"a.b"`, `PHP would read it as "a_b"`}},
		{"NUL", map[string]any{"id\x00x": 1}, []string{`"id\x00x"`, `PHP would read it as "id"`}},
		{"unclosed bracket", map[string]any{"id[": 1}, []string{`"id["`, `PHP would read it as "id_"`}},
		{"text after bracket", map[string]any{"a[b]c": 1}, []string{`"a[b]c"`}},
		{"bracket in a nested key", map[string]any{"m": map[string]any{"a]b": "1"}}, []string{`"m[a]b]"`}},
		{"space in a nested key", map[string]any{"m": map[string]any{"a b": "1"}}, []string{`"m[a b]"`}},
		{"empty base", map[string]any{"[x]": 1}, []string{`"[x]"`, "PHP would drop it"}},
		{"percent", map[string]any{"a%5B": 1}, []string{`"a%5B"`}},
		{"too deep", map[string]any{"a" + strings.Repeat("[x]", 17): 1}, []string{"nested 17 levels deep"}},
		{"object and member", map[string]any{"params": map[string]any{"a": 1}, "params[b]": 2}, []string{`"params[b]"`, `same variable as "params"`}},
		{"list and wire list", map[string]any{"ids": []any{1}, "ids[]": []any{2}}, []string{`"ids[]"`, `same variable as "ids"`}},
		{"index and append", map[string]any{"a[0]": 1, "a[]": []any{2}}, []string{`same variable as`}},
		{"too many fields", map[string]any{"ids": make([]any, 1000)}, []string{"more than 990 fields"}},
	}
	for i := range cases[len(cases)-1].params["ids"].([]any) {
		cases[len(cases)-1].params["ids"].([]any)[i] = i
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := EncodeForm(tc.params)
			var ne *ParamNameError
			if !errors.As(err, &ne) || out != "" {
				t.Fatalf("EncodeForm = %q, %v; want a *ParamNameError", out, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// Distinct members of one object are fine, and so is an empty value next to a
	// member (it sends nothing).
	if out, err := EncodeForm(map[string]any{"params[a]": 1, "params[b]": []any{2}, "x": nil, "x[y]": 3}); err != nil ||
		out != "params[a]=1&params[b][]=2&x[y]=3" {
		t.Fatalf("EncodeForm = %q, %v", out, err)
	}
}

// The client refuses params that PHP would read as what the client sends itself, before
// anything is sent, with a typed error; the PIN slot and nat_callback's key pass.
func TestRequestRefusesReservedNames(t *testing.T) {
	f := newFake(t)
	f.handle("tag/list", okHandler(`{"result":"OK"}`))
	f.handle("nat_callback/check", okHandler(`{"result":"OK"}`))
	f.handle("eq/reboot", okHandler(`{"result":"OK"}`))
	c, _ := testClient(t, f)
	ctx := context.Background()
	refused := []struct {
		module string
		params map[string]any
		want   string
	}{
		{"tag", map[string]any{" action": "clear"}, `PHP would read it as "action", which hostkey-mcp sets itself`},
		{"tag", map[string]any{"action": "clear"}, "hostkey-mcp sends action itself"},
		{"tag", map[string]any{"action[x]": "clear"}, "hostkey-mcp sends action itself"},
		{"tag", map[string]any{"token": "t"}, "hostkey-mcp sends token itself"},
		{"tag", map[string]any{"token\x00": "t"}, `PHP would read it as "token"`},
		{"tag", map[string]any{"pin ": "1"}, `PHP would read it as "pin_"`},
		{"tag", map[string]any{" pin": "1"}, `PHP would read it as "pin"`},
		{"tag", map[string]any{"pin[x]": "1"}, "the PIN is added by hostkey-mcp"},
		{"tag", map[string]any{"pin": map[string]any{"x": "1"}}, "the PIN is added by hostkey-mcp"},
		{"auth", map[string]any{"key": "k"}, "key is the API key"},
		{"auth", map[string]any{" key": "k"}, `PHP would read it as "key"`},
	}
	for _, tc := range refused {
		req := &Request{Module: tc.module, Action: "list", Params: tc.params, NoAuth: tc.module == "auth"}
		if tc.module == "auth" {
			req.loginKey = "the-clients-own-key" // the client's login: key is its own
		}
		_, err := c.Do(ctx, req)
		var ne *ParamNameError
		if KindOf(err) != KindInvalidParams || !errors.As(err, &ne) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v (kind %q); want a refusal saying %q", tc.module, tc.params, err, KindOf(err), tc.want)
		}
	}
	if n := len(f.requests("tag/list")) + len(f.requests("auth/list")); n != 0 {
		t.Fatalf("%d refused requests reached the server", n)
	}
	// What is allowed: the PIN slot, and "key" where it is an ordinary parameter.
	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 1, "pin": "4321"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &Request{Module: "nat_callback", Action: "check", Params: map[string]any{"key": "cb-1"}}); err != nil {
		t.Fatal(err)
	}
	if r := f.requests("eq/reboot"); len(r) != 1 || r[0].Form.Get("pin") != "4321" {
		t.Fatalf("reboot: %v", r)
	}
	if r := f.requests("nat_callback/check"); len(r) != 1 || r[0].Form.Get("key") != "cb-1" {
		t.Fatalf("nat_callback/check: %v", r)
	}
}
