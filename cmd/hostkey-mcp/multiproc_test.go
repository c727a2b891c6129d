package main

// Real processes on one data dir (issue "Processes are replicas"): two stdio servers and
// CLI runs of the built binary, against one invapi simulator served over HTTP.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

type mpEnv struct {
	dir, addr string
	env       []string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs a stdio server of the binary and returns its client and process.
// serverErr is the second server's stderr (the one that survives), kept for failures.
var serverErr sync.Map

func (e *mpEnv) startServer(t *testing.T) (*client.Client, *os.Process) {
	t.Helper()
	var proc *exec.Cmd
	tr := transport.NewStdioWithOptions(binary, e.env, []string{"--data-dir", e.dir, "--webhook-listen", e.addr,
		"--public-url", "http://" + e.addr, "--toolsets", "servers,workflows"},
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			proc = exec.CommandContext(ctx, command, args...)
			proc.Env = env // exactly these: nothing of the test's environment
			return proc, nil
		}))
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	t.Cleanup(func() { _ = c.Close() })
	var buf bytes.Buffer
	var mu sync.Mutex
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := tr.Stderr().Read(b)
			mu.Lock()
			buf.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	serverErr.Store(proc.Process.Pid, func() string { mu.Lock(); defer mu.Unlock(); return buf.String() })
	initialize(t, c)
	return c, proc.Process
}

func (e *mpEnv) cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"call"}, args...)...)
	cmd.Args = append(cmd.Args, "--data-dir", e.dir, "--webhook-listen", e.addr, "--public-url", "http://"+e.addr, "--toolsets", "servers,workflows")
	cmd.Env = e.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestMultiProcessOneDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	ctx := t.Context()
	// One invapi for every process; installs take 2.5 s.
	s, err := sim.New(sim.Options{StageDuration: 500 * time.Millisecond, NoPINFailDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go func() { _ = s.Serve(sctx, sln, 1) }()
	key, _ := s.Keys()
	e := &mpEnv{dir: t.TempDir(), addr: freeAddr(t)}
	e.env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "HOSTKEY_BASE_URL=http://" + sln.Addr().String() + "/",
		"HOSTKEY_API_KEY=" + key, "HOSTKEY_PIN=" + s.PIN(), "HOSTKEY_LOG_LEVEL=debug"}

	c1, p1 := e.startServer(t)
	h, err := webhook.ProbeHolder(ctx, e.addr)
	if err != nil || h.PID != p1.Pid {
		t.Fatalf("the first server does not hold the listener: %+v %v", h, err)
	}
	c2, p2 := e.startServer(t)
	_ = c1

	// Install jobs awaiting callbacks, created in the store as a workflow would.
	st, err := state.Open(ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ws := store.NewShared(st)
	const n = 120
	secrets := createInstallJobs(t, ws, "mp", 90000, n)
	// Callback load from 8 senders; each callback is retried until acknowledged (200).
	var acked sync.Map
	var next atomic.Int64
	hc := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				for {
					resp, err := hc.Post("http://"+e.addr+"/cb/install/"+secrets[i], "application/json", strings.NewReader(`{"status":"done"}`))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							acked.Store(i, true)
							break
						}
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// kill -9 of the listener holder under the load.
	time.Sleep(300 * time.Millisecond)
	if err := p1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	var took time.Duration
	for {
		if h, err := webhook.ProbeHolder(ctx, e.addr); err == nil && h.PID == p2.Pid {
			took = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > 10*time.Second {
			t.Fatal("no process took the webhook listener over within 10 s of kill -9")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("listener taken over %v after kill -9; %d callbacks acknowledged in %v (%.0f/s, paced by the per-IP rate limit of 10/s, burst 40)",
		took.Round(time.Millisecond), n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	// Every acknowledged callback stored exactly once, visible through every process.
	p, err := ws.Since(ctx, 0, 10000, store.Filter{Kinds: []string{store.KindInstallDone}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, ev := range p.Events {
		seen[ev.ServerID]++
	}
	for i := range n {
		if _, ok := acked.Load(i); ok && seen[int64(90000+i)] != 1 {
			t.Fatalf("callback %d acknowledged but stored %d times", i, seen[int64(90000+i)])
		}
	}
	if got := countInstallEvents(t, c2, n); got != n {
		t.Fatalf("the surviving server's events_list shows %d install events, want %d", got, n)
	}
	out, errs, err := e.cli(t, "", "events_list", "kind=install_done", "limit=500")
	if err != nil {
		t.Fatalf("CLI events_list: %v\n%s", err, errs)
	}
	if got := strings.Count(out, `\"kind\":\"install_done\"`) + strings.Count(out, `"kind": "install_done"`); got < n {
		t.Fatalf("the CLI's events_list shows %d install events, want %d:\n%.2000s", got, n, out)
	}

	// login-alerts while a server runs: the URL it points the key at is served by the
	// running server's listener, and the alert reaches every process.
	cmd := exec.Command(binary, "login-alerts", "--data-dir", e.dir, "--webhook-listen", e.addr, "--public-url", "http://"+e.addr, "501")
	cmd.Env, cmd.Stdin = e.env, strings.NewReader("y\n")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "now sends login alerts") {
		t.Fatalf("login-alerts while a server runs: %v\n%s", err, b)
	}
	var alertURL string
	for _, r := range s.Requests() {
		if r.Module == "api_keys" && r.Action == "edit" {
			alertURL = r.Form.Get("params[login_notify_address]")
		}
	}
	if !strings.Contains(alertURL, "/alerts/login/") {
		t.Fatalf("the key was not pointed at the alerts: %q", alertURL)
	}
	if resp, err := hc.Get(alertURL + "?ip=198.51.100.7"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the running server does not accept the alert URL login-alerts set: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	lreq := mcp.CallToolRequest{}
	lreq.Params.Name = "events_list"
	lreq.Params.Arguments = map[string]any{"kind": "login_alert"}
	if res, err := c2.CallTool(ctx, lreq); err != nil || !strings.Contains(fmt.Sprint(res.StructuredContent), "198.51.100.7") {
		t.Fatalf("the server's events_list lacks the login alert: %v %+v", err, res)
	}

	// A job started by a CLI that exits is finished by the surviving server.
	out, errs, err = e.cli(t, "y\n", "server_reinstall", "id=40102", "os_id=187", "root_pass=Secret-pass1", "wait_seconds=1")
	if err != nil {
		t.Fatalf("CLI server_reinstall: %v\n%s\n%s", err, out, errs)
	}
	m := regexp.MustCompile(`job-[0-9a-f]{16}`).FindString(out)
	if m == "" || !strings.Contains(out, "takes the job over") {
		t.Fatalf("the CLI's handle does not say the job is handed over: %s", out)
	}
	// The CLI hands the job over as it exits; should that hand-over not land (a loaded
	// machine), the job's 30 s lease expires and the server takes it then.
	deadline := time.Now().Add(75 * time.Second)
	for {
		wf, err := st.Workflow(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if wf.State != state.WorkflowRunning {
			if wf.State != state.WorkflowDone {
				t.Fatalf("the job ended %s: %s", wf.State, wf.Result)
			}
			break
		}
		if time.Now().After(deadline) {
			for _, r := range s.Requests() {
				if r.Module == "eq_callback" || r.Action == "order_instance" {
					t.Logf("invapi saw %s/%s %v", r.Module, r.Action, r.Vars)
				}
			}
			if f, ok := serverErr.Load(p2.Pid); ok {
				for _, l := range strings.Split(f.(func() string)(), "\n") {
					if strings.Contains(l, "workflow") || strings.Contains(l, "eq_callback") || strings.Contains(l, "job") {
						t.Log(l)
					}
				}
			}
			t.Fatalf("the job started by the CLI did not finish under the server (owner %q; the server is pid %d; steps %+v)\nCLI stderr:\n%s", wf.Owner, p2.Pid, wf.Steps, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	orders := 0
	for _, r := range s.Requests() {
		if r.Module == "eq" && r.Action == "order_instance" {
			orders++
		}
	}
	if n := orders; n != 1 {
		t.Fatalf("order_instance sent %d times, want 1", n)
	}
	// The CLI's watch of the finished job says how it ended.
	out, errs, err = e.cli(t, "", "server_job_watch", "job_id="+m, "wait_seconds=1")
	if err != nil || !strings.Contains(out, "ended: done") {
		t.Fatalf("CLI server_job_watch of the finished job: %v\n%s\n%s", err, out, errs)
	}
}

// countInstallEvents pages through a server's events_list.
func countInstallEvents(t *testing.T, c *client.Client, want int) int {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = "events_list"
	req.Params.Arguments = map[string]any{"kind": "install_done", "limit": 500}
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var sc struct {
		Events []struct {
			ServerID int64 `json:"server_id"`
		} `json:"events"`
	}
	_ = json.Unmarshal(b, &sc)
	return len(sc.Events)
}
