package main

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A --webhook-listen port held by a program that is not a hostkey-mcp on the same data
// dir stops the start with exit 1 (it only logged an ERROR and served on, exit 0, while
// the callbacks went to the other program).
func TestWebhookPortHeldByAnotherProgramFailsStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	go hs.Serve(ln)
	defer hs.Close()
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"--sandbox", "--data-dir", t.TempDir(), "--webhook-listen", ln.Addr().String()}, strings.NewReader(""), &out, &errb, env())
	if code != 1 {
		t.Fatalf("exit %d with the webhook port taken by another program; stderr: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "not hostkey-mcp") {
		t.Fatalf("the error does not say what holds the port: %s", errb.String())
	}
}

// A workflow handle says truthfully what happens to the job when the CLI exits: handed
// over to the next process on the data dir, or, with --ephemeral, followed no further.
func TestCLIJobHandleSaysWhatHappensNext(t *testing.T) {
	for _, c := range []struct {
		extra []string
		want  string
	}{
		{nil, "the next hostkey-mcp process on it takes the job over"},
		{[]string{"--ephemeral"}, "This process keeps no store (--ephemeral)"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"call", "server_reinstall", "id=40102", "os_id=187", "root_pass=Secret-pass1", "wait_seconds=0",
			"--sandbox", "--toolsets", "workflows", "--data-dir", t.TempDir()}, c.extra...)
		if code := run(t.Context(), args, strings.NewReader("y\n"), &out, &errb, env()); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.extra, code, errb.String())
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: the handle does not say %q:\n%s", c.extra, c.want, out.String())
		}
	}
}
