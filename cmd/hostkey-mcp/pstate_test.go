package main

// Issue 15 (policy part): the policy's safety state is shared by real processes on one
// data dir. Each hostkey-mcp here is a separate process (the binary TestMain builds);
// all talk to one simulator this test serves, so what reached invapi is counted once.

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
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
