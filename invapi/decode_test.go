package invapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDecodeEnvelopes(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		kind    ErrorKind // "" = success
		code    string
		message string
	}{
		// error envelopes from the docs and the public clients
		{"code -1", 200, `{"code":-1,"message":"EQ/reinstall: invalid server id"}`, KindAPI, "-1", "EQ/reinstall: invalid server id"},
		{"code -2 auth", 200, `{"code":-2,"message":"Authentication required"}`, KindAuth, "-2", "Authentication required"},
		{"code -2 action required is not auth", 200, `{"code":-2,"message":"EQ: action required"}`, KindAPI, "-2", "EQ: action required"},
		{"code -1 authentication required", 200, `{ "code": -1, "message": "authentication required" }`, KindAuth, "-1", "authentication required"},
		{"result -1 error", 200, `{"result":-1,"error":"reinstall: extra software Odoo (#49) is not compatible with Ubuntu 22.04"}`,
			KindAPI, "-1", "reinstall: extra software Odoo (#49) is not compatible with Ubuntu 22.04"},
		{"symbolic code", 200, `{"result":-1,"error":"No appropriate servers found","code":"NO_APPROPRIATE_SERVERS"}`,
			KindAPI, "NO_APPROPRIATE_SERVERS", "No appropriate servers found"},
		{"result Error scope cancelled", 200, `{"result":"Error","scope":"cancelled"}`, KindAPI, "", "cancelled"},
		{"async key not found", 200, `{"code":-1,"message":"AsyncKey cb-gone not found"}`, KindNotFound, "-1", "AsyncKey cb-gone not found"},
		{"no such", 200, `{"result":-1,"error":"no such domain"}`, KindNotFound, "-1", "no such domain"},
		{"unknown server", 200, `{"code":-1,"message":"Unknown server 5"}`, KindNotFound, "-1", "Unknown server 5"},
		{"server not exist", 200, `{"code":-1,"message":"server not exist"}`, KindNotFound, "-1", "server not exist"},
		{"does not exist", 200, `{"result":"failed","message":"Tag does not exist"}`, KindNotFound, "", "Tag does not exist"},
		{"invalid token", 200, `{"error":"invalid token"}`, KindAuth, "", "invalid token"},
		{"invalid hash", 200, `{"code":-2,"message":"invalid hash"}`, KindAuth, "-2", "invalid hash"},
		{"token expired bare message", 200, `{"message":"Token expired"}`, KindAuth, "", "Token expired"},
		{"wrong pin with result OK", 200, `{ "result": "OK", "scope": "Invalid pin code", "context": { "action": "check_pin", "id": "0" }, "debug": "Blocked For Security Purposes", "key": "d862ecc7ea64c5af55f39b132f3b7502" }`,
			KindPIN, "", "Invalid pin code: Blocked For Security Purposes"},
		{"pin error envelope", 200, `{"code":-1,"message":"Wrong PIN"}`, KindPIN, "-1", "Wrong PIN"},
		{"rate limit message", 200, `{"code":-1,"message":"Too many requests, slow down"}`, KindRateLimited, "-1", "Too many requests, slow down"},
		{"string code", 200, `{"code":"-1","message":"Reboot request failed"}`, KindAPI, "-1", "Reboot request failed"},
		{"error object", 200, `{"result":-1,"error":{"message":"nested"}}`, KindAPI, "-1", "nested"},
		{"result false", 200, `{"result":false}`, KindAPI, "", "result false"},
		{"OK with error field", 200, `{"result":"OK","error":"partial failure"}`, KindAPI, "", "partial failure"},
		{"numeric string result", 200, `{"result":"-3","message":"x"}`, KindAPI, "-3", "x"},
		// HTTP-level failures
		{"401", 401, `{"code":-2,"message":"Authentication required"}`, KindAuth, "-2", "Authentication required"},
		{"429", 429, `slow down`, KindRateLimited, "", "rate limited: slow down"},
		{"502 html", 502, `<html><body>Bad Gateway</body></html>`, KindServer, "", "Bad Gateway"},
		{"500 json", 500, `{"code":-1,"message":"db down"}`, KindServer, "", "db down"},
		{"403 envelope", 403, `{"code":-1,"message":"forbidden"}`, KindAPI, "-1", "forbidden"},
		{"404 html", 404, `<html>Not Found</html>`, KindProtocol, "", "response is HTML, not JSON: <html>Not Found</html>"},
		{"redirect", 302, ``, KindProtocol, "", "unexpected redirect to "},
		// bodies that are not JSON answers
		{"html 200", 200, "<br />\n<b>Fatal error</b>: Uncaught Exception in /var/www/eq.php", KindProtocol, "",
			"response is HTML, not JSON: <br /> <b>Fatal error</b>: Uncaught Exception in /var/www/eq.php"},
		{"empty", 200, ``, KindProtocol, "", "empty response body"},
		{"whitespace", 200, " \n\t ", KindProtocol, "", "empty response body"},
		{"null", 200, `null`, KindProtocol, "", "response body is JSON null"},
		{"truncated", 200, `{"result":"OK"`, KindProtocol, "", `response is not JSON: {"result":"OK"`},
		{"trailing garbage", 200, `{"result":"OK"} trailing`, KindProtocol, "", `response is not JSON: {"result":"OK"} trailing`},
		{"php warning then json", 200, "Warning: x\n{\"result\":\"OK\"}", KindProtocol, "", `response is not JSON: Warning: x {"result":"OK"}`},
		// successes
		{"OK", 200, `{"result":"OK","module":"api_keys","action":"list","data":[]}`, "", "", ""},
		{"success", 200, `{"result":"success"}`, "", "", ""},
		{"empty result", 200, `{"result":""}`, "", "", ""},
		{"result 0", 200, `{"result":0}`, "", "", ""},
		{"result 1", 200, `{"result":1}`, "", "", ""},
		{"result true", 200, `{"result":true}`, "", "", ""},
		{"not ready", 200, `{"result":"Not ready"}`, "", "", ""},
		{"stage", 200, `{"result":"Stage","scope":" (1\/5) OS installation started","context":{"action":"reinstall","id":"42253","location":"NL"},"key":"aa71"}`, "", "", ""},
		{"login nested", 200, `{"result":{"token":"t","servers":[1]}}`, "", "", ""},
		{"no result field", 200, `{"ip":"192.168.1.1"}`, "", "", ""},
		{"code 0 with message", 200, `{"code":0,"message":"done"}`, "", "", ""},
		{"OK with message", 200, `{"result":"OK","message":"User added"}`, "", "", ""},
		{"OK with symbolic code", 200, `{"result":"OK","code":"NL"}`, "", "", ""},
		{"array body", 200, `[1,2,3]`, "", "", ""},
		{"BOM", 200, "\xef\xbb\xbf{\"result\":\"OK\"}", "", "", ""},
		{"set_pin OK mentioning pin", 200, `{"result":"OK","scope":"PIN code set"}`, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			resp, e := decodeResponse("eq", "reboot", tc.status, h, []byte(tc.body))
			if tc.kind == "" {
				if e != nil {
					t.Fatalf("want success, got %v", e)
				}
				if resp == nil || resp.HTTPStatus != tc.status || string(resp.Body) != tc.body {
					t.Fatalf("bad response %+v", resp)
				}
				return
			}
			if e == nil {
				t.Fatalf("want %s error, got success %+v", tc.kind, resp)
			}
			if e.Kind != tc.kind || e.Code != tc.code || e.Message != tc.message {
				t.Fatalf("got kind=%s code=%q msg=%q\nwant kind=%s code=%q msg=%q", e.Kind, e.Code, e.Message, tc.kind, tc.code, tc.message)
			}
			if e.Module != "eq" || e.Action != "reboot" || e.HTTPStatus != tc.status {
				t.Fatalf("bad identity: %+v", e)
			}
		})
	}
}

func TestDecodeFieldsAndKey(t *testing.T) {
	resp, e := decodeResponse("eq", "order_instance", 200, http.Header{},
		[]byte(`{"result":"OK","id":0,"invoice":123456789012345678,"callback":"cb-1"}`))
	if e != nil {
		t.Fatal(e)
	}
	if resp.Key != "cb-1" {
		t.Fatalf("Key = %q", resp.Key)
	}
	if got := fmt.Sprint(resp.Fields["invoice"]); got != "123456789012345678" {
		t.Fatalf("large number lost precision: %s", got)
	}
	resp, _ = decodeResponse("eq", "x", 200, http.Header{}, []byte(`{"result":"OK","key":"k1","callback":"cb"}`))
	if resp.Key != "k1" {
		t.Fatalf("key should win over callback, got %q", resp.Key)
	}
}

func TestErrorString(t *testing.T) {
	cases := []struct {
		e    *Error
		want string
	}{
		{&Error{Module: "eq", Action: "reboot", Kind: KindAPI, Code: "-1", Message: "invalid server id", HTTPStatus: 200},
			"invapi eq/reboot: [code -1] invalid server id"},
		{&Error{Module: "eq", Action: "list", Kind: KindServer, Message: "Bad Gateway", HTTPStatus: 502},
			"invapi eq/list: HTTP 502: Bad Gateway"},
		{&Error{Module: "eq", Action: "list", Kind: KindCanceled, Err: context.Canceled},
			"invapi eq/list: context canceled"},
		{&Error{Module: "eq", Action: "list", Kind: KindTransport}, "invapi eq/list: transport error"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
	wrapped := fmt.Errorf("tool: %w", &Error{Kind: KindAuth})
	if !IsAuth(wrapped) || KindOf(wrapped) != KindAuth || KindOf(wrapped) == KindNotFound || IsRetryable(wrapped) {
		t.Fatal("helpers must see through wrapping")
	}
	if KindOf(context.Canceled) != KindCanceled || KindOf(context.DeadlineExceeded) != KindTimeout || KindOf(errors.New("x")) != "" || KindOf(nil) != "" {
		t.Fatal("KindOf on foreign errors")
	}
	if !IsRetryable(&Error{Kind: KindServer}) || IsRetryable(&Error{Kind: KindPIN}) || IsRetryable(&Error{Kind: KindAPI}) {
		t.Fatal("Retryable")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := parseRetryAfter("7", now); d != 7*time.Second {
		t.Fatal(d)
	}
	if d := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatal(d)
	}
	for _, v := range []string{"", "-3", "soon", now.Add(-time.Minute).Format(http.TimeFormat)} {
		if d := parseRetryAfter(v, now); d != 0 {
			t.Fatalf("%q → %v", v, d)
		}
	}
}

// The same envelopes through the real HTTP path.
func TestDoErrorEnvelopesOverHTTP(t *testing.T) {
	f := newFake(t)
	f.reply("eq/reboot", 200, `{"code":-1,"message":"EQ/reboot: invalid server id"}`)
	f.reply("eq/show", 200, `{"code":-1,"message":"Server 9 not found"}`)
	f.reply("eq/order_instance", 200, `{"result":-1,"error":"No appropriate servers found","code":"NO_APPROPRIATE_SERVERS"}`)
	f.reply("eq/list", 200, `{"result":"OK","servers":[1,2]}`)
	c, _ := testClient(t, f)
	ctx := context.Background()

	_, err := c.Do(ctx, &Request{Module: "eq", Action: "reboot", Params: map[string]any{"id": 9}})
	e := mustKind(t, err, KindAPI)
	if err.Error() != "invapi eq/reboot: [code -1] EQ/reboot: invalid server id" {
		t.Fatalf("Error() = %q", err.Error())
	}
	if e.HTTPStatus != 200 {
		t.Fatal(e.HTTPStatus)
	}
	_, err = c.Do(ctx, &Request{Module: "eq", Action: "show", ReadOnly: true})
	mustKind(t, err, KindNotFound)
	if f.count("eq/show") != 1 {
		t.Fatalf("a business error must not be retried, got %d requests", f.count("eq/show"))
	}
	_, err = c.Do(ctx, &Request{Module: "eq", Action: "order_instance"})
	if e := mustKind(t, err, KindAPI); e.Code != "NO_APPROPRIATE_SERVERS" {
		t.Fatal(e.Code)
	}
	resp, err := c.Do(ctx, &Request{Module: "eq", Action: "list", ReadOnly: true})
	if err != nil || resp.Fields["result"] != "OK" {
		t.Fatalf("%v %+v", err, resp)
	}
}

func TestProtocolBodiesOverHTTP(t *testing.T) {
	f := newFake(t)
	f.reply("eq/html", 200, "<!DOCTYPE html><html><head><title>Maintenance</title></head></html>")
	f.reply("eq/empty", 200, "")
	big := `{"result":"OK","pad":"` + strings.Repeat("x", 4096) + `"}`
	f.reply("eq/big", 200, big) // Content-Length known up front
	f.handle("eq/bigchunked", func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		fl := w.(http.Flusher)
		io.WriteString(w, `{"result":"OK","pad":"`)
		fl.Flush() // no Content-Length: the limit must hold while reading
		for range 64 {
			io.WriteString(w, strings.Repeat("y", 1024))
			fl.Flush()
		}
		io.WriteString(w, `"}`)
	})
	f.reply("eq/fits", 200, `{"result":"OK","pad":"`+strings.Repeat("z", 900)+`"}`)
	c, _ := testClient(t, f, func(o *Options) { o.MaxResponseBytes = 1024 })
	ctx := context.Background()

	for action, want := range map[string]string{
		"html":       "response is HTML, not JSON: <!DOCTYPE html>",
		"empty":      "empty response body",
		"big":        "response body exceeds 1024 bytes",
		"bigchunked": "response body exceeds 1024 bytes",
	} {
		_, err := c.Do(ctx, &Request{Module: "eq", Action: action, ReadOnly: true})
		e := mustKind(t, err, KindProtocol)
		if !strings.HasPrefix(e.Message, want) {
			t.Errorf("%s: message %q, want prefix %q", action, e.Message, want)
		}
		if n := f.count("eq/" + action); n != 1 {
			t.Errorf("%s: protocol errors are not retried, got %d requests", action, n)
		}
	}
	if _, err := c.Do(ctx, &Request{Module: "eq", Action: "fits", ReadOnly: true}); err != nil {
		t.Fatalf("a body under the limit must pass: %v", err)
	}
}
