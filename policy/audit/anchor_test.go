package audit_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

// Head counts every line of the file, those another process appended included, so the
// anchor the server logs is the file's.
func TestHeadCountsEveryLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 5 {
		if _, err := a.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, h := a.Head(); n != 5 || h != a.Last() {
		t.Fatalf("Head = %d %s", n, h)
	}
	b, err := audit.Open(path) // another process
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Head(); n != 5 {
		t.Fatalf("a second Open counts %d lines", n)
	}
	for i := range 3 {
		if _, err := b.Append(entry(10 + i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	last, err := a.Append(entry(20))
	if err != nil {
		t.Fatal(err)
	}
	if n, h := a.Head(); n != 9 || h != last {
		t.Fatalf("Head after another writer = %d %s, want 9 %s", n, h, last)
	}
}

func TestCheckAgainstAnAnchor(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(&buf, "")
	var hashes []string
	for i := range 10 {
		h, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	file := buf.Bytes()
	cut := bytes.Join(bytes.SplitAfter(file, []byte("\n"))[:6], nil)
	cases := []struct {
		name   string
		data   []byte
		anchor audit.Anchor
		err    string
	}{
		{"no anchor", file, audit.Anchor{}, ""},
		{"exact", file, audit.Anchor{Lines: 10, Head: hashes[9]}, ""},
		{"grown since", file, audit.Anchor{Lines: 7, Head: hashes[6]}, ""},
		{"head only", file, audit.Anchor{Head: hashes[3]}, ""},
		{"lines only", file, audit.Anchor{Lines: 10}, ""},
		{"truncated, lines", cut, audit.Anchor{Lines: 10}, "the file has 6 lines, the anchor 10: 4 lines were cut off"},
		{"truncated, head", cut, audit.Anchor{Head: hashes[9]}, "not in the chain of 6 lines: lines were cut off"},
		{"truncated, both", cut, audit.Anchor{Lines: 10, Head: hashes[9]}, "4 lines were cut off"},
		{"head at another line", file, audit.Anchor{Lines: 8, Head: hashes[6]}, "is line 7 here, not line 8"},
		{"unknown head", file, audit.Anchor{Lines: 3, Head: strings.Repeat("0", 64)}, "not in the chain"},
	}
	for _, tc := range cases {
		got, err := audit.Check(bytes.NewReader(tc.data), tc.anchor)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
		wantLines, wantHead := 10, hashes[9]
		if bytes.Equal(tc.data, cut) {
			wantLines, wantHead = 6, hashes[5]
		}
		if got.Lines != wantLines || got.Head != wantHead {
			t.Errorf("%s: reports %d lines, head %s", tc.name, got.Lines, got.Head)
		}
	}
	// A broken chain is still reported as such, anchor or not.
	bad := bytes.Replace(file, []byte("eq_reboot"), []byte("eq_rebooT"), 1)
	if _, err := audit.Check(bytes.NewReader(bad), audit.Anchor{Lines: 1}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("edited line: %v", err)
	}
}
