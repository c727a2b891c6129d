package main

// Issue 15 (policy part): the policy's safety state is shared by real processes on one
// data dir. Each hostkey-mcp here is a separate process (the binary TestMain builds);
// all talk to one simulator this test serves, so what reached invapi is counted once.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
)

// sharedSim serves a simulator without the PIN lock-out delay and returns it with the
// environment a hostkey-mcp process needs to use it.
func sharedSim(t *testing.T) (*sim.Server, []string) {
	t.Helper()
	s, err := sim.New(sim.Options{NoPINFailDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	key, _ := s.Keys()
	return s, []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "HOSTKEY_BASE_URL=" + hs.URL + "/", "HOSTKEY_API_KEY=" + key}
}

func simSent(s *sim.Server, module, action string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Module == module && r.Action == action {
			n++
		}
	}
	return n
}

// cliRun runs one `hostkey-mcp call` process; stdin answers its confirmation.
func cliRun(t *testing.T, env []string, stdin string, args ...string) (code int, out string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"call"}, args...)...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), b.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, b.String()
}

// Issue 15: "three CLI runs with a wrong PIN walked into invapi's lockout". A wrong PIN
// in one CLI run pauses PIN calls in the next run (another process): it is refused
// locally, nothing is sent, and nobody is asked to confirm it.
func TestPINCooldownAcrossCLIProcesses(t *testing.T) {
	s, env := sharedSim(t)
	dir := t.TempDir()
	env = append(env, "HOSTKEY_PIN=WRONG-pin-2468")
	code, out := cliRun(t, env, "y\n", "eq_reboot", "id=40101", "--data-dir", dir)
	if code == 0 || !strings.Contains(out, "PIN") {
		t.Fatalf("the wrong PIN: exit %d: %s", code, out)
	}
	if n := simSent(s, "eq", "reboot"); n != 1 {
		t.Fatalf("%d reboots reached the simulator, want the one with the wrong PIN", n)
	}
	for _, tool := range []string{"eq_on", "eq_reboot"} {
		code, out = cliRun(t, env, "y\n", tool, "id=40101", "--data-dir", dir)
		if code == 0 || !strings.Contains(out, "PIN actions are paused") {
			t.Fatalf("%s in the next process: exit %d: %s", tool, code, out)
		}
		if strings.Contains(out, "Confirm?") {
			t.Fatalf("%s: the person was asked to confirm a call the cool-down refuses: %s", tool, out)
		}
	}
	if n, on := simSent(s, "eq", "reboot"), simSent(s, "eq", "on"); n != 1 || on != 0 {
		t.Fatalf("during the cool-down another process sent %d reboots and %d power-ons", n-1, on)
	}
}

// A destructive rate limit with a burst of 2 holds for two stdio servers on one data dir
// together: of 6 concurrent reboots (3 each) at most 2 reach invapi.
func TestDestructiveRateLimitAcrossProcesses(t *testing.T) {
	s, env := sharedSim(t)
	env = append(env, "HOSTKEY_PIN="+s.PIN())
	dir := t.TempDir()
	var clients []*client.Client
	for range 2 {
		c, err := client.NewStdioMCPClient(binary, env, "--data-dir", dir, "--confirm", "off", "--log-level", "error",
			"--rate-destructive", "0.0001:2", "--rate-server", "off", "--rate-global", "off", "--rate-session", "off")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		initialize(t, c)
		clients = append(clients, c)
	}
	var mu sync.Mutex
	limited, other := 0, 0
	var wg sync.WaitGroup
	for _, c := range clients {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = "eq_reboot", map[string]any{"id": 40101}
				res, err := c.CallTool(t.Context(), req)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case res.IsError && strings.Contains(res.Content[0].(mcp.TextContent).Text, "Rate limited: destructive calls"):
					limited++
				default:
					other++
				}
			}()
		}
	}
	wg.Wait()
	if n := simSent(s, "eq", "reboot"); n > 2 || limited != 4 {
		t.Fatalf("burst 2 across two processes: %d reboots reached invapi, %d calls rate limited, %d others", n, limited, other)
	}
}

// stdioServer starts a stdio hostkey-mcp process and returns its client and the base
// URL of its approvals API (read from its log: the port is chosen at start).
func stdioServer(t *testing.T, env []string, args ...string) (*client.Client, string) {
	t.Helper()
	c, err := client.NewStdioMCPClient(binary, env, append(args, "--log-format", "json", "--log-level", "info")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	stderr, ok := client.GetStderr(c)
	if !ok {
		t.Fatal("no stderr")
	}
	found := make(chan string, 1)
	go func() { // drains stderr for the process's lifetime
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg    string `json:"msg"`
				BotAPI string `json:"bot_api"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "approval listener" {
				select {
				case found <- strings.TrimSuffix(line.BotAPI, "{id}"):
				default:
				}
			}
		}
	}()
	initialize(t, c)
	select {
	case api := <-found:
		return c, api
	case <-t.Context().Done():
		t.Fatal("no approval listener logged")
	}
	return nil, ""
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return res, b.String()
}

// An approval asked for in one stdio server is decided through another process's
// approvals API (the bot), honoured by the asking process and used once.
func TestApprovalAcrossProcesses(t *testing.T) {
	const bot = "bot-credential-3c4d"
	s, env := sharedSim(t)
	env = append(env, "HOSTKEY_PIN="+s.PIN(), "HOSTKEY_APPROVER_TOKEN="+bot)
	dir := t.TempDir()
	a, _ := stdioServer(t, env, "--data-dir", dir, "--confirm", "token", "--rate-server", "off")
	_, apiB := stdioServer(t, env, "--data-dir", dir, "--confirm", "token", "--rate-server", "off")

	args := map[string]any{"id": 40101}
	res, out := callTool(t, a, "eq_reboot", args)
	id, _ := res.StructuredContent.(map[string]any)["approval_id"].(string)
	if !res.IsError || id == "" {
		t.Fatalf("want an approval id: %s", out)
	}
	post := func(id, decision string) int {
		req, _ := http.NewRequest(http.MethodPost, apiB+id, strings.NewReader(`{"decision":"`+decision+`"}`))
		req.Header.Set("Authorization", "Bearer "+bot)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(id, "approve"); code != http.StatusOK {
		t.Fatalf("approve through the other process: %d", code)
	}
	if code := post(id, "decline"); code != http.StatusConflict {
		t.Fatalf("a second decision: %d", code)
	}
	if n := simSent(s, "eq", "reboot"); n != 0 {
		t.Fatalf("%d reboots before the repeat", n)
	}
	if res, out := callTool(t, a, "eq_reboot", args); res.IsError {
		t.Fatalf("the approved repeat: %s", out)
	}
	if res, out := callTool(t, a, "eq_reboot", args); !res.IsError || !strings.Contains(out, "onfirmation required") {
		t.Fatalf("a replay of the used approval: %s", out)
	}
	if n := simSent(s, "eq", "reboot"); n != 1 {
		t.Fatalf("%d reboots sent, want exactly 1", n)
	}
}

// Two processes' decisions land in one audit chain in the store; audit-export writes it
// as the JSON Lines audit-verify checks, anchored by the head the server logs.
func TestAuditChainAcrossProcessesExports(t *testing.T) {
	s, env := sharedSim(t)
	dir := t.TempDir()
	for _, tool := range []string{"eq_show", "eq_status"} { // a read (queued line) and another
		if code, out := cliRun(t, append(env, "HOSTKEY_PIN="+s.PIN()), "", tool, "id=40101", "--data-dir", dir, "--log-format", "json"); code != 0 {
			t.Fatalf("%s: exit %d: %s", tool, code, out)
		}
	}
	code, logOut := cliRun(t, append(env, "HOSTKEY_PIN="+s.PIN()), "", "eq_show", "id=40101", "--data-dir", dir, "--log-format", "json")
	if code != 0 {
		t.Fatal(logOut)
	}
	m := regexp.MustCompile(`"msg":"audit chain head[^"]*".*"lines":(\d+).*"head":"([0-9a-f]{64})"`).FindAllStringSubmatch(logOut, -1)
	if len(m) == 0 {
		t.Fatalf("no audit chain head logged at shutdown: %s", logOut)
	}
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	cmd := exec.Command(binary, "audit-export", "--data-dir", dir, file)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "exported 3 audit lines") {
		t.Fatalf("audit-export: %v: %s", err, out)
	}
	last := m[len(m)-1]
	if last[1] != "3" {
		t.Fatalf("the logged head is at line %s, want 3", last[1])
	}
	if code, out := auditVerify(t, "--expect-lines", last[1], "--expect-head", last[2], file); code != 0 || !strings.Contains(out, "matches the anchor") {
		t.Fatalf("audit-verify of the export: exit %d: %s", code, out)
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), s.PIN()) {
		t.Fatal("the PIN is in the audit chain")
	}
}

// Every stdio server names its one session "stdio": on a shared data dir, one process's
// per-session bucket is not another's.
func TestSessionLimitPerStdioProcess(t *testing.T) {
	_, env := sharedSim(t)
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--rate-session", "0.0001:1", "--rate-global", "off"}
	a, _ := stdioServer(t, env, args...)
	b, _ := stdioServer(t, env, args...)
	if res, out := callTool(t, a, "eq_show", map[string]any{"id": 40101}); res.IsError {
		t.Fatalf("A: %s", out)
	}
	if res, out := callTool(t, b, "eq_show", map[string]any{"id": 40101}); res.IsError {
		t.Fatalf("B shares A's session bucket: %s", out)
	}
	if res, out := callTool(t, a, "eq_show", map[string]any{"id": 40101}); !res.IsError || !strings.Contains(out, "calls in this MCP session") {
		t.Fatalf("A's second call: %s", out)
	}
}
