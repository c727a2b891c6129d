package invapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Review of issue 12: an invapi error that quotes the request body as it was sent
// (form-encoded: "root_pass=Str0ng-Passw0rd%21") or JSON-escaped carried the secret past
// the redaction, which replaced only the plain value.
func TestErrorsQuotingTheEncodedBodyAreRedacted(t *testing.T) {
	const pass = `Str0ng Passw0rd!/"x"`
	for name, echo := range map[string]func(url.Values) string{
		"form": func(v url.Values) string { return v.Encode() },
		"path": func(v url.Values) string { return url.PathEscape(v.Get("root_pass")) },
		"json": func(v url.Values) string { b, _ := json.Marshal(v.Get("root_pass")); return string(b) },
		"quoted": func(v url.Values) string {
			b, _ := json.Marshal(map[string]string{"p": v.Get("root_pass")})
			return string(b)
		},
	} {
		f := newFake(t)
		f.handle("eq/reinstall", func(w http.ResponseWriter, _ *http.Request, v url.Values) {
			b, _ := json.Marshal(map[string]any{"result": -1, "message": "invalid request: " + echo(v)})
			w.Write(b)
		})
		c, _ := testClient(t, f)
		_, err := c.Do(context.Background(), &Request{Module: "eq", Action: "reinstall", Params: map[string]any{"id": 1, "root_pass": pass}})
		if err == nil {
			t.Fatalf("%s: want an error", name)
		}
		if msg := err.Error(); strings.Contains(msg, "Passw0rd") {
			t.Errorf("%s: the password is in the error: %s", name, msg)
		}
	}
}
