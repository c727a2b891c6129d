package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unusable data dir stops the start with exit 1 and says why; it does not fall back
// to keeping events in memory (issue "Processes are replicas": fail fast).
func TestUnusableDataDirFailsFast(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox", "--data-dir", file}, nil, &out, &errb, env())
	if code == 0 {
		t.Fatalf("exit 0 with an unusable data dir; stderr: %s", errb.String())
	}
	if !strings.Contains(errb.String(), "--ephemeral") {
		t.Fatalf("the error does not say how to run without a data dir: %s", errb.String())
	}
	// Asked for, memory-only state works.
	out.Reset()
	errb.Reset()
	if code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox", "--data-dir", file, "--ephemeral"}, nil, &out, &errb, env()); code != 0 {
		t.Fatalf("--ephemeral: exit %d: %s", code, errb.String())
	}
}

// Every run opens the one shared store in the data dir (state.db); none falls back to
// memory. (Concurrent processes on one store: state.TestMultiProcessAppendAndKill.)
func TestDataDirSharedStore(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	for i := range 2 {
		if code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox", "--data-dir", dir}, nil, &out, &errb, env()); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, errb.String())
		}
	}
	if strings.Contains(errb.String(), "in memory") {
		t.Fatalf("a process fell back to memory: %s", errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "sandbox", "state.db")); err != nil {
		t.Fatalf("no shared store in the data dir: %v", err)
	}
}
