package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestKubernetesExampleParses: the flags and variables of docs/deploy/kubernetes.yaml are
// ones this binary knows and accepts together, so the example a user copies starts.
func TestKubernetesExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../docs/deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	// The container's args: "- --flag=value # comment" lines.
	argRE := regexp.MustCompile(`(?m)^\s*-\s+(--[a-z-]+(?:=\S+)?)`)
	var args []string
	for _, m := range argRE.FindAllStringSubmatch(text, -1) {
		args = append(args, m[1])
	}
	if len(args) < 3 {
		t.Fatalf("found %d args in the manifest: %v", len(args), args)
	}
	// The Secret's variables ("--from-literal=NAME=...") and the env entries.
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`--from-literal=(HOSTKEY_[A-Z_]+)=`).FindAllStringSubmatch(text, -1) {
		env[m[1]] = "x"
	}
	for _, m := range regexp.MustCompile(`name: (HOSTKEY_[A-Z_]+), value: (\S+)\}`).FindAllStringSubmatch(text, -1) {
		env[m[1]] = m[2]
	}
	if _, ok := env["HOSTKEY_STORE"]; !ok {
		t.Fatalf("the manifest's Secret does not set HOSTKEY_STORE: %v", env)
	}
	env["HOSTKEY_STORE"] = "postgres://hostkey:secret@postgres.db.svc:5432/hostkey?sslmode=require"
	known := knownEnv()
	for name := range env {
		if !known[name] {
			t.Errorf("the manifest sets %s, which no setting reads", name)
		}
	}
	cfg, _, err := parseConfig("hostkey-mcp", args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("the manifest's settings do not parse: %v\nargs: %s", err, strings.Join(args, " "))
	}
	if !strings.HasPrefix(cfg.Store, "postgres://") || cfg.HTTP == "" {
		t.Fatalf("the manifest does not run replicas on PostgreSQL over --http: store %q, http %q", cfg.Store, cfg.HTTP)
	}
}
