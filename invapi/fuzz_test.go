package invapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
		out := EncodeForm(params)
		q, err := url.ParseQuery(out)
		if err != nil {
			t.Fatalf("EncodeForm output does not parse: %v\n%s", err, out)
		}
		if out != EncodeForm(params) {
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
