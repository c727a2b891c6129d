package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// --store takes a URL without a password; a password belongs in HOSTKEY_STORE,
// PGPASSWORD or ~/.pgpass (a flag shows in ps). The password is never repeated.
func TestStoreFlagRefusesAPassword(t *testing.T) {
	for _, u := range []string{
		"postgres://hk:s3cr3tpw@db.example:5432/hostkey",
		"postgresql://hk@db.example/hostkey?sslmode=require&password=s3cr3tpw",
	} {
		_, _, err := parseConfig("hostkey-mcp", []string{"--store", u}, env(), io.Discard)
		if err == nil {
			t.Fatalf("--store with a password accepted: %s", u)
		}
		if strings.Contains(err.Error(), "s3cr3tpw") || !strings.Contains(err.Error(), "HOSTKEY_STORE") {
			t.Fatalf("error repeats the password or does not say where it goes: %v", err)
		}
	}
	// The same URL in the environment is fine, and the flag without a password too.
	c, _, err := parseConfig("hostkey-mcp", nil, env("HOSTKEY_STORE", "postgres://hk:s3cr3tpw@db.example:5432/hostkey"), io.Discard)
	if err != nil || c.Store == "" {
		t.Fatalf("HOSTKEY_STORE with a password: %v", err)
	}
	if d := storeDisplay(c.Store); strings.Contains(d, "s3cr3tpw") || d != "postgres://hk@db.example:5432/hostkey" {
		t.Fatalf("display %q", d)
	}
	c, _, err = parseConfig("hostkey-mcp", []string{"--store", "postgres://hk@db.example/hostkey"}, env("HOSTKEY_STORE", "postgres://other@x/y"), io.Discard)
	if err != nil || c.Store != "postgres://hk@db.example/hostkey" {
		t.Fatalf("the flag should win over the environment: %q %v", c.Store, err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--store", "mysql://x"}, env(), io.Discard); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("an unknown store kind: %v", err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--store", "postgres://x/y", "--ephemeral"}, env(), io.Discard); err == nil {
		t.Fatal("--store with --ephemeral accepted")
	}
}

func TestJobLeaseFlag(t *testing.T) {
	c, _, err := parseConfig("hostkey-mcp", nil, env(), io.Discard)
	if err != nil || c.JobLease != 30*time.Second {
		t.Fatalf("default job lease %s, %v", c.JobLease, err)
	}
	c, _, err = parseConfig("hostkey-mcp", []string{"--job-lease", "3s"}, env(), io.Discard)
	if err != nil || c.JobLease != 3*time.Second {
		t.Fatalf("--job-lease 3s: %s, %v", c.JobLease, err)
	}
	if _, _, err := parseConfig("hostkey-mcp", []string{"--job-lease", "500ms"}, env(), io.Discard); err == nil || !strings.Contains(err.Error(), "--job-lease") {
		t.Fatalf("a lease under 2s: %v", err)
	}
}

// An unreachable store stops the start (exit 1) with a clear message; nothing falls back
// to a local store, and the password given in HOSTKEY_STORE never shows.
func TestUnreachableStoreFailsStart(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox"}, nil, &out, &errb,
		env("HOSTKEY_STORE", "postgres://hk:s3cr3tpw@127.0.0.1:1/hostkey?sslmode=disable&connect_timeout=2"))
	if code != 1 {
		t.Fatalf("exit %d with an unreachable store; stderr: %s", code, errb.String())
	}
	msg := errb.String()
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("the error does not say the store is unreachable: %s", msg)
	}
	if strings.Contains(msg+out.String(), "s3cr3tpw") {
		t.Fatalf("the password leaked: %s", msg)
	}
}
