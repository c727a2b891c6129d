package main

import (
	"strings"
	"testing"
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
