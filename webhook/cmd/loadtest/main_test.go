package main

import (
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/state/statetest"
)

// TestSmallRun keeps the load test working: a short run loses nothing.
func TestSmallRun(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"-n", "400", "-c", "8", "-replay", "0.1", "-timeout", "60s", "-dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "lost = 0") || !strings.Contains(out.String(), "duplicates 40") {
		t.Fatalf("%s", out.String())
	}
	for _, bad := range [][]string{{"-n", "0"}, {"-c", "5000"}, {"-store", "sql"}} {
		if err := run(bad, &out); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// Three receivers, each with its own handle on one PostgreSQL database, callbacks and
// their replays spread round robin: nothing lost, every replay deduplicated across
// replicas, every replica notified of every event (issue 16's benchmark, small).
func TestReplicasOnPostgres(t *testing.T) {
	t.Setenv("HOSTKEY_STORE", statetest.PostgresURL(t))
	var out strings.Builder
	if err := run([]string{"-store", "postgres", "-replicas", "3", "-n", "300", "-c", "16", "-replay", "0.1", "-timeout", "60s"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "lost = 0") || !strings.Contains(out.String(), "duplicates 30,") || !strings.Contains(out.String(), "notified 900,") {
		t.Fatalf("%s", out.String())
	}
	if err := run([]string{"-replicas", "3"}, &out); err == nil || !strings.Contains(err.Error(), "-store postgres") {
		t.Errorf("-replicas 3 on SQLite: %v", err)
	}
}
