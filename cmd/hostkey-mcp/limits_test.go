package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// Issue 12, item 9: an authenticated client could post any size to /mcp (a 50 MB
// initialize took the server from 25 to 190 MB). Over --http-max-body (1 MiB by default)
// the answer is 413, whether the size is announced or the body is chunked, and the
// server keeps serving.
func TestHTTPBodyLimit(t *testing.T) {
	t.Setenv("HOSTKEY_HTTP_TOKEN", "tok-123")
	hs := httpApp(t, "--http", "0.0.0.0:0")
	big := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
	post := func(body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", hs.URL+"/mcp", body)
		req.Header.Set("Authorization", "Bearer tok-123")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post(strings.NewReader(big)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body with Content-Length: status %d, want 413", resp.StatusCode)
	}
	// No Content-Length (chunked): cut after reading just over the limit.
	if resp := post(io.MultiReader(strings.NewReader(big))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB chunked body: status %d, want 413", resp.StatusCode)
	}
	// Just under the limit is an ordinary request (here: a bad one, so not 413).
	small := bytes.Repeat([]byte(" "), 1<<20-64)
	small = append(small, `{"jsonrpc":"2.0","id":1,"method":"ping"}`...)
	if resp := post(bytes.NewReader(small)); resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Errorf("a body under 1 MiB got 413")
	}
	// The server is fine afterwards.
	c, err := client.NewStreamableHttpClient(hs.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer tok-123"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c)
	exercise(t, c)
}

func TestHTTPMaxBodyFlag(t *testing.T) {
	for in, want := range map[string]int64{"1MiB": 1 << 20, "512KiB": 512 << 10, "2048": 2048} {
		cfg, _, err := parseConfig("test", []string{"--http-max-body", in}, func(string) string { return "" }, &bytes.Buffer{})
		if err != nil || cfg.HTTPMaxBody != want {
			t.Errorf("--http-max-body %s: %d, %v; want %d", in, cfg.HTTPMaxBody, err, want)
		}
	}
	cfg, _, err := parseConfig("test", nil, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil || cfg.HTTPMaxBody != 1<<20 {
		t.Errorf("default: %d, %v", cfg.HTTPMaxBody, err)
	}
	var stderr bytes.Buffer
	if _, _, err := parseConfig("test", []string{"--http-max-body", "1MB"}, func(string) string { return "" }, &stderr); err == nil ||
		!strings.Contains(stderr.String()+err.Error(), "512KiB") {
		t.Errorf("a bad size: %v %s", err, stderr.String())
	}
}
