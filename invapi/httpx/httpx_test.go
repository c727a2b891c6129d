package httpx

import "testing"

func TestIsLoopback(t *testing.T) {
	for s, want := range map[string]bool{
		// listen addresses and Host headers
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, "LOCALHOST:1": true,
		":8080": false, "0.0.0.0:8080": false, "192.0.2.1:80": false, "nonsense": false,
		// hosts (URL hostnames, RemoteAddr without port)
		"127.0.0.2": true, "::1": true, "[::1]": true, "::ffff:127.0.0.1": true, "localhost": true,
		"": false, "127.0.0.1.evil.example": false, "10.0.0.1": false, "fe80::1": false,
	} {
		if got := IsLoopback(s); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", s, got, want)
		}
	}
}
