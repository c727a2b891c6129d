package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

// auditFile writes n chained entries to a real audit file and returns its path and the
// hash of every line.
func auditFile(t *testing.T, n int, tool string) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var hashes []string
	for i := range n {
		h, err := l.Append(audit.Entry{Time: time.Unix(int64(i), 0), Tool: tool, Decision: "allowed"})
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	return path, hashes
}

func auditVerify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"audit-verify"}, args...), nil, &out, &errb, env())
	return code, out.String() + errb.String()
}

// Issue 12, item 10: cutting the last lines off an audit file left a chain that verifies.
// audit-verify prints the line count and head hash, and --expect-lines/--expect-head
// (an anchor kept elsewhere) catch the truncation.
func TestAuditVerifyCatchesTruncation(t *testing.T) {
	path, hashes := auditFile(t, 77, "eq_status")
	code, out := auditVerify(t, path)
	if code != 0 || !strings.Contains(out, "lines 77, head "+hashes[76]) || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("audit-verify: exit %d: %s", code, out)
	}
	anchor := []string{"--expect-lines", "77", "--expect-head", hashes[76]}
	if code, out := auditVerify(t, append(anchor, path)...); code != 0 {
		t.Fatalf("the untouched file against its anchor: exit %d: %s", code, out)
	}

	// Cut the last 7 lines.
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(path, bytes.Join(lines[:70], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	// The chain alone still verifies, and says what it now holds.
	code, out = auditVerify(t, path)
	if code != 0 || !strings.Contains(out, "lines 70, head "+hashes[69]) {
		t.Fatalf("plain verify of the truncated file: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"--expect-lines", "77"}, {"--expect-head", hashes[76]}, anchor} {
		code, out := auditVerify(t, append(args, path)...)
		if code != 1 || !strings.Contains(out, "70") || !strings.Contains(out, "cut off") {
			t.Errorf("%v on the truncated file: exit %d: %s", args, code, out)
		}
	}

	// A log that grew after the anchor still matches it: the anchor is a prefix.
	path2, hashes2 := auditFile(t, 80, "eq_show")
	if code, out := auditVerify(t, "--expect-lines", "77", "--expect-head", hashes2[76], path2); code != 0 ||
		!strings.Contains(out, "lines 80") || !strings.Contains(out, "anchor") {
		t.Errorf("a grown log against an older anchor: exit %d: %s", code, out)
	}
	// But not a different log with as many lines.
	if code, out := auditVerify(t, "--expect-lines", "77", "--expect-head", hashes[76], path2); code != 1 {
		t.Errorf("another log against this anchor: exit %d: %s", code, out)
	}
	if code, out := auditVerify(t, "--expect-lines", "x", path2); code != 1 || !strings.Contains(out, "expect-lines") {
		t.Errorf("a bad --expect-lines: exit %d: %s", code, out)
	}
}

// The server logs the audit head periodically and at shutdown, so a log collector holds
// an anchor without any cron job.
func TestAuditHeadIsLogged(t *testing.T) {
	path, hashes := auditFile(t, 3, "eq_status")
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"call", "eq_status", "id=40101", "--sandbox", "--audit-log", path, "--data-dir", t.TempDir(), "--log-format", "json"},
		nil, &bytes.Buffer{}, &stderr, env())
	if code != 0 {
		t.Fatalf("call: exit %d: %s", code, stderr.String())
	}
	b, _ := os.ReadFile(path)
	n := bytes.Count(b, []byte("\n"))
	m := regexp.MustCompile(`"msg":"audit head".*"lines":(\d+).*"head":"([0-9a-f]{64})"`).FindAllStringSubmatch(stderr.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no audit head logged at shutdown: %s", stderr.String())
	}
	last := m[len(m)-1]
	if last[1] != strconv.Itoa(n) || last[2] == hashes[2] {
		t.Fatalf("logged head %s at %s lines; the file has %d lines", last[2], last[1], n)
	}
	if code, out := auditVerify(t, "--expect-lines", last[1], "--expect-head", last[2], path); code != 0 {
		t.Fatalf("the logged head does not anchor the file: %s", out)
	}
}
