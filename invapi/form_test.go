package invapi

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
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
		{"escaping", map[string]any{"script": "echo a&b=c; 100%", "k y": "é"},
			"k+y=%C3%A9&script=echo+a%26b%3Dc%3B+100%25"},
		{"nested data keys cannot inject brackets", map[string]any{"m": map[string]any{"a]b": "1"}},
			"m[a%5Db]=1"},
		{"typed slices and maps via reflection", map[string]any{"ids": []int64{3, 1}, "m": map[string]int{"z": 1, "a": 2}, "n": named("v")},
			"ids[]=3&ids[]=1&m[a]=2&m[z]=1&n=v"},
		{"pointer", map[string]any{"p": ptr(5), "q": (*int)(nil)}, "p=5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := EncodeForm(tc.params)
			if got != tc.want {
				t.Fatalf("EncodeForm:\n got %s\nwant %s", got, tc.want)
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
	first := EncodeForm(p)
	for range 50 {
		if got := EncodeForm(p); got != first {
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
		"token":  "caller-supplied-ignored",
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
	if tok == "" || tok == "caller-supplied-ignored" {
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
		Params: map[string]any{"key": f.apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.requests("auth/login")[0]
	if r.Method != "POST" || r.RawQuery != "" {
		t.Fatalf("auth/login went out as %s with query %q", r.Method, r.RawQuery)
	}
}
