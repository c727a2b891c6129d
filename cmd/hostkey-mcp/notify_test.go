package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

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
	var logs syncBuffer
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
	var mb bytes.Buffer
	a.notify.engine.WriteMetrics(t.Context(), &mb)
	if !strings.Contains(mb.String(), "hostkey_notify_deliveries_total{dest=") {
		t.Fatalf("metrics: %s", mb.String())
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
