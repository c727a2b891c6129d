package invapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
)

// segmentRE is one non-empty bracket segment of the wire-name grammar.
var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func FuzzEncodeForm(f *testing.F) {
	f.Add("hostname", "web 1", "days", "monday", int64(42), 2.5, true, "1e3")
	f.Add("params[name]", "x&y=z", "a]b[c", "", int64(-1), math.Inf(1), false, "0.5")
	f.Add("", "\xff\x00;", "%zz", "é€", int64(math.MinInt64), math.Copysign(0, -1), true, "garbage")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, n int64, fl float64, b bool, num string) {
		params := map[string]any{
			k1:     v1,
			"arr":  []any{v2, n, fl, b, json.Number(num), nil},
			"obj":  map[string]any{k2: []any{v1, map[string]any{"x": v2}}, "n": n},
			"strs": []string{v1, v2},
		}
		out, err := EncodeForm(params)
		if err != nil {
			// Refused: only for a name outside the grammar or one that collides with
			// another parameter's variable.
			var ne *ParamNameError
			_, ok1 := wireNameDepth(k1)
			// k2 is a key inside obj (obj[k2]): one bracket segment of the grammar, or "n",
			// which the literal's own "n" overwrites.
			ok2 := k2 == "n" || segmentRE.MatchString(k2)
			collides := ok1 && slices.Contains([]string{"arr", "obj", "strs"}, wirePath(k1)[0])
			if !errors.As(err, &ne) || ok1 && ok2 && !collides {
				t.Fatalf("refused %q / %q: %v", k1, k2, err)
			}
			return
		}
		q, err := url.ParseQuery(out)
		if err != nil {
			t.Fatalf("EncodeForm output does not parse: %v\n%s", err, out)
		}
		if again, _ := EncodeForm(params); out != again {
			t.Fatal("not deterministic")
		}
		// A plain top-level key round-trips to its value.
		if k1 != "" && k1 != "arr" && k1 != "obj" && k1 != "strs" && !strings.ContainsAny(k1, "[]") {
			if got := q[k1]; len(got) != 1 || got[0] != v1 {
				t.Fatalf("key %q: got %q want %q\n%s", k1, got, v1, out)
			}
		}
		if got := q["strs[]"]; len(got) != 2 || got[0] != v1 || got[1] != v2 {
			t.Fatalf("strs[] = %q", got)
		}
		if got := q["obj[n]"]; len(got) != 1 || got[0] != strconv.FormatInt(n, 10) {
			t.Fatalf("obj[n] = %q", got)
		}
		// Finite numbers go out without an exponent and keep their value.
		if fv, err := strconv.ParseFloat(num, 64); err == nil && !math.IsInf(fv, 0) && !math.IsNaN(fv) {
			s := numberString(json.Number(num))
			back, err := strconv.ParseFloat(s, 64)
			if strings.ContainsAny(s, "eE") || err != nil || back != fv {
				t.Fatalf("json.Number %q sent as %q", num, s)
			}
		}
	})
}

// nameAtoms build parameter names: the characters PHP rewrites, brackets, and the names
// the client reserves.
var nameAtoms = []string{"a", "id", "params", "action", "token", "pin", "key", " ", ".", "\x00", "[", "]", "[]",
	"[x]", "[0]", "0", "_", "%", "+", "&", "=", "é", "-", "\t"}

// fuzzParams turns fuzz bytes into a params map: up to 6 names of 1–4 atoms, with string,
// number, list or nested-map values (nested keys from the same atoms).
func fuzzParams(spec []byte) map[string]any {
	next := func() int {
		if len(spec) == 0 {
			return 0
		}
		b := spec[0]
		spec = spec[1:]
		return int(b)
	}
	name := func() string {
		var b strings.Builder
		for range 1 + next()%4 {
			b.WriteString(nameAtoms[next()%len(nameAtoms)])
		}
		return b.String()
	}
	params := map[string]any{}
	for range next() % 7 {
		k := name()
		switch next() % 5 {
		case 0:
			params[k] = "v" + strconv.Itoa(next())
		case 1:
			params[k] = next()
		case 2:
			params[k] = []any{"x", next()}
		case 3:
			params[k] = map[string]any{name(): "y", "z": []any{map[string]any{name(): 1}}}
		case 4:
			params[k] = nil
		}
	}
	return params
}

// FuzzRequestNames: for any params, either the client refuses before sending, or PHP's
// reading of the body (the simulator's parser, checked against PHP itself) has exactly
// the action given, the client's token, and the top-level names of the params, with the
// PIN slot carrying the PIN.
func FuzzRequestNames(f *testing.F) {
	for _, seed := range [][]byte{
		{}, {1, 0, 0, 0, 0}, {2, 1, 3, 7, 0, 2, 0, 0, 1}, {1, 1, 7, 3, 0}, {1, 1, 5, 0, 0},
		{3, 2, 9, 3, 0, 0, 2, 2, 10, 12, 2, 1, 2, 0, 0, 1}, {1, 0, 2, 11, 3, 1}, {2, 0, 2, 0, 0, 1, 2, 12, 0},
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, spec []byte, auth bool) {
		params := fuzzParams(spec)
		req := &Request{Module: "tag", Action: "list", Params: params}
		if auth {
			req.Module, req.loginKey = "auth", "the-clients-own-key"
		}
		const token = "tok-123"
		body, err := encodeRequestForm(req, token)
		if err != nil {
			var ne *ParamNameError
			if !errors.As(err, &ne) || ne.Name == "" || !strings.Contains(err.Error(), "not allowed") {
				t.Fatalf("refusal is not a clear *ParamNameError: %v", err)
			}
			if ce := CheckParams(req); KindOf(ce) != KindInvalidParams || !errors.As(ce, &ne) {
				t.Fatalf("CheckParams does not refuse what the encoder refuses: %v", ce)
			}
			return
		}
		if CheckParams(req) != nil {
			t.Fatal("CheckParams refuses what the encoder sends")
		}
		vars := sim.ParseForm([]byte(body))
		want := map[string]bool{"action": true, "token": true}
		if auth {
			want["key"] = true
		}
		for k, v := range params {
			if k != "" && !sendsNothing(v) {
				want[wirePath(k)[0]] = true
			}
		}
		got := map[string]bool{}
		for k := range vars {
			got[k] = true
		}
		if !maps.Equal(got, want) {
			t.Fatalf("params %q sent as %q: PHP reads %v, want exactly %v", params, body, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		if vars["action"] != "list" || vars["token"] != token {
			t.Fatalf("params %q sent as %q: PHP reads action %v, token %v", params, body, vars["action"], vars["token"])
		}
		if pin, ok := params["pin"]; ok && pin != nil {
			var e formEncoder
			encodeValue(&e, "pin", pin)
			if "pin="+url.QueryEscape(fmt.Sprint(vars["pin"])) != e.b.String() {
				t.Fatalf("PIN slot %v read as %v", pin, vars["pin"])
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	seeds := []string{
		`{"code":-1,"message":"x"}`, `{"code":-2,"message":"Authentication required"}`,
		`{"result":-1,"error":"x","code":"NO_APPROPRIATE_SERVERS"}`, `{"result":"Error","scope":"cancelled"}`,
		`{"result":"OK","scope":"Invalid pin code","debug":"Blocked For Security Purposes"}`,
		`{"result":{"token":"t"}}`, `[1,2]`, `null`, ``, `<html>`, "\xef\xbb\xbf{}", `{"result":1e999}`,
		`{"error":{"message":[{"error":"deep"}]}}`, `{"key":12,"callback":"c"}`,
	}
	for _, s := range seeds {
		for _, st := range []int{200, 401, 429, 502, 302, 404} {
			f.Add([]byte(s), st, "3")
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, status int, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		resp, e := decodeResponse("eq", "list", status, h, body)
		if resp == nil && e == nil {
			t.Fatal("neither a response nor an error")
		}
		if e != nil {
			if e.Kind == "" || e.Module != "eq" || e.Error() == "" {
				t.Fatalf("malformed error %+v", e)
			}
			if e.RetryAfter < 0 {
				t.Fatal("negative RetryAfter")
			}
			return
		}
		if resp.HTTPStatus != status || (status < 200 || status >= 300) {
			t.Fatalf("success with status %d", status)
		}
		if resp.Fields != nil {
			parseCallback(resp.Fields, "k")
			parseLogin(resp.Fields, time.Unix(0, 0), time.Hour)
		}
	})
}
