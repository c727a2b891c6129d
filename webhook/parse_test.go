package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseLimits(t *testing.T) {
	// Deep, wide, long: everything is bounded.
	deep := strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50)
	wide := map[string]any{}
	for i := range 500 {
		wide["k"+strings.Repeat("x", i%300)+string(rune('a'+i%26))+itoa(int64(i))] = strings.Repeat("v", 1500)
	}
	wb, _ := json.Marshal(wide)
	for _, body := range []string{deep, string(wb), `["` + strings.Repeat("é", 3000) + `"]`} {
		req := httptest.NewRequest(http.MethodPost, "/cb/install/x", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		cb, err := ParseCallback(req, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(cb.Data())
		if len(out) > 200<<10 {
			t.Fatalf("stored data %d bytes", len(out))
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(wb)))
	req.Header.Set("Content-Type", "application/json")
	cb, _ := ParseCallback(req, 1<<20)
	if len(cb.Body) != maxKeys+1 || cb.Body["_truncated"] != true {
		t.Fatalf("%d keys", len(cb.Body))
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := truncate(strings.Repeat("é", 10), 5)
	if !utf8.ValidString(s) || len(s) > 5+len("…") {
		t.Fatalf("%q", s)
	}
	if got := truncate("a\xffb", 10); !utf8.ValidString(got) {
		t.Fatalf("%q", got)
	}
}

// FuzzParseCallback: whatever a sender throws at a webhook path, parsing neither panics
// nor stores unbounded, invalid or secret data.
func FuzzParseCallback(f *testing.F) {
	f.Add(true, "application/json", []byte(`{"hostname":"web1","root_pass":"x"}`), "status=ok")
	f.Add(true, "application/x-www-form-urlencoded", []byte("a=1&a=2&token=t"), "")
	f.Add(false, "", []byte(nil), "ip=1.2.3.4&password=p")
	f.Add(true, "multipart/form-data; boundary=XX", []byte("--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX--\r\n"), "")
	f.Add(true, "multipart/form-data", []byte("--XX\r\n"), "")
	f.Add(true, "text/plain; charset=\"", []byte("done\n"), "%zz")
	f.Add(true, "application/json", []byte(`[{"a":[[[[[[[1]]]]]]]}]`), "")
	f.Add(true, "", []byte("{\"\xff\":\"\xfe\"}"), "")
	const limit = 4096
	f.Fuzz(func(t *testing.T, post bool, ct string, body []byte, query string) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		req, err := http.NewRequest(method, "http://h/cb/install/s", bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.URL.RawQuery = query
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		start := time.Now()
		cb, err := ParseCallback(req, limit)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("parse took %v", d)
		}
		if len(body) > limit {
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("body of %d bytes: err %v", len(body), err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrBadBody) && !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		out, err := json.Marshal(cb.Data())
		if err != nil {
			t.Fatalf("data not JSON: %v", err)
		}
		if !utf8.Valid(out) {
			t.Fatal("invalid UTF-8 stored")
		}
		if len(out) > 256<<10 {
			t.Fatalf("stored %d bytes from a %d-byte request", len(out), len(body)+len(query))
		}
		// Secret-named fields never survive, wherever they came from.
		for _, m := range []map[string]any{cb.Query, cb.Body} {
			for _, k := range []string{"password", "token", "root_pass", "api_key", "pin"} {
				if v, ok := m[k]; ok && v != "[REDACTED]" {
					t.Fatalf("%s stored as %v", k, v)
				}
			}
		}
		if q, err := url.ParseQuery(query); err == nil {
			if v := q.Get("password"); v != "" && bytes.Contains(out, []byte(`"`+v+`"`)) && len(v) > 3 {
				t.Fatalf("password value %q stored", v)
			}
		}
	})
}
