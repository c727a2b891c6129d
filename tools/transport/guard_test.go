package transport

import (
	"net/http"
	"net/http/httptest"
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

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		":8080": false, "0.0.0.0:8080": false, "192.0.2.1:80": false, "nonsense": false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
