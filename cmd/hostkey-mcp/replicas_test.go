package main

// Issue 16, "Done when": real processes scaled out on PostgreSQL. One invapi simulator,
// three replicas of the binary on one database (HOSTKEY_STORE), each serving MCP and the
// callback routes over --http, and a load balancer of the test's own in front of them
// (round robin, or sticky on Mcp-Session-Id). Scenarios, in order, on one database:
// (3) a destructive rate limit shared by the replicas; (2) an approval asked on one
// replica, decided on another, used once on a third; (1)+(4) ~2,000 callbacks with
// replays across replicas and kill -9 of the replica running a workflow job; (5) the
// audit chain all of them wrote, exported and verified.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	"github.com/hostkey/hostkey-mcp/state/statetest"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

const (
	replicaBotToken = "bot-credential-replicas-7f1e"
	replicaLease    = 3 * time.Second // --job-lease of the replicas
	replicaPIN      = "Rq7vZx9Kw2"
)

// replica is one hostkey-mcp process of the test.
type replica struct {
	i         int
	addr      string // --http: MCP and the callback routes
	approvals string // the bot API: …/policy/api/approvals/
	cmd       *exec.Cmd
	log       toolstest.SyncBuffer // stderr (JSON lines)
	exited    chan struct{}
	err       error // how it exited, once exited is closed
	killed    atomic.Bool
}

func (r *replica) url() string { return "http://" + r.addr }

// replicaSet is the simulator, the store and N replicas behind the two balancers.
type replicaSet struct {
	sim     *sim.Server
	target  string // the store every replica opens (HOSTKEY_STORE)
	env     []string
	reps    []*replica
	rr      *lb        // round robin: callbacks, 2026-07-28 clients
	sticky  *lb        // sticky on Mcp-Session-Id: 2025-era clients
	logs    []*replica // every replica ever started (for the audit anchors and the secret scan)
	dataDir string
	secrets []string // callback URL secrets (the logs must not hold them)
}

// requireReplicaFlags fails (rather than skips) when the binary lacks what replica mode
// needs: the test must not pass by running each replica on a store of its own.
func requireReplicaFlags(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(binary, "--help").CombinedOutput()
	for _, f := range []string{"--store", "--job-lease"} {
		if !bytes.Contains(out, []byte(f)) {
			t.Fatalf("the binary has no %s flag (issue 16, branch replica): replicas cannot share PostgreSQL", f)
		}
	}
}

func newReplicaSet(t *testing.T, s *sim.Server, simURL, target string) *replicaSet {
	key, _ := s.Keys()
	rs := &replicaSet{sim: s, target: target,
		env: []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "HOSTKEY_BASE_URL=" + simURL + "/",
			"HOSTKEY_API_KEY=" + key, "HOSTKEY_PIN=" + s.PIN(), "HOSTKEY_APPROVER_TOKEN=" + replicaBotToken}}
	if strings.HasPrefix(target, "postgres") {
		rs.env = append(rs.env, "HOSTKEY_STORE="+target)
	} else {
		rs.dataDir = target // SQLite: one data dir on one machine
	}
	return rs
}

// start runs n replicas with the given extra flags behind fresh balancers and waits
// until every one answers /healthz. Replicas of an earlier start must be stopped.
func (rs *replicaSet) start(t *testing.T, n int, flags ...string) {
	t.Helper()
	rs.reps = nil
	var backends []string
	for i := range n {
		rs.reps = append(rs.reps, &replica{i: i, addr: freeAddr(t), exited: make(chan struct{})})
		backends = append(backends, rs.reps[i].addr)
	}
	rs.rr, rs.sticky = newLB(t, lbRoundRobin, backends), newLB(t, lbSession, backends)
	for _, r := range rs.reps {
		ap := freeAddr(t)
		r.approvals = "http://" + ap + "/policy/api/approvals/"
		dir := rs.dataDir
		if dir == "" {
			dir = t.TempDir() // its own: everything shared must come from the store
		}
		args := append([]string{"--http", r.addr, "--approval-listen", ap, "--public-url", rs.rr.URL(),
			"--data-dir", dir, "--trusted-proxies", "127.0.0.1/32", "--toolsets", "servers,power,workflows",
			"--job-lease", replicaLease.String(), "--log-format", "json", "--log-level", "info"}, flags...)
		r.cmd = exec.Command(binary, args...)
		r.cmd.Env = rs.env
		r.cmd.Stdout, r.cmd.Stderr = &r.log, &r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.err = r.cmd.Wait(); close(r.exited) }()
		rs.logs = append(rs.logs, r)
		t.Cleanup(func() { r.kill() })
	}
	for _, r := range rs.reps {
		r.waitReady(t)
	}
}

func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.exited:
			t.Fatalf("replica %d exited at start (%v):\n%s", r.i, r.err, r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d not ready within 30 s (%v):\n%s", r.i, err, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill is kill -9.
func (r *replica) kill() {
	if r.cmd.Process != nil {
		r.killed.Store(true)
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
	}
}

// stop is a graceful stop (SIGTERM): the replica hands its jobs over and logs its
// audit head.
func (rs *replicaSet) stop(t *testing.T) {
	for _, r := range rs.reps {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, r := range rs.reps {
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("replica %d did not stop within 20 s of SIGTERM", r.i)
			r.kill()
		}
	}
}

// quietLog keeps the clients' reconnect and close notices (replicas are killed here)
// out of the test output.
var quietLog = slog.New(slog.DiscardHandler)

// modernClient is a 2026-07-28 client (no session) of url.
func modernClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url+"/mcp", transport.WithHTTPLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c)
	return c
}

// sessionClient is a 2025-era client with an Mcp-Session-Id. With resume set it
// continues that session (another replica, no initialize); listen opens the GET stream
// notifications arrive on.
func sessionClient(t *testing.T, url, resume string, listen bool) (*client.Client, *transport.StreamableHTTP) {
	t.Helper()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPLogger(quietLog)}
	if listen {
		//lint:ignore SA1019 the GET stream is where 2025-era sessions get notifications, which this covers
		opts = append(opts, transport.WithContinuousListening())
	}
	if resume != "" {
		opts = append(opts, transport.WithSession(resume))
	}
	tr, err := transport.NewStreamableHTTP(url+"/mcp", opts...)
	if err != nil {
		t.Fatal(err)
	}
	copts := []client.ClientOption{client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)}
	if resume != "" {
		copts = append(copts, client.WithSession())
	}
	c := client.NewClient(tr, copts...)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resume == "" {
		initialize(t, c)
	}
	return c, tr
}

// approvalID is the approval a two-step result names.
func approvalID(res *mcp.CallToolResult) string {
	if m, ok := res.StructuredContent.(map[string]any); ok {
		if id, _ := m["approval_id"].(string); id != "" {
			return id
		}
	}
	return ""
}

func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	target := statetest.PostgresURL(t)
	requireReplicaFlags(t)
	begin := time.Now()

	// Installs take 15 s, so the kill at 30 % of the callbacks lands mid-install even on a
	// loaded machine.
	s, err := sim.New(sim.Options{StageDuration: 3 * time.Second, NoPINFailDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	go func() { _ = s.Serve(sctx, sln, 1) }()
	// A PIN long enough that finding it in a log is a leak, not a coincidence (the
	// sandbox's is 4 digits), set through the product itself.
	key, _ := s.Keys()
	if code, out := cliRun(t, []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "HOSTKEY_BASE_URL=http://" + sln.Addr().String() + "/",
		"HOSTKEY_API_KEY=" + key, "HOSTKEY_PIN=" + s.PIN()}, "y\n", "eq_set_pin", "new_pin="+replicaPIN, "--tools", "eq_set_pin", "--ephemeral"); code != 0 || s.PIN() != replicaPIN {
		t.Fatalf("eq_set_pin: exit %d: %s", code, out)
	}
	rs := newReplicaSet(t, s, "http://"+sln.Addr().String(), target)

	st, err := state.Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Each scenario runs its own three replicas on the one database; the audit chain they
	// all wrote is checked last.
	t.Run("3 rate limit shared", func(t *testing.T) { replicaRateLimit(t, rs) })
	t.Run("2 approval across replicas", func(t *testing.T) { replicaApproval(t, rs) })
	t.Run("2 confirmations: round trip over round robin, lost affinity", func(t *testing.T) { replicaRoundTrip(t, rs) })
	t.Run("1+4 callbacks, kill -9, job takeover", func(t *testing.T) { replicaCallbacks(t, rs, st) })
	t.Run("5 audit chain", func(t *testing.T) { replicaAudit(t, rs) })
	t.Logf("whole run %v", time.Since(begin).Round(time.Millisecond))
}

// (3) Destructive calls, burst 3 at 0.1/s, spread round robin over the replicas: what
// reaches invapi stays within burst + rate × elapsed.
func replicaRateLimit(t *testing.T, rs *replicaSet) {
	const burst, perSec = 3, 0.1
	rs.start(t, 3, "--confirm", "off", "--rate-destructive", fmt.Sprintf("%g:%d", perSec, burst),
		"--rate-server", "off", "--rate-global", "off", "--rate-session", "off")
	t.Cleanup(func() { rs.stop(t) }) // after the clients close (cleanups run last first)
	c := modernClient(t, rs.rr.URL())
	before := simSent(rs.sim, "eq", "reboot")
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed, limited := 0, 0
	for k := range 10 {
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
				t.Errorf("call %d: %v", k, err)
			case !res.IsError:
				passed++
			case strings.Contains(resultText(res), "Rate limited: destructive calls"):
				limited++
			default:
				t.Errorf("call %d: %s", k, resultText(res))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := simSent(rs.sim, "eq", "reboot") - before
	allowed := burst + int(perSec*elapsed.Seconds())
	t.Logf("10 calls over %d replicas in %v: %d let through, %d rate limited, %d reboots reached invapi (bound %d); requests per replica %v",
		len(rs.reps), elapsed.Round(time.Millisecond), passed, limited, sent, allowed, rs.rr.served())
	if sent > allowed || passed != sent || passed+limited != 10 {
		t.Fatalf("burst %d at %g/s across replicas: %d reboots reached invapi in %v (at most %d), %d calls passed", burst, perSec, sent, elapsed, allowed, passed)
	}
	if sent < 1 {
		t.Fatal("no call let through at all")
	}
	for i, n := range rs.rr.served() {
		if n == 0 {
			t.Errorf("replica %d got none of the calls: the balancer did not spread them", i)
		}
	}
}

// (2) eq_reboot through replica 0 needs approval; the bot approves on replica 1; the
// repeat of the same session on replica 2 runs; the simulator counts one reboot;
// another session, and a replay, get new confirmations.
func replicaApproval(t *testing.T, rs *replicaSet) {
	rs.start(t, 3, "--confirm", "token", "--rate-server", "off", "--rate-destructive", "100:100")
	t.Cleanup(func() { rs.stop(t) }) // after the clients close (cleanups run last first)
	r0, r1, r2 := rs.reps[0], rs.reps[1], rs.reps[2]
	args := map[string]any{"id": 40101}
	before := simSent(rs.sim, "eq", "reboot")

	a, tr := sessionClient(t, r0.url(), "", false)
	session := tr.GetSessionId()
	res, out := callTool(t, a, "eq_reboot", args)
	id := approvalID(res)
	if !res.IsError || id == "" || !strings.Contains(out, "onfirmation required") {
		t.Fatalf("eq_reboot on replica 0: want a confirmation with an approval id: %s", out)
	}
	post := func(base, id, decision string) int {
		req, _ := http.NewRequest(http.MethodPost, base+id, strings.NewReader(`{"decision":"`+decision+`"}`))
		req.Header.Set("Authorization", "Bearer "+replicaBotToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(r1.approvals, id, "approve"); code != http.StatusOK {
		t.Fatalf("the bot's approval on replica 1: HTTP %d", code)
	}
	if code := post(r2.approvals, id, "decline"); code != http.StatusConflict {
		t.Fatalf("a second decision on replica 2: HTTP %d, want 409", code)
	}
	if n := simSent(rs.sim, "eq", "reboot") - before; n != 0 {
		t.Fatalf("%d reboots before the repeat", n)
	}

	// Another session on replica 2 does not get the approval of the first.
	other, _ := sessionClient(t, r2.url(), "", false)
	res, out = callTool(t, other, "eq_reboot", args)
	if !res.IsError || !strings.Contains(out, "onfirmation required") || approvalID(res) == id {
		t.Fatalf("another session on replica 2: want a new confirmation: %s", out)
	}
	// The same session, its affinity lost, repeats the call on replica 2: it runs.
	again, _ := sessionClient(t, r2.url(), session, false)
	if res, out := callTool(t, again, "eq_reboot", args); res.IsError {
		t.Fatalf("the approved repeat on replica 2: %s", out)
	}
	if n := simSent(rs.sim, "eq", "reboot") - before; n != 1 {
		t.Fatalf("%d reboots after the approved repeat, want exactly 1", n)
	}
	// A replay of the used approval asks again; on another replica the same call then
	// waits for that new approval, not the used one.
	replay, _ := sessionClient(t, r2.url(), session, false)
	res, out = callTool(t, replay, "eq_reboot", args)
	id2 := approvalID(res)
	if !res.IsError || !strings.Contains(out, "onfirmation required") || id2 == "" || id2 == id {
		t.Fatalf("a replay on replica 2: want a new confirmation: %s", out)
	}
	elsewhere, _ := sessionClient(t, r0.url(), session, false)
	if res, out := callTool(t, elsewhere, "eq_reboot", args); !res.IsError || strings.Contains(out, id) || !strings.Contains(out, id2) {
		t.Fatalf("the replay again on replica 0: want the new approval %s still pending: %s", id2, out)
	}
	if n := simSent(rs.sim, "eq", "reboot") - before; n != 1 {
		t.Fatalf("%d reboots in all, want exactly 1", n)
	}
}

// accepter is a person who ticks "Yes, do it" in every form the client shows.
type accepter struct{ asked atomic.Int32 }

func (a *accepter) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.asked.Add(1)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"confirm": true}}}, nil
}

// (2, both eras) A confirmation asked as an input request (multi round trip)
// by one replica is answered in a retry the round-robin balancer sends to another: the
// requestState handle lives in the store. One reboot reaches invapi.
func replicaRoundTrip(t *testing.T, rs *replicaSet) {
	rs.start(t, 3, "--confirm", "elicit", "--rate-server", "off", "--rate-destructive", "100:100")
	t.Cleanup(func() { rs.stop(t) }) // after the clients close (cleanups run last first)
	el := &accepter{}
	tr, err := transport.NewStreamableHTTP(rs.rr.URL()+"/mcp", transport.WithHTTPLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithElicitationHandler(el),
		client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}}}))
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c)
	before := simSent(rs.sim, "eq", "reboot")
	res, out := callTool(t, c, "eq_reboot", map[string]any{"id": 40101})
	hops := rs.rr.callsTo("eq_reboot")
	t.Logf("eq_reboot and its retries answered by replicas %v; the person was asked %d time(s)", hops, el.asked.Load())
	if res.IsError {
		t.Fatalf("eq_reboot confirmed in a form, retried on another replica: %s", out)
	}
	if n := simSent(rs.sim, "eq", "reboot") - before; n != 1 || el.asked.Load() != 1 {
		t.Fatalf("%d reboots reached invapi, the person was asked %d times; want 1 and 1", n, el.asked.Load())
	}
	if len(hops) < 2 || hops[0] == hops[len(hops)-1] {
		t.Fatalf("the call and its retry were not answered by two replicas: %v", hops)
	}

	// A 2025-era session that can answer forms, its affinity lost: the replica that never
	// saw its initialize confirms through the two-step flow instead of failing; a bot's
	// approval on a third replica lets the repeat run there.
	old := &accepter{}
	tr25, err := transport.NewStreamableHTTP(rs.reps[0].url()+"/mcp", transport.WithHTTPLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	c25 := client.NewClient(tr25, client.WithElicitationHandler(old), client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION),
		client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}}}))
	t.Cleanup(func() { _ = c25.Close() })
	if err := c25.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	initialize(t, c25)
	moved, _ := sessionClient(t, rs.reps[1].url(), tr25.GetSessionId(), false)
	args := map[string]any{"id": 40102}
	res, out = callTool(t, moved, "eq_reboot", args)
	id := approvalID(res)
	if !res.IsError || id == "" || !strings.Contains(out, "onfirmation required") {
		t.Fatalf("a 2025-era session on a replica that never saw it: want the two-step flow: %s", out)
	}
	req, _ := http.NewRequest(http.MethodPost, rs.reps[2].approvals+id, strings.NewReader(`{"decision":"approve"}`))
	req.Header.Set("Authorization", "Bearer "+replicaBotToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the bot's approval on replica 2: HTTP %d", resp.StatusCode)
	}
	before = simSent(rs.sim, "eq", "reboot")
	if res, out := callTool(t, moved, "eq_reboot", args); res.IsError {
		t.Fatalf("the repeat after the approval: %s", out)
	}
	if n := simSent(rs.sim, "eq", "reboot") - before; n != 1 || old.asked.Load() != 0 {
		t.Fatalf("%d reboots after the two-step approval (want 1); the form was shown %d times on a replica without the session", n, old.asked.Load())
	}
}

// listener collects the install_done notifications one session receives.
type listener struct {
	mu      sync.Mutex
	servers map[int64]bool
	last    uint64 // highest cursor seen
}

func listen(c *client.Client) *listener {
	l := &listener{servers: map[int64]bool{}}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != "notifications/message" {
			return
		}
		b, _ := json.Marshal(n.Params)
		var p struct {
			Data struct {
				Event struct {
					Cursor   uint64 `json:"cursor"`
					Kind     string `json:"kind"`
					ServerID int64  `json:"server_id"`
				} `json:"event"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &p) != nil || p.Data.Event.Kind != store.KindInstallDone {
			return
		}
		l.mu.Lock()
		l.servers[p.Data.Event.ServerID] = true
		l.last = max(l.last, p.Data.Event.Cursor)
		l.mu.Unlock()
	})
	return l
}

func (l *listener) has(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.servers[id]
}

func (l *listener) snapshot() (map[int64]bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.servers), l.last
}

// (1) ~2,000 callbacks round robin, 5 % replayed to another replica, kill -9 of replica 0
// at 30 %; (4) the workflow job replica 0 runs is taken over within the lease.
func replicaCallbacks(t *testing.T, rs *replicaSet, st state.Store) {
	const n, firstServer = 2000, 200000
	ctx := t.Context()
	rs.start(t, 3, "--confirm", "off", "--rate-server", "off", "--rate-destructive", "100:100")
	t.Cleanup(func() { rs.stop(t) }) // after the clients close (cleanups run last first)
	setup := time.Now()
	secrets := createInstallJobs(t, store.NewShared(st), "rep", firstServer, n)
	rs.secrets = append(rs.secrets, secrets...)
	t.Logf("%d install jobs created in %v", n, time.Since(setup).Round(time.Millisecond))

	// A 2025-era session on each replica, through the sticky balancer: initialize goes
	// round robin, so session k sits on replica k.
	sess := make([]*listener, 3)
	sessClients, sessIDs := make([]*client.Client, 3), make([]string, 3)
	for k := range sess {
		c, tr := sessionClient(t, rs.sticky.URL(), "", true)
		if got := rs.sticky.stuck(tr.GetSessionId()); got != k {
			t.Fatalf("session %d is on replica %d", k, got)
		}
		sess[k], sessClients[k], sessIDs[k] = listen(c), c, tr.GetSessionId()
	}

	// (4) A reinstall job on replica 0, which will be killed.
	wc := modernClient(t, rs.reps[0].url())
	res, out := callTool(t, wc, "server_reinstall", map[string]any{"id": 40102, "os_id": 187, "root_pass": "Secret-pass1", "wait_seconds": 1})
	jobID := regexp.MustCompile(`job-[0-9a-f]{16}`).FindString(out)
	if res.IsError || jobID == "" {
		t.Fatalf("server_reinstall on replica 0: %s", out)
	}
	wf0, err := st.Workflow(ctx, jobID)
	if err != nil || wf0.State != state.WorkflowRunning {
		t.Fatalf("the job in the store: %+v %v", wf0, err)
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// sendOnce posts callback i to url once and returns who acknowledged it.
	sendOnce := func(url string, i int) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, url+"/cb/install/"+secrets[i], strings.NewReader(`{"status":"done"}`))
		req.Header.Set("Content-Type", "application/json")
		// Each fresh server calls from its own address (the per-source rate limit).
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", i/250, i%250+1))
		resp, err := hc.Do(req)
		if err != nil {
			return -1, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return -1, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		b, _ := strconv.Atoi(resp.Header.Get(headerBackend))
		return b, nil
	}
	// send retries callback i through the balancer until it is acknowledged, as a
	// server's callback does.
	send := func(i int) (int, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := sendOnce(rs.rr.URL(), i)
			if err == nil {
				return b, nil
			}
			if time.Now().After(deadline) {
				return -1, fmt.Errorf("callback %d never acknowledged: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// replay sends callback i again straight to a live replica other than b.
	replay := func(i, b int) error {
		var errs []string
		for k := 1; k < len(rs.reps); k++ {
			r := rs.reps[(b+k)%len(rs.reps)]
			if r.killed.Load() {
				continue
			}
			if _, err := sendOnce(r.url(), i); err != nil {
				errs = append(errs, fmt.Sprintf("replica %d: %v", r.i, err))
				continue // killed since
			}
			return nil
		}
		return fmt.Errorf("replay of callback %d (acknowledged by replica %d) not acknowledged: %v", i, b, errs)
	}

	// Warm-up: callback 0 reaches every session (their streams are open).
	if _, err := send(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every session notified of the first callback", func() bool {
		return sess[0].has(firstServer) && sess[1].has(firstServer) && sess[2].has(firstServer)
	})

	// The moment another replica holds the job (polled from the kill on).
	takenOver := make(chan time.Time, 1)
	watchTakeover := func() {
		for {
			wf, err := st.Workflow(ctx, jobID)
			if ctx.Err() != nil {
				return // the test ended first
			}
			if err != nil || wf.Owner != wf0.Owner || wf.State != state.WorkflowRunning {
				if err == nil && wf.Owner == wf0.Owner {
					err = fmt.Errorf("ended %s before another replica held it", wf.State)
				}
				if err != nil {
					t.Errorf("job %s after kill -9: %v", jobID, err)
				}
				takenOver <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ackedBy := make([]atomic.Int32, n)
	for i := range ackedBy {
		ackedBy[i].Store(-1)
	}
	ackedBy[0].Store(0)
	var acked, replays atomic.Int64
	acked.Store(1)
	var killOnce sync.Once
	var killedAt time.Time
	var lastSeen0 uint64
	var seen0 map[int64]bool
	var nextI atomic.Int64
	nextI.Store(1)
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nextI.Add(1) - 1)
				if i >= n {
					return
				}
				b, err := send(i)
				if err != nil {
					t.Error(err)
					return
				}
				ackedBy[i].Store(int32(b))
				if acked.Add(1) == n*3/10 {
					killOnce.Do(func() {
						// The job must be mid-install: a kill just after invapi gave the old
						// owner the final state (and forgot the key) is another case.
						if sv, _ := rs.sim.Server(40102); !sv.Installing {
							t.Errorf("the install ended before the kill: the scenario needs the job mid-install")
						}
						seen0, lastSeen0 = sess[0].snapshot()
						rs.reps[0].kill()
						killedAt = time.Now()
						go watchTakeover()
					})
				}
				if i%20 == 0 { // replayed to another replica: acknowledged, stored once
					if err := replay(i, b); err != nil {
						t.Error(err)
					}
					replays.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		return
	}
	per := [3]int{}
	for i := range ackedBy {
		per[ackedBy[i].Load()]++
	}
	t.Logf("%d callbacks (+%d replays) acknowledged in %v (%.0f/s); by replica %v; replica 0 killed after %v",
		n, replays.Load(), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), per, killedAt.Sub(start).Round(time.Millisecond))

	// Every acknowledged callback stored exactly once; cursors contiguous.
	ws := store.NewShared(st)
	var all []store.Event
	for cur := uint64(0); ; {
		p, err := ws.Since(ctx, cur, 1000, store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Events...)
		if !p.More {
			break
		}
		cur = p.Next
	}
	count := map[int64]int{}
	for k, ev := range all {
		if k > 0 && ev.Cursor != all[k-1].Cursor+1 {
			t.Fatalf("cursors not contiguous: %d follows %d", ev.Cursor, all[k-1].Cursor)
		}
		if ev.Kind == store.KindInstallDone {
			count[ev.ServerID]++
		}
	}
	for i := range n {
		if c := count[int64(firstServer+i)]; c != 1 {
			t.Fatalf("callback %d acknowledged by replica %d, stored %d times", i, ackedBy[i].Load(), c)
		}
	}

	// The session on replica 1 was notified of the events replicas 0 and 2 accepted.
	waitFor(t, 20*time.Second, "the session on replica 1 notified of the callbacks the others accepted", func() bool {
		for i := range n {
			if ackedBy[i].Load() != 1 && !sess[1].has(int64(firstServer+i)) {
				return false
			}
		}
		return true
	})
	// The session of the killed replica catches up through events_list: the sticky
	// balancer moves it to a survivor, which serves a session it never saw initialize.
	c := sessClients[0]
	got := seen0
	for cur := lastSeen0; ; {
		res, out := callTool(t, c, "events_list", map[string]any{"kind": store.KindInstallDone, "since": cur, "limit": 500})
		if res.IsError {
			t.Fatalf("events_list on a survivor: %s", out)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var page struct {
			Events []struct {
				ServerID int64 `json:"server_id"`
			} `json:"events"`
			Next uint64 `json:"next_cursor"`
			More bool   `json:"more"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			got[ev.ServerID] = true
		}
		if !page.More {
			break
		}
		cur = page.Next
	}
	if r := rs.sticky.stuck(sessIDs[0]); r == 0 || r < 0 {
		t.Fatalf("the killed replica's session is still pinned to replica %d", r)
	}
	for i := range n {
		if !got[int64(firstServer+i)] {
			t.Fatalf("the killed replica's session, caught up from cursor %d, misses callback %d", lastSeen0, i)
		}
	}

	// (4) The job of the killed replica: taken over within the lease, done once, no
	// request repeated.
	var takenAt time.Time
	select {
	case takenAt = <-takenOver:
	case <-time.After(60 * time.Second):
		t.Fatalf("job %s not taken over within 60 s of kill -9", jobID)
	}
	var wf state.Workflow
	waitFor(t, 60*time.Second, "the killed replica's job to end", func() bool {
		wf, err = st.Workflow(ctx, jobID)
		if err != nil {
			t.Fatal(err)
		}
		return wf.State != state.WorkflowRunning
	})
	t.Logf("job %s taken over %v after kill -9 (lease %v), ended %s", jobID, takenAt.Sub(killedAt).Round(time.Millisecond), replicaLease, wf.State)
	if wf.State != state.WorkflowDone || wf.Owner == wf0.Owner {
		t.Fatalf("the job ended %s under %q (started under %q): %s", wf.State, wf.Owner, wf0.Owner, wf.Result)
	}
	// Within the lease, counted from the last renewal before the kill, plus a claim round.
	if d := takenAt.Sub(killedAt); d > replicaLease+3*time.Second {
		t.Errorf("taken over %v after kill -9; the lease is %v", d, replicaLease)
	}
	var names []string
	for _, s := range wf.Steps {
		if slices.Contains(names, s.Name) {
			t.Errorf("step %s recorded twice: %+v", s.Name, wf.Steps)
		}
		names = append(names, s.Name)
	}
	if n := simSent(rs.sim, "eq", "order_instance"); n != 1 {
		t.Fatalf("the reinstall reached invapi %d times, want 1", n)
	}
	// The job's end is stored before it shows in its process; its event follows.
	doneEvents := func() int {
		p, err := ws.Since(ctx, 0, 10000, store.Filter{Kinds: []string{"workflow"}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range p.Events {
			if ev.JobID == jobID && ev.Data["state"] == "done" {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "the job's done event", func() bool { return doneEvents() > 0 })
	time.Sleep(500 * time.Millisecond) // a second "done" would be there by now
	done := doneEvents()
	if done != 1 {
		t.Fatalf("%d workflow events say the job is done, want 1", done)
	}
}

// (5) The chain every replica wrote, exported from the store, verifies end to end
// against the head the last replica to stop logged.
func replicaAudit(t *testing.T, rs *replicaSet) {
	lines, head := 0, ""
	re := regexp.MustCompile(`"msg":"audit chain head[^"]*".*"lines":(\d+).*"head":"([0-9a-f]{64})"`)
	for _, r := range rs.logs {
		for _, m := range re.FindAllStringSubmatch(r.log.String(), -1) {
			if n, _ := strconv.Atoi(m[1]); n > lines {
				lines, head = n, m[2]
			}
		}
	}
	if lines == 0 {
		t.Fatal("no replica logged an audit chain head")
	}
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	dir := rs.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(binary, "audit-export", "--data-dir", dir, file)
	cmd.Env = rs.env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf("exported %d audit lines", lines)) {
		t.Fatalf("audit-export from the store (want %d lines): %v: %s", lines, err, out)
	}
	if code, out := auditVerify(t, "--expect-lines", strconv.Itoa(lines), "--expect-head", head, file); code != 0 || !strings.Contains(out, "matches the anchor") {
		t.Fatalf("audit-verify of the export: exit %d: %s", code, out)
	}
	b, _ := os.ReadFile(file)
	key, _ := rs.sim.Keys()
	for what, secret := range map[string]string{"the PIN": rs.sim.PIN(), "the API key": key, "the bot token": replicaBotToken, "root_pass": "Secret-pass1"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s is in the audit chain", what)
		}
		for _, r := range rs.logs {
			if strings.Contains(r.log.String(), secret) {
				t.Errorf("%s is in replica %d's log", what, r.i)
			}
		}
	}
	known := map[string]bool{}
	for _, sec := range rs.secrets {
		known[sec] = true
	}
	token := regexp.MustCompile(`[A-Za-z0-9_-]{43}`)
	for _, r := range rs.logs {
		for _, m := range token.FindAllString(r.log.String(), -1) {
			if known[m] {
				t.Errorf("a callback secret is in replica %d's log", r.i)
				break
			}
		}
	}
	t.Logf("audit chain of %d lines from %d replica processes verifies", lines, len(rs.logs))
}

// createInstallJobs creates n install jobs awaiting callbacks in the store, as a
// workflow would, for servers first…first+n-1, and returns their URL secrets. Eight
// writers: one commit each, as many tool calls would.
func createInstallJobs(t *testing.T, ws *store.Shared, prefix string, first, n int) []string {
	t.Helper()
	secrets := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				var b [32]byte
				copy(b[:], fmt.Sprintf("secret-%s-%05d-%s", prefix, i, t.Name()))
				secrets[i] = base64.RawURLEncoding.EncodeToString(b[:])
				hash := sha256.Sum256([]byte(secrets[i]))
				if err := ws.CreateJob(t.Context(), store.Job{ID: fmt.Sprintf("job_%s%05d", prefix, i), SecretHash: hash[:], ServerID: int64(first + i),
					Action: "eq_reinstall", Created: time.Now().UTC(), State: store.JobPending}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return secrets
}

// waitFor polls cond until it holds or the wait passes.
func waitFor(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
