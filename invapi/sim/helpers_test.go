package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2031, 1, 2, 10, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	sim   *Server
	clock *ManualClock
	ts    *httptest.Server
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	clk := NewManualClock(t0)
	opts := Options{Clock: clk, NoPINFailDelay: true}
	for _, m := range mod {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &env{t: t, sim: s, clock: clk, ts: ts}
}

// raw posts a form and returns the HTTP response body and status.
func (e *env) raw(module string, kv ...string) (int, string, http.Header) {
	e.t.Helper()
	// Later pairs override earlier ones with the same name, except "name[]" arrays.
	form := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.HasSuffix(kv[i], "[]") {
			form.Add(kv[i], kv[i+1])
		} else {
			form.Set(kv[i], kv[i+1])
		}
	}
	res, err := http.Post(e.ts.URL+"/"+module+".php", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatalf("%s: %v", module, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// call posts a form and decodes the JSON answer.
func (e *env) call(module string, kv ...string) map[string]any {
	e.t.Helper()
	st, body, _ := e.raw(module, kv...)
	if st != 200 {
		e.t.Fatalf("%s %v: HTTP %d %s", module, kv, st, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatalf("%s %v: not JSON: %q", module, kv, body)
	}
	return m
}

func (e *env) login(key string, extra ...string) string {
	e.t.Helper()
	m := e.call("auth", append([]string{"action", "login", "key", key}, extra...)...)
	r, ok := m["result"].(map[string]any)
	if !ok {
		e.t.Fatalf("login: %v", m)
	}
	return r["token"].(string)
}

func (e *env) accountToken() string {
	acct, _ := e.sim.Keys()
	return e.login(acct)
}

func wantKV(t *testing.T, m map[string]any, k string, want any) {
	t.Helper()
	got := m[k]
	if f, ok := got.(float64); ok {
		switch w := want.(type) {
		case int:
			if f == float64(w) {
				return
			}
		case int64:
			if f == float64(w) {
				return
			}
		}
	}
	if got != want {
		t.Fatalf("%s = %#v, want %#v (in %v)", k, got, want, m)
	}
}

func wantErr(t *testing.T, m map[string]any, code int, msgPart string) {
	t.Helper()
	if c, _ := m["code"].(float64); int(c) != code {
		t.Fatalf("code = %v, want %d (in %v)", m["code"], code, m)
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, msgPart) {
		t.Fatalf("message = %q, want it to contain %q", msg, msgPart)
	}
}

func wantResultErr(t *testing.T, m map[string]any, msgPart string) {
	t.Helper()
	if r, _ := m["result"].(float64); r != -1 {
		t.Fatalf("result = %v, want -1 (in %v)", m["result"], m)
	}
	if msg, _ := m["error"].(string); !strings.Contains(msg, msgPart) {
		t.Fatalf("error = %q, want it to contain %q", msg, msgPart)
	}
}

func ctxOf(m map[string]any) map[string]any {
	c, _ := m["context"].(map[string]any)
	return c
}
