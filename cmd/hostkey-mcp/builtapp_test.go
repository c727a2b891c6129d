package main

import (
	"io"
	"testing"
)

// builtApp parses args as the server's flags (with getenv as the environment), builds
// the whole server as serve would and closes it when the test ends. logs receives the
// process's log lines (io.Discard when nil).
func builtApp(t *testing.T, args []string, getenv func(string) string, logs io.Writer) *app {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	cfg, _, err := parseConfig("test", args, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(t.Context(), cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.buildServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a
}
