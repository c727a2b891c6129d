package audit_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

func entry(i int) audit.Entry {
	return audit.Entry{
		Time: time.Date(2026, 11, 23, 9, 0, i, 0, time.UTC), Session: "s1", Client: "test",
		Tool: "eq_reboot", Module: "eq", Action: "reboot", Class: "destructive",
		ServerIDs: []int64{40101}, Args: map[string]any{"id": 40101, "note": fmt.Sprintf("<%d> & \"q\"", i)},
		Decision: "confirmed", Upstream: "ok", Requests: 1, Duration: 12.5,
	}
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	// Two Logs on one file stand for two processes: flock plus re-reading the tail keeps
	// a single chain.
	a, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := a
			if w%2 == 1 {
				l = b
			}
			for i := 0; i < 25; i++ {
				if _, err := l.Append(entry(i)); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	a.Close()
	b.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %o, want 600", st.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil || n != 200 {
		t.Fatalf("verify: %d lines, %v", n, err)
	}
	// Reopening continues the chain.
	c, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(entry(99)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	data, _ := os.ReadFile(path)
	if n, err := audit.Verify(bytes.NewReader(data)); err != nil || n != 201 {
		t.Fatalf("after reopen: %d, %v", n, err)
	}
}

func TestVerifyNamesTheFirstBadLine(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(&buf, "")
	for i := 0; i < 5; i++ {
		if _, err := l.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	good := buf.String()
	if n, err := audit.Verify(strings.NewReader(good)); err != nil || n != 5 {
		t.Fatalf("%d %v", n, err)
	}
	lines := strings.SplitAfter(good, "\n")[:5]
	cases := map[string]struct {
		log  string
		want string
	}{
		"edited":    {strings.Join(append(append([]string{}, lines[:3]...), strings.Replace(lines[3], `"ok"`, `"ko"`, 1), lines[4]), ""), "line 4: hash mismatch"},
		"removed":   {strings.Join(append(append([]string{}, lines[:2]...), lines[3:]...), ""), "line 3: prev"},
		"reordered": {lines[0] + lines[2] + lines[1] + lines[3] + lines[4], "line 2: prev"},
		"head cut":  {strings.Join(lines[1:], ""), "line 1: chain does not start here"},
		"torn":      {strings.Join(lines[:4], "") + strings.TrimSuffix(lines[4], "\n"), "line 5: incomplete"},
		"rehashed":  {strings.Join(lines[:4], "") + `{"x":1,"hash":"` + strings.Repeat("0", 64) + "\"}\n", "line 5: hash mismatch"},
		"not json":  {strings.Join(lines[:1], "") + "hello\n", "line 2: not a hash-chained"},
	}
	for name, tc := range cases {
		if _, err := audit.Verify(strings.NewReader(tc.log)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func TestOpenRefusesATamperedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.Append(entry(i))
	}
	l.Close()
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"confirmed"`), []byte(`"declined"`), 1), 0o600)
	if _, err := audit.Open(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("tampered file opened: %v", err)
	}
}
