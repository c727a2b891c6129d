package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := Guard(ok, GuardOptions{Token: "s3cret", AllowedOrigins: []string{"https://app.example"}})
	cases := []struct {
		name, origin, auth string
		want               int
	}{
		{"no origin, token", "", "Bearer s3cret", 204},
		{"loopback origin", "http://localhost:6274", "Bearer s3cret", 204},
		{"ipv6 loopback origin", "http://[::1]:3000", "Bearer s3cret", 204},
		{"allowed origin", "https://app.example", "Bearer s3cret", 204},
		{"foreign origin", "https://evil.example", "Bearer s3cret", 403},
		{"rebinding origin", "http://127.0.0.1.evil.example", "Bearer s3cret", 403},
		{"missing token", "", "", 401},
		{"wrong token", "", "Bearer nope", 401},
		{"basic auth is not a bearer", "", "Basic czNjcmV0", 401},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/mcp", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s: status %d, want %d", c.name, w.Code, c.want)
		}
	}
}

func TestGuardBodyLimit(t *testing.T) {
	var got []byte
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(204)
	})
	h := Guard(echo, GuardOptions{MaxBody: 10})
	for _, c := range []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"at the limit", "0123456789", false, 204},
		{"over, announced", "0123456789A", false, 413},
		{"over, chunked", "0123456789A", true, 413},
		{"at the limit, chunked", "0123456789", true, 204},
	} {
		got = nil
		r := httptest.NewRequest("POST", "/mcp", strings.NewReader(c.body))
		if c.chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s: status %d, want %d", c.name, w.Code, c.want)
		}
		if c.want == 204 && string(got) != c.body {
			t.Errorf("%s: handler read %q", c.name, got)
		}
		if c.want == 413 && (got != nil || !strings.Contains(w.Body.String(), "larger than 10 bytes")) {
			t.Errorf("%s: handler ran (%q) or unclear answer %q", c.name, got, w.Body.String())
		}
	}
	// Unauthenticated requests are refused before their body is read.
	h = Guard(echo, GuardOptions{Token: "s3cret", MaxBody: 10})
	r := httptest.NewRequest("POST", "/mcp", strings.NewReader("0123456789A"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("no token, big body: %d, want 401", w.Code)
	}
}
