package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/webhook/outbound"
)

// refBot is the reference chat-ops bot: it verifies every delivery (refusing a bad or
// stale signature and replays), posts approval.requested to a channel, and approves it
// through the approvals API with its own credential.
type refBot struct {
	t        *testing.T
	v        outbound.Verifier
	approve  string // the bot API's base URL: …/api/approvals/
	token    string
	srv      *httptest.Server
	mu       sync.Mutex
	channel  []string           // what the bot posted
	types    []string           // verified deliveries, in order
	payloads []outbound.Payload // same order
	refused  int
	approved chan string
}

func newRefBot(t *testing.T, secret, token string) *refBot {
	b := &refBot{t: t, v: outbound.Verifier{Secret: secret}, token: token, approved: make(chan string, 4)}
	b.srv = httptest.NewServer(b)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *refBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if _, err := b.v.Verify(r.Header, body, time.Now()); err != nil {
		b.mu.Lock()
		b.refused++
		b.mu.Unlock()
		if err == outbound.ErrReplay {
			w.WriteHeader(http.StatusOK) // handled before: acknowledge, do nothing
			return
		}
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p outbound.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.types = append(b.types, p.Type)
	b.payloads = append(b.payloads, p)
	b.mu.Unlock()
	w.WriteHeader(http.StatusNoContent) // acknowledge first; act after
	if p.Type == outbound.TypeApprovalRequested {
		id, _ := p.Data["approval_id"].(string)
		b.mu.Lock()
		b.channel = append(b.channel, fmt.Sprintf("[Approve] [Decline] %s: %s", id, p.Data["summary"]))
		b.mu.Unlock()
		go b.decide(id)
	}
}

func (b *refBot) decide(id string) {
	req, _ := http.NewRequest(http.MethodPost, b.approve+id, strings.NewReader(`{"decision":"approve"}`))
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Errorf("bot approval: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.t.Errorf("bot approval: %s", resp.Status)
		return
	}
	b.approved <- id
}

func (b *refBot) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.types...)
}

// The whole chat-ops loop: the model calls eq_reboot → approval.requested is delivered,
// signed → the bot approves through the approvals API → the model repeats the call →
// the simulator counts one reboot → approval.decided is delivered.
func TestChatOpsApprovalLoop(t *testing.T) {
	const secret, botToken = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==", "bot-credential-1"
	bot := newRefBot(t, secret, botToken)
	var logs toolstest.SyncBuffer
	cfg, _, err := parseConfig("t", []string{"--sandbox", "--confirm", "token", "--data-dir", t.TempDir(),
		"--notify-url", bot.srv.URL + "/hook#types=approval", "--notify-allow-private"},
		env("HOSTKEY_APPROVER_TOKEN", botToken, "HOSTKEY_NOTIFY_SECRET", secret), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(t.Context(), cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.buildServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.startNotify(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"bot_api": "(http://127\.0\.0\.1:\d+/[a-z/]+)\{id\}"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no bot API URL in the log:\n%s", logs.String())
	}
	bot.approve = m[1]

	// The bot refuses a forged delivery (wrong secret) and a stale one (a replay of an
	// old, correctly signed delivery), and acts on neither.
	forged := []byte(`{"type":"approval.requested","data":{"approval_id":"FORGED"}}`)
	for name, h := range map[string]http.Header{
		"wrong secret": signed("whsec_b3RoZXItc2VjcmV0", "msg_forged", time.Now(), forged),
		"stale":        signed(secret, "msg_stale", time.Now().Add(-10*time.Minute), forged),
	} {
		req, _ := http.NewRequest(http.MethodPost, bot.srv.URL+"/hook", bytes.NewReader(forged))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s delivery: %s", name, resp.Status)
		}
	}
	bot.mu.Lock()
	if len(bot.channel) != 0 || bot.refused != 2 {
		t.Fatalf("the bot acted on a forged or stale delivery: %v", bot.channel)
	}
	bot.refused = 0
	bot.mu.Unlock()

	c, err := a.inProcessClient(t.Context(), nil) // no elicitation: the two-step flow
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := a.sandbox.sim.ServerIDs()[0]
	call := func() *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = "eq_reboot"
		req.Params.Arguments = map[string]any{"id": id}
		res, err := c.CallTool(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	reboots := func() int {
		n := 0
		for _, r := range a.sandbox.sim.Requests() {
			if r.Module == "eq" && r.Action == "reboot" {
				n++
			}
		}
		return n
	}
	first := call()
	if !first.IsError || !strings.Contains(resultText(first), "Confirmation required") || reboots() != 0 {
		t.Fatalf("first call: %s (reboots %d)", resultText(first), reboots())
	}
	var approvalID string
	select {
	case approvalID = <-bot.approved:
	case <-time.After(30 * time.Second):
		t.Fatalf("the bot never approved; it saw %v", bot.seen())
	}
	if !strings.Contains(resultText(first), approvalID) {
		t.Fatalf("the bot approved %s, the model was told %s", approvalID, resultText(first))
	}
	second := call()
	if second.IsError || reboots() != 1 {
		t.Fatalf("repeat after the approval: %s (reboots %d)", resultText(second), reboots())
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(strings.Join(bot.seen(), " "), outbound.TypeApprovalDecided) {
		if time.Now().After(deadline) {
			t.Fatalf("approval.decided never delivered; saw %v", bot.seen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	bot.mu.Lock()
	defer bot.mu.Unlock()
	if strings.Join(bot.types, " ") != "approval.requested approval.decided" || bot.refused != 0 {
		t.Fatalf("deliveries %v (refused %d)", bot.types, bot.refused)
	}
	req, dec := bot.payloads[0], bot.payloads[1]
	summary, _ := req.Data["summary"].(string)
	if req.Data["approval_id"] != approvalID || req.Data["tool"] != "eq_reboot" || req.ServerID != id ||
		summary == "" || !strings.Contains(resultText(first), summary) || req.Data["expires_at"] == nil ||
		fmt.Sprint(req.Data["approvers"]) != "[bot page]" {
		t.Fatalf("approval.requested: %+v", req)
	}
	if dec.Data["decision"] != "approved" || dec.Data["via"] != "bot" || dec.Data["approval_id"] != approvalID {
		t.Fatalf("approval.decided: %+v", dec)
	}
	if len(bot.channel) != 1 || !strings.Contains(bot.channel[0], approvalID) {
		t.Fatalf("channel: %v", bot.channel)
	}
	for _, p := range bot.payloads {
		raw, _ := json.Marshal(p)
		if bytes.Contains(raw, []byte(botToken)) || bytes.Contains(raw, []byte(a.sandbox.sim.PIN())) {
			t.Fatalf("a delivery carries a secret: %s", raw)
		}
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), botToken) {
		t.Fatal("a secret is in the log")
	}
	// Operators read the queue through the MCP resource: the URL cut to its host, no
	// secret, no destination response.
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = NotifyStatusURI
	var st string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rres, err := c.ReadResource(t.Context(), rr)
		if err != nil || len(rres.Contents) != 1 {
			t.Fatalf("resource %s: %v", NotifyStatusURI, err)
		}
		// The last delivery's outcome is recorded just after the bot answered it.
		if st = rres.Contents[0].(mcp.TextResourceContents).Text; strings.Contains(st, `"pending": 0`) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(st, `"pending": 0`) || !strings.Contains(st, bot.srv.URL+"/…") || strings.Contains(st, "/hook") || strings.Contains(st, secret) {
		t.Fatalf("resource: %s", st)
	}
	// /metrics (the HTTP transport's, like the webhook listener's) counts the deliveries.
	rec := httptest.NewRecorder()
	a.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	key := a.cfg.Notify[0].Key()
	if mb := rec.Body.String(); !strings.Contains(mb, `hostkey_notify_deliveries_total{dest="`+key+`"} 2`) ||
		!strings.Contains(mb, `hostkey_notify_delivery_seconds_count{dest="`+key+`"} 2`) || !strings.Contains(mb, "hostkey_webhook_") {
		t.Fatalf("/metrics:\n%s", mb)
	}
}

// The README's chat-ops event catalogue is generated from the code that delivers the
// events; this fails when it is stale (regenerate with `make docs`).
func TestREADMEChatOpsEvents(t *testing.T) {
	const begin, end = "<!-- BEGIN CHATOPS EVENTS (generated: go test ./cmd/hostkey-mcp -run README -update) -->\n", "<!-- END CHATOPS EVENTS -->"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README has no generated chat-ops event catalogue")
	}
	want := outbound.Catalogue()
	if got := string(readme[i+len(begin) : j]); got != want {
		if *updateREADME {
			out := append(append(append([]byte{}, readme[:i+len(begin)]...), want...), readme[j:]...)
			if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README chat-ops event catalogue is stale: run make docs")
	}
	for _, typ := range outbound.Types {
		if !strings.Contains(want, "`"+typ+"`") {
			t.Errorf("the catalogue lacks %s", typ)
		}
	}
}

// doctor shows a destination disabled by 410 Gone and its dead letters, and fails.
func TestDoctorShowsChatOpsDeadLetters(t *testing.T) {
	dir := t.TempDir()
	url := "http://127.0.0.1:9/hook"
	st, err := state.Open(t.Context(), filepath.Join(dir, "sandbox")+"/") // the sandbox's own data dir
	if err != nil {
		t.Fatal(err)
	}
	ob := st.(state.Outbox)
	d := outbound.Destination{URL: url}
	l, err := ob.ClaimDestination(t.Context(), d.Key(), "earlier", 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := st.Append(t.Context(), state.Event{Kind: "login_alert", Data: []byte(`{"kind":"login_alert"}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(t.Context(), l, []state.Event{ev}, ev.Cursor); err != nil {
		t.Fatal(err)
	}
	if err := ob.RecordOutcomes(t.Context(), l, []state.DeliveryOutcome{{Cursor: ev.Cursor, Dead: true, Error: "gave up after 9 attempts over 24h0m0s: HTTP 503"}}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	var out bytes.Buffer
	code := run(t.Context(), []string{"doctor", "--sandbox", "--data-dir", dir, "--notify-url", url, "--notify-allow-private"}, nil, &out, &out,
		env("HOSTKEY_NOTIFY_SECRET", "s3cr3t-signing"))
	if code == 0 || !strings.Contains(out.String(), "FAIL  chat-ops http://127.0.0.1:9/…: 1 dead letters (last: gave up after 9 attempts over 24h0m0s: HTTP 503)") {
		t.Fatalf("doctor: exit %d\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "/hook") || strings.Contains(out.String(), "s3cr3t") {
		t.Fatalf("doctor shows the URL's path or the secret:\n%s", out.String())
	}
}

// --notify-url: repeatable, several in the environment, settings in the fragment (never
// sent), errors in words naming the destination by scheme and host only.
func TestNotifyURLParsing(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "bot.secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseConfig("t", []string{"--notify-url", "https://a.example.com/x#types=approval&servers=40101,40102",
		"--notify-url", "https://hooks.example.com/services/T/B/SECRETPART#format=slack&secret-file=" + secretFile},
		env("HOSTKEY_NOTIFY_SECRET", "env-secret"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notify) != 2 || cfg.Notify[0].URL != "https://a.example.com/x" || cfg.Notify[0].Secret != "env-secret" ||
		fmt.Sprint(cfg.Notify[0].Filter.Servers) != "[40101 40102]" || cfg.Notify[0].Filter.Types[0] != "approval" ||
		cfg.Notify[1].Format != "slack" || cfg.Notify[1].Secret != "file-secret" || strings.Contains(cfg.Notify[1].URL, "#") {
		t.Fatalf("parsed: %+v", cfg.Notify)
	}
	cfg, _, err = parseConfig("t", nil, env("HOSTKEY_NOTIFY_URL", "https://a.example.com/1 https://b.example.com/2"), io.Discard)
	if err != nil || len(cfg.Notify) != 2 {
		t.Fatalf("from the environment: %v %+v", err, cfg)
	}
	for arg, want := range map[string]string{
		"https://h.example.com/SECRETPART#colour=red":       `unknown setting "colour"`,
		"https://h.example.com/SECRETPART#servers=web":      `servers="web": want server IDs`,
		"https://h.example.com/SECRETPART#secret-env=NOPE1": "secret-env=NOPE1 is not set",
	} {
		_, _, err := parseConfig("t", []string{"--notify-url", arg}, env(), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SECRETPART") || !strings.Contains(err.Error(), "https://h.example.com/…") {
			t.Errorf("%s: %v", arg, err)
		}
	}
}

func signed(secret, id string, at time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(outbound.HeaderID, id)
	h.Set(outbound.HeaderTimestamp, fmt.Sprint(at.Unix()))
	h.Set(outbound.HeaderSignature, outbound.Sign(secret, id, at.Unix(), body))
	return h
}
