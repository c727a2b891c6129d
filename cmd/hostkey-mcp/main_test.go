package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
)

// binary is the hostkey-mcp built once for the tests that need a real process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostkey-mcp-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "hostkey-mcp")
	// Event stores of in-process apps go here, not into the user's home.
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func initialize(t *testing.T, c *client.Client) *mcp.InitializeResult {
	t.Helper()
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "cmd-test", Version: "1"}
	res, err := c.Initialize(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// exercise runs the scenario every transport must pass: list tools, call a read tool,
// call with bad arguments, read a resource.
func exercise(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := t.Context()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range list.Tools {
		names[tl.Name] = true
	}
	if !names["eq_show"] || !names["eq_reboot"] || names["whmcs_mass_pay"] {
		t.Errorf("default toolsets: %d tools, eq_show=%v eq_reboot=%v whmcs_mass_pay=%v", len(list.Tools), names["eq_show"], names["eq_reboot"], names["whmcs_mass_pay"])
	}
	call := func(name string, args map[string]any) *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	res := call("eq_show", map[string]any{"id": 40101})
	if res.IsError {
		t.Fatalf("eq_show: %+v", res.Content)
	}
	res = call("eq_show", map[string]any{"id": "not-a-number"})
	if !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "id") {
		t.Errorf("bad arguments: %+v", res.Content)
	}
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "hostkey://servers/40101"
	rres, err := c.ReadResource(ctx, rr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rres.Contents[0].(mcp.TextResourceContents).Text, "40101") {
		t.Error("resource does not describe server 40101")
	}
}

func TestStdioProcess(t *testing.T) {
	c, err := client.NewStdioMCPClient(binary, []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, "--sandbox", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := initialize(t, c)
	if !strings.Contains(res.Instructions, "SANDBOX") {
		t.Errorf("instructions do not say sandbox: %q", res.Instructions)
	}
	exercise(t, c)
}

func TestStdoutIsOnlyProtocol(t *testing.T) {
	// Pipe initialize + tools/list into the process: every stdout line must be JSON-RPC.
	cmd := exec.Command(binary, "--sandbox", "--log-level", "debug")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	in := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/list"}
`
	cmd.Stdin = strings.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("hostkey-mcp did not exit at the end of stdin")
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout has %d lines, want 2 responses:\n%s", len(lines), stdout.String())
	}
	// Responses may arrive in any order (the server works on requests concurrently).
	var toolsList string
	for _, l := range lines {
		var msg map[string]any
		if err := json.Unmarshal([]byte(l), &msg); err != nil || msg["jsonrpc"] != "2.0" {
			t.Errorf("stdout line is not JSON-RPC: %q", l)
		}
		if id, _ := msg["id"].(float64); id == 2 {
			toolsList = l
		}
	}
	if !strings.Contains(toolsList, `"eq_show"`) {
		t.Errorf("no tools/list response listing eq_show:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "SANDBOX") {
		t.Error("stderr does not announce the sandbox")
	}
}

// httpApp serves a sandbox app's HTTP handler (what --http serves) on a test server.
func httpApp(t *testing.T, args ...string) *httptest.Server {
	t.Helper()
	a := builtApp(t, append([]string{"--sandbox"}, args...), os.Getenv, nil)
	hs := httptest.NewServer(a.httpHandler())
	t.Cleanup(hs.Close)
	return hs
}

func TestStreamableHTTP(t *testing.T) {
	ctx := t.Context()
	hs := httpApp(t, "--http", "127.0.0.1:0")

	c, err := client.NewStreamableHttpClient(hs.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	initialize(t, c)
	exercise(t, c)

	// A browser page from elsewhere is refused (DNS rebinding).
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/mcp", strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin: %d, want 403", resp.StatusCode)
	}
}

func TestStreamableHTTPWithToken(t *testing.T) {
	ctx := t.Context()
	t.Setenv("HOSTKEY_HTTP_TOKEN", "tok-123")
	hs := httpApp(t, "--http", "0.0.0.0:0")
	bad, _ := client.NewStreamableHttpClient(hs.URL + "/mcp")
	defer bad.Close()
	_ = bad.Start(ctx)
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "x", Version: "1"}
	if _, err := bad.Initialize(ctx, req); err == nil {
		t.Error("a client without the bearer token was served")
	}
	good, _ := client.NewStreamableHttpClient(hs.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer tok-123"}))
	defer good.Close()
	_ = good.Start(ctx)
	initialize(t, good)
	exercise(t, good)
}

func TestHTTPOffLoopbackNeedsToken(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--sandbox", "--http", "0.0.0.0:18080"}, strings.NewReader(""), &bytes.Buffer{}, &stderr, env())
	if code == 0 || !strings.Contains(stderr.String(), "HOSTKEY_HTTP_TOKEN") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestToolsJSONIsToolsList(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"tools", "--json", "--toolsets", "all"}, nil, &out, &bytes.Buffer{}, env()); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var list []map[string]any
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) < 100 {
		t.Fatalf("%d tools", len(list))
	}
	for _, tl := range list {
		for _, k := range []string{"name", "description", "inputSchema", "annotations"} {
			if _, ok := tl[k]; !ok {
				t.Errorf("%v lacks %s", tl["name"], k)
			}
		}
	}
}

func TestCallCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"call", "eq_status", "id=40101"}, nil, &out, &errb, env())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res["isError"] != false {
		t.Fatalf("output: %s", out.String())
	}
	out.Reset()
	code = run(t.Context(), []string{"call", "eq_status", "--args", `{"id":"x"}`}, nil, &out, &errb, env())
	if code == 0 || !strings.Contains(out.String(), "id") {
		t.Errorf("bad args: exit %d, %s", code, out.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, nil, &out, &out, env()); code != 0 || !strings.HasPrefix(out.String(), "hostkey-mcp ") {
		t.Errorf("--version: %d %q", code, out.String())
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hostkey.env")
	os.WriteFile(file, []byte("# comment\nHOSTKEY_TOOLSETS=billing\nHOSTKEY_READ_ONLY=true\nHOSTKEY_LOG_LEVEL=warn\n"), 0o600)
	cfg, _, err := parseConfig("t", []string{"--config", file, "--log-level", "debug"}, env("HOSTKEY_TOOLSETS", "ip"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Toolsets, []string{"ip"}) || !cfg.ReadOnly || cfg.LogLevel != zapcore.DebugLevel {
		t.Errorf("flag > env > file: toolsets=%q read_only=%v log=%q", cfg.Toolsets, cfg.ReadOnly, cfg.LogLevel)
	}
	os.WriteFile(file, []byte("HOSTKEY_TOOLZ=x\n"), 0o600)
	if _, _, err := parseConfig("t", []string{"--config", file}, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("unknown key in config file: %v", err)
	}
	if _, _, err := parseConfig("t", []string{"--confirm", "maybe"}, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "elicit") {
		t.Errorf("bad --confirm: %v", err)
	}
	if _, _, err := parseConfig("t", []string{"--events-retention", "2h"}, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "at least 24h") {
		t.Errorf("a retention shorter than a running install: %v", err)
	}
	if cfg, _, err := parseConfig("t", nil, env("HOSTKEY_EVENTS_RETENTION", "0"), &bytes.Buffer{}); err != nil || cfg.Retention != 0 {
		t.Errorf("retention 0 keeps forever: %v %v", err, cfg)
	}
	if cfg, _, _ := parseConfig("t", nil, env(), &bytes.Buffer{}); cfg.Retention != 720*time.Hour {
		t.Errorf("default retention %s", cfg.Retention)
	}
	// Secrets in a config file others can read are refused; at 0600 they are used.
	os.WriteFile(file, []byte("HOSTKEY_PIN=4321\n"), 0o644)
	os.Chmod(file, 0o644)
	if _, _, err := parseConfig("t", []string{"--config", file}, env(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secrets file: %v", err)
	}
	os.Chmod(file, 0o600)
	cfg, _, err = parseConfig("t", []string{"--config", file}, env(), &bytes.Buffer{})
	if err != nil || cfg.PIN != "4321" {
		t.Errorf("PIN from a 0600 config file: %v %q", err, cfg.PIN)
	}
	cfg, _, _ = parseConfig("t", []string{"--config", file}, env("HOSTKEY_PIN", "9999"), &bytes.Buffer{})
	if cfg.PIN != "9999" {
		t.Errorf("the environment must win over the config file: %q", cfg.PIN)
	}
}

// TestREADMEConfigurationReference fails when a flag changes and the README's generated
// reference does not (regenerate with `go test ./cmd/hostkey-mcp -run README -update`).
func TestREADMEConfigurationReference(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- BEGIN CONFIG REFERENCE (generated: go test ./cmd/hostkey-mcp -run README -update) -->\n", "<!-- END CONFIG REFERENCE -->"
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README lacks the configuration reference markers")
	}
	want := markdownReference()
	got := string(readme[i+len(begin) : j])
	if got != want {
		if *updateREADME {
			out := append(append(append([]byte{}, readme[:i+len(begin)]...), want...), readme[j:]...)
			if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README configuration reference is stale: run go test ./cmd/hostkey-mcp -run README -update")
	}
	var help bytes.Buffer
	usage(&help)
	for _, o := range options {
		if !strings.Contains(help.String(), "--"+o.Name) || !strings.Contains(got, "`--"+o.Name+"`") {
			t.Errorf("--%s missing from --help or README", o.Name)
		}
	}
}

func TestWiringExposesWorkflowsEventsAndAudits(t *testing.T) {
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"tools", "--json", "--toolsets", "servers,workflows"}, nil, &out, &errb, env())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`"server_reinstall"`, `"server_reinstall_pxe"`, `"server_order"`, `"server_job_watch"`, `"events_list"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tools/list lacks %s", want)
		}
	}
	out.Reset()
	if code := run(t.Context(), []string{"tools", "--json", "--toolsets", "servers,workflows", "--exclude-tools", "server_reinstall_pxe"}, nil, &out, &errb, env()); code != 0 {
		t.Fatalf("exclude a workflow tool: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), `"server_reinstall_pxe"`) || !strings.Contains(out.String(), `"server_reinstall"`) {
		t.Error("--exclude-tools did not apply to the workflow tools")
	}
	// A confirmed call through the CLI lands in the audit log, whose chain verifies.
	out.Reset()
	code = run(t.Context(), []string{"call", "eq_status", "id=40101", "--audit-log", auditPath, "--data-dir", dir}, nil, &out, &errb, env())
	if code != 0 {
		t.Fatalf("call: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"audit-verify", auditPath}, nil, &out, &errb, env()); code != 0 || !strings.Contains(out.String(), "hash chain intact") {
		t.Fatalf("audit-verify: %d %s %s", code, out.String(), errb.String())
	}
	b, _ := os.ReadFile(auditPath)
	os.WriteFile(auditPath, bytes.Replace(b, []byte("eq_status"), []byte("eq_reboot"), 1), 0o600)
	if code := run(t.Context(), []string{"audit-verify", auditPath}, nil, &out, &errb, env()); code == 0 {
		t.Error("an edited audit log verified")
	}
}

func TestDoctorSandboxIsGreen(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"doctor", "--sandbox"}, nil, &out, &out, env())
	if code != 0 || !strings.Contains(out.String(), "all checks passed") {
		t.Fatalf("doctor --sandbox: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"SANDBOX", "logged in", "servers", "PIN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q", want)
		}
	}
	out.Reset()
	code = run(t.Context(), []string{"doctor", "--sandbox", "--pin-file", "/nonexistent/pin"}, nil, &out, &out, env())
	if code == 0 {
		t.Errorf("doctor passed with a missing PIN file:\n%s", out.String())
	}
}

func TestLoginAlertsPointsAnAPIKey(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	auditFile := filepath.Join(dir, "audit.jsonl")
	args := []string{"login-alerts", "--sandbox", "--public-url", "https://hooks.example/hk", "--webhook-listen", "127.0.0.1:0", "--data-dir", dir, "--audit-log", auditFile}
	if code := run(t.Context(), append(args, "501"), strings.NewReader("n\n"), &out, &errb, env()); code == 0 {
		t.Error("an unconfirmed edit succeeded")
	}
	// The edit went through the policy: the person saw the confirmation, the audit log
	// holds the decline and then the confirmed edit, without the alert URL's secret.
	if !strings.Contains(errb.String(), "Confirm? [y/N]") {
		t.Errorf("no terminal confirmation: %s", errb.String())
	}
	out.Reset()
	if code := run(t.Context(), append(args, "501"), strings.NewReader("y\n"), &out, &errb, env()); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "now sends login alerts") {
		t.Errorf("output: %s", out.String())
	}
	if regexp.MustCompile(`/alerts/login/[A-Za-z0-9_-]{20,}`).MatchString(out.String() + errb.String()) {
		t.Error("the secret login-alert token was printed")
	}
	if code := run(t.Context(), append(args, "502"), strings.NewReader("y\n"), &out, &errb, env()); code == 0 {
		t.Error("a per-server key was pointed at the alerts")
	}
	b, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	var decisions []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct{ Tool, Decision string }
		_ = json.Unmarshal([]byte(line), &e)
		if e.Tool == "api_keys_edit" {
			decisions = append(decisions, e.Decision)
		}
	}
	if strings.Join(decisions, ",") != "pending,declined,pending,confirmed" {
		t.Errorf("audit decisions for api_keys_edit: %v\n%s", decisions, b)
	}
	if regexp.MustCompile(`/alerts/login/[A-Za-z0-9_-]{20,}`).Match(b) {
		t.Error("the audit log holds the login-alert secret")
	}
	if code := run(t.Context(), []string{"audit-verify", auditFile}, nil, io.Discard, io.Discard, env()); code != 0 {
		t.Errorf("audit chain broken: exit %d", code)
	}
}

func TestSandboxAPIServesInvapi(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sandbox-api", "--listen", "127.0.0.1:0"}, nil, io.Discard, pw, env())
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "invapi simulator on "))
	go io.Copy(io.Discard, pr)
	// The real client, pointed at the stand-alone simulator, logs in and reads a server.
	cfg, _, _ := parseConfig("t", []string{"--base-url", base}, env("HOSTKEY_API_KEY", sandboxKey(t)), io.Discard)
	a, err := newApp(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.sandbox != nil {
		t.Fatal("with an API key the app must not start its own sandbox")
	}
	resp, err := a.client.Call(t.Context(), "eq", "show", map[string]any{"id": 40101})
	if err != nil || !strings.Contains(string(resp.Body), "40101") {
		t.Fatalf("eq/show through sandbox-api: %v", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("sandbox-api exit %d after stop", code)
	}
}

func sandboxKey(t *testing.T) string {
	t.Helper()
	s, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := s.Keys()
	return k
}

// TestInstructionsNameTheAllowlist: with --servers/--server-tags the model is told up
// front which servers it may act on.
func TestInstructionsNameTheAllowlist(t *testing.T) {
	cfg, _, err := parseConfig("t", []string{"--sandbox", "--servers", "40101, 40102", "--server-tags", "web", "--data-dir", t.TempDir()}, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.instructions(); !strings.Contains(got, "Scope: only servers 40101, 40102 and servers tagged web may be acted on") {
		t.Errorf("instructions: %q", got)
	}
	cfg.Servers, cfg.ServerTags = nil, nil
	if got := a.instructions(); strings.Contains(got, "Scope:") {
		t.Errorf("no allowlist, yet: %q", got)
	}
}
