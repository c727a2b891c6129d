package invapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"pin", "PIN", "new_pin", "old_pin", "root_pass", "password", "admin_pass", "token",
		"params[root_pass]", "ipmi_password", "whmcs_token", "x[pin][]", "client_secret"} {
		if !IsSecretKey(k) {
			t.Errorf("%q should be secret", k)
		}
	}
	for _, k := range []string{"id", "key", "hostname", "ssh_key", "ping", "pinned", "spin", "group[]", "tokens_used"} {
		if IsSecretKey(k) {
			t.Errorf("%q should not be secret", k)
		}
	}
	if !IsSecretKey("key", "key") || !IsSecretKey("params[license]", "license") {
		t.Error("extra names")
	}
}

func TestRedactHelpers(t *testing.T) {
	in := map[string]any{
		"id":      42,
		"pin":     "4821",
		"params":  map[string]any{"root_pass": "S3cret!Root", "hostname": "web"},
		"list":    []any{map[string]any{"password": "pw-in-list"}, "plain"},
		"ss":      map[string]string{"admin_pass": "adm1nPass"},
		"new_pin": nil,
	}
	out := RedactParams(in, "hostname")
	got := fmt.Sprint(out)
	for _, s := range []string{"4821", "S3cret!Root", "pw-in-list", "adm1nPass", "web"} {
		if strings.Contains(got, s) {
			t.Fatalf("RedactParams left %q: %s", s, got)
		}
	}
	if out["id"] != 42 || in["pin"] != "4821" || in["params"].(map[string]any)["root_pass"] != "S3cret!Root" {
		t.Fatal("RedactParams must copy, not modify")
	}
	if _, ok := out["new_pin"]; ok {
		t.Fatal("nil secret should stay absent")
	}

	vals := secretValues(in, nil, nil)
	joined := strings.Join(vals, ",")
	for _, s := range []string{"4821", "S3cret!Root", "pw-in-list", "adm1nPass"} {
		if !strings.Contains(joined, s) {
			t.Fatalf("secretValues missed %q: %v", s, vals)
		}
	}

	if got := RedactString("bad pin 4821 and 4821, pw S3cret!Root; short 12", "4821", "S3cret!Root", "12"); got !=
		"bad pin [REDACTED] and [REDACTED], pw [REDACTED]; short 12" {
		t.Fatal(got)
	}
	q := "action=login&key=abc&ttl=3600&params[pin]=1234&token=t0k"
	if got := RedactQuery(q, "key"); got != "action=login&key=%5BREDACTED%5D&ttl=3600&params[pin]=%5BREDACTED%5D&token=%5BREDACTED%5D" {
		t.Fatal(got)
	}
	if got := RedactURL("https://u:pw@h/x.php?action=check&key=k1&token=t0k"); got != "https://u:%5BREDACTED%5D@h/x.php?action=check&key=k1&token=%5BREDACTED%5D" {
		t.Fatal(got)
	}
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Sync() error { return nil }
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every secret the client handles, through every path that logs or builds an error.
func TestSecretsNeverInLogsOrErrors(t *testing.T) {
	const (
		pin      = "4821"
		rootPass = "S3cret!Root-77"
		newPin   = "908172"
		adminPw  = "Adm1n-Pa55word"
		license  = "LIC-0042-XYZ"
	)
	f := newFake(t)
	f.handle("eq/reboot", func(w http.ResponseWriter, _ *http.Request, form url.Values) {
		// invapi echoing the request back in an error
		fmt.Fprintf(w, `{"code":-1,"message":"Invalid pin code %s for root_pass %s, token %s"}`,
			form.Get("pin"), form.Get("params[root_pass]"), form.Get("token"))
	})
	f.handle("eq/set_pin", func(w http.ResponseWriter, _ *http.Request, form url.Values) {
		fmt.Fprintf(w, "<html><body>Fatal error: new_pin=%s key=%s</body></html>", form.Get("new_pin"), f.apiKey)
	})
	f.handle("eq/list", okHandler(`{"result":"OK"}`))
	f.handle("eq/slow", func(w http.ResponseWriter, _ *http.Request, form url.Values) {
		w.WriteHeader(502)
		fmt.Fprintf(w, "upstream said: token=%s license=%s", form.Get("token"), form.Get("license"))
	})

	buf := &syncBuffer{}
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	logger := zap.New(zapcore.NewCore(enc, buf, zapcore.DebugLevel))
	c, _ := testClient(t, f, func(o *Options) { o.Logger = logger; o.SecretKeys = []string{"license"} })
	ctx := context.Background()

	var errs []error
	collect := func(_ *Response, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	collect(c.Do(ctx, &Request{Module: "eq", Action: "reboot", Params: map[string]any{
		"id": 1, "pin": pin, "params": map[string]any{"root_pass": rootPass, "hostname": "web1"},
	}}))
	collect(c.Do(ctx, &Request{Module: "eq", Action: "set_pin", Params: map[string]any{"new_pin": newPin, "old_pin": pin}}))
	collect(c.Do(ctx, &Request{Module: "eq", Action: "slow", ReadOnly: true, Params: map[string]any{"license": license}}))
	collect(c.Do(ctx, &Request{Module: "eq", Action: "add_ipmi_admin", Params: map[string]any{"admin_pass": adminPw},
		SecretKeys: []string{"admin_pass"}}))
	collect(c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true, Method: "GET"}))
	sess, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token := sess.Token()
	c.log.Debug("session", zap.Any("session", sess))

	// GET through a dead server: net/http's error quotes the URL, which holds the token.
	dead := newFake(t)
	dead.srv.Close()
	c2, _ := testClient(t, dead, func(o *Options) { o.Logger = logger })
	c2.mu.Lock()
	c2.sess = &Session{token: token, refreshAt: c2.now().Add(3600e9)}
	c2.mu.Unlock()
	_, err = c2.Do(ctx, &Request{Module: "nat_callback", Action: "check", Method: "GET", ReadOnly: true, Params: map[string]any{"key": "nat-key-1"}})
	mustKind(t, err, KindTransport)
	errs = append(errs, err)
	_, err = c2.Login(ctx)
	errs = append(errs, err)

	logs := buf.String()
	if len(errs) < 6 {
		t.Fatalf("expected errors from every path, got %d: %v", len(errs), errs)
	}
	secrets := map[string]string{"pin": pin, "root_pass": rootPass, "new_pin": newPin, "admin_pass": adminPw,
		"license": license, "api key": f.apiKey, "token": token}
	for name, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("%s %q appears in the logs", name, v)
		}
		for _, e := range errs {
			if strings.Contains(e.Error(), v) || strings.Contains(fmt.Sprintf("%+v %#v", e, e), v) {
				t.Errorf("%s %q appears in error %q", name, v, e.Error())
			}
		}
	}
	// Not vacuous: the lines are there, with their context and the markers.
	for _, want := range []string{`"module":"eq"`, `"action":"reboot"`, `"action":"login"`, `"status":502`, "[REDACTED]",
		`"hostname":"web1"`, `"attempt":3`, "nat-key-1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if !strings.Contains(errs[0].Error(), "Invalid pin code [REDACTED] for root_pass [REDACTED], token [REDACTED]") {
		t.Errorf("echoed secrets not scrubbed: %v", errs[0])
	}
	if KindOf(errs[0]) != KindPIN {
		t.Errorf("wrong-PIN echo should be KindPIN: %v", errs[0])
	}
	_ = io.Discard
}

func TestWebhookURLsAreSecretEverywhere(t *testing.T) {
	for _, name := range []string{"post_install_callback", "params[login_notify_address]"} {
		if !IsSecretKey(name) {
			t.Errorf("%s is not treated as secret", name)
		}
	}
}
