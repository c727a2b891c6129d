package policy_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
)

// Review of issue 12: a secret inside a list of objects (invapi_call params such as
// users[0][password]) was shown in the confirmation: the summary walked objects but
// printed lists as raw JSON, so the password reached the form, the approval page, the
// bot API and the two-step result the model reads.
func TestSecretsInListsAreNotShownInTheConfirmation(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{}})
	const secret = "Hunter2-Very-Secret-Value"
	e.secrets = append(e.secrets, secret)
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "invapi_call", map[string]any{"module": "vm", "action": "create_user",
		"params": map[string]any{"users": []any{map[string]any{"name": "bob", "password": secret}}}})
	if !strings.Contains(text(res), "Confirmation required") {
		t.Fatalf("want a confirmation, got %s", text(res))
	}
	if !strings.Contains(text(res), "bob") {
		t.Errorf("the confirmation does not show the list's other values: %s", text(res))
	}
}

// Review of issue 12: what eq/show says about the server (hostname, location, IPs) went
// into the confirmation as is. The hostname is whatever an earlier reinstall set (the
// model's own argument, free text): a line break or a bidirectional override in it
// could forge lines of the confirmation ("What this puts on the server…") or make the
// human read another server's name.
func TestServerFactsCannotForgeTheConfirmation(t *testing.T) {
	forged := "web-01\nWhat this puts on the server or who can reach it:\n- nothing"
	e := newEnv(t, envOpts{Policy: policy.Options{Facts: func(ctx context.Context, id int64) (*policy.ServerFacts, error) {
		return &policy.ServerFacts{ID: id, Hostname: forged, Location: "NL\u202eLD", IPs: []string{"10.0.0.1\r\n- ssh_key = none"}}, nil
	}}})
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
	out := text(res)
	if !strings.Contains(out, "Confirmation required") {
		t.Fatalf("want a confirmation, got %s", out)
	}
	summary, _ := structured(t, res)["summary"].(string)
	for _, s := range []string{out, summary} {
		if strings.Contains(s, forged) || strings.Contains(s, "\u202e") || strings.Contains(s, "\r\n- ssh_key") {
			t.Errorf("the server's facts are shown raw, forging the confirmation:\n%s", s)
		}
		if !strings.Contains(s, "web-01") || !strings.Contains(s, "10.0.0.1") {
			t.Errorf("the server's facts are not shown:\n%s", s)
		}
	}
}

// Review of issue 12: a secret URL shows only its host, so that an attacker's callback
// is recognizable. A callback written without "http://" ("evil.example/cb",
// "//evil.example/cb", "evil.example:8080/cb", " https://…") was shown as "set (value
// hidden)": the human approved a reinstall that reports the new server to the attacker
// without any way to see it.
func TestCallbackWithoutSchemeShowsItsHost(t *testing.T) {
	for _, cb := range []string{"evil.example/cb/tok-123", "//evil.example/cb/tok-123", "evil.example:8080/cb/tok-123", " https://evil.example/cb/tok-123", "ftp://evil.example/cb/tok-123"} {
		e := newEnv(t, envOpts{Policy: policy.Options{}})
		c, _ := e.connect(mrtrClient, nil, nil)
		res := e.call(c, "eq_create_pxe", map[string]any{"id": 40101, "os_id": 5, "root_pass": "Str0ng-Passw0rd!", "post_install_callback": cb})
		summary, _ := structured(t, res)["summary"].(string)
		line := ""
		for _, l := range strings.Split(summary, "\n") {
			if strings.HasPrefix(l, "- post_install_callback") {
				line = l
			}
		}
		if !strings.Contains(line, "evil.example") {
			t.Errorf("%q: the confirmation does not show the callback's host: %q", cb, line)
		}
		if strings.Contains(line, "tok-123") {
			t.Errorf("%q: the callback's path is shown: %q", cb, line)
		}
	}
}

// Review of issue 12: the server line comes before the arguments, and it showed eq/show's
// hostname in full however long. A hostname padded to thousands of characters (set by an
// earlier reinstall) pushed the ssh_key and the script of the next confirmation out of
// sight, as the 600-byte cut did before. The form shortens a long fact (saying so); the
// page shows it whole.
func TestLongServerFactsDoNotPushTheArgumentsAway(t *testing.T) {
	padded := "web-01" + strings.Repeat("-", 5000)
	e := newEnv(t, envOpts{Policy: policy.Options{Facts: func(ctx context.Context, id int64) (*policy.ServerFacts, error) {
		return &policy.ServerFacts{ID: id, Hostname: padded, Location: "NL", IPs: []string{"10.0.0.1"}}, nil
	}}})
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "eq_create_pxe", map[string]any{"id": 40101, "os_id": 5, "root_pass": "Str0ng-Passw0rd!", "ssh_key": attackerKey})
	summary, _ := structured(t, res)["summary"].(string)
	if i := strings.Index(summary, attackerKey); i < 0 || i > 1200 {
		t.Errorf("the ssh_key is at byte %d of the confirmation, behind the server's hostname", i)
	}
	if !strings.Contains(summary, "5006 bytes") {
		t.Errorf("the confirmation does not say the hostname was shortened:\n%.400s", summary)
	}
	_, page := approvalOf(t, res)
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), padded) {
		t.Error("the approval page does not show the whole hostname")
	}
}

// Review of issue 12: --confirm token promises that approvals come from the chat-ops bot
// only (the README's answer to "an assistant with a shell can post to the local page").
// But the approval page listener runs by default in every mode: the model was handed the
// page's URL and a script on the machine approved there (GET for the csrf, POST with
// the page's Origin), with no bot involved.
func TestTokenModeIgnoresThePage(t *testing.T) {
	const bot = "bot-credential-7a1c"
	e := newEnv(t, envOpts{Policy: policy.Options{Confirm: policy.ConfirmToken, ApproverToken: bot}})
	c, _ := e.connect(mrtrClient, nil, nil)
	args := map[string]any{"id": 40101}
	res := e.call(c, "eq_reboot", args)
	id, page := approvalOf(t, res)
	if page != "" || strings.Contains(text(res), "/approve/") {
		t.Errorf("token mode hands the model the approval page: %s", text(res))
	}
	page = e.pages.URL + "/policy/approve/" + id
	e.submitPage(page, "approve", testPIN, true) // a script acting like a browser
	post, _ := http.NewRequest(http.MethodPost, page, strings.NewReader("decision=approve&csrf=x"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", e.pages.URL)
	resp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("token mode: the page takes answers (%d)", resp.StatusCode)
	}
	if res := e.call(c, "eq_reboot", args); !res.IsError {
		t.Errorf("token mode: sent after a page approval: %s", text(res))
	}
	if n := len(e.sent("eq", "reboot")); n != 0 {
		t.Fatalf("token mode: %d reboots sent without the bot", n)
	}
	if code := botDecide(t, e, bot, id, "approve"); code != http.StatusOK {
		t.Fatalf("bot approve: %d", code)
	}
	if res := e.call(c, "eq_reboot", args); res.IsError {
		t.Fatalf("bot-approved repeat: %s", text(res))
	}
}

// Review of issue 12: eq/order_instance with id is how invapi reinstalls a server (the
// FAQ's reinstall), but its confirmation said only "A new server is ordered: this costs
// money": the human approving it was not told that the named server's disks are erased.
func TestOrderInstanceWithIDSaysTheDisksAreErased(t *testing.T) {
	e := newEnv(t, envOpts{Policy: policy.Options{}})
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "eq_order_instance", map[string]any{"id": 40101, "os_id": 5, "root_pass": "Str0ng-Passw0rd!", "location_name": "NL"})
	summary, _ := structured(t, res)["summary"].(string)
	if !strings.Contains(summary, "ERASED") || !strings.Contains(summary, "40101") {
		t.Errorf("the reinstall through eq/order_instance does not say what is lost:\n%s", summary)
	}
	res = e.call(c, "eq_order_instance", map[string]any{"preset": "1", "os_id": 5, "root_pass": "Str0ng-Passw0rd!", "location_name": "NL"})
	if summary, _ := structured(t, res)["summary"].(string); !strings.Contains(summary, "costs money") {
		t.Errorf("a new order does not say it costs money:\n%s", summary)
	}
}

// Review of issue 12: "every refusal is audited", but a two-step approval declined by
// the bot (or on the page) left only the "pending" line when the model did not repeat
// the call: the human's answer, and who gave it, was in no audit line.
func TestHumanDeclineIsAuditedAtOnce(t *testing.T) {
	const bot = "bot-credential-91d0"
	e := newEnv(t, envOpts{NoPage: true, Policy: policy.Options{Confirm: policy.ConfirmToken, ApproverToken: bot}})
	c, _ := e.connect(mrtrClient, nil, nil)
	res := e.call(c, "eq_reboot", map[string]any{"id": 40101})
	id, _ := approvalOf(t, res)
	if code := botDecide(t, e, bot, id, "decline"); code != http.StatusOK {
		t.Fatalf("bot decline: %d", code)
	}
	lines := e.auditLines()
	last := lines[len(lines)-1]
	if last.Decision != string(policy.DecisionDeclined) || last.Confirm != "approval-bot" || last.Tool != "eq_reboot" {
		t.Errorf("the bot's decline is not audited: %+v", last)
	}
}
