// Package audit writes the policy's decisions to an append-only, hash-chained JSON Lines
// file and verifies such a file.
//
// Every line is one JSON object. Its "prev" field holds the hash of the line before it
// ("" for the first line) and its last field, "hash", is the hex SHA-256 of the line's
// own bytes up to that field, closed with "}":
//
//	{"time":"…",…,"prev":"<hash of line n-1>","hash":"<sha256 of {"time":"…",…,"prev":"…"}>"}
//
// Editing, inserting, removing or reordering lines breaks the chain and Verify names the
// first bad line. Cutting lines off the end cannot be seen from the file alone: it takes
// an anchor kept elsewhere, a line count and the head hash (Log.Head, the output of
// `hostkey-mcp audit-verify`, the server's periodic "audit head" log line), which Check
// compares with the file. Of this module it imports only state.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Entry is one decision of the policy.
type Entry struct {
	Time      time.Time      `json:"time"`
	Session   string         `json:"session,omitempty"`
	Client    string         `json:"client,omitempty"`
	Tool      string         `json:"tool"`
	Module    string         `json:"module,omitempty"`
	Action    string         `json:"action,omitempty"`
	Class     string         `json:"class,omitempty"`
	ServerIDs []int64        `json:"server_ids,omitempty"`
	Args      map[string]any `json:"args,omitempty"` // secrets redacted by the caller
	Decision  string         `json:"decision"`
	Reason    string         `json:"reason,omitempty"`
	Confirm   string         `json:"confirm,omitempty"`  // how a human confirmed: elicit-form, page, bot, ...
	Upstream  string         `json:"upstream,omitempty"` // invapi outcome: "ok", or kind and code
	Requests  int            `json:"requests,omitempty"` // upstream requests sent
	Duration  float64        `json:"duration_ms"`
	Prev      string         `json:"prev"`
	Hash      string         `json:"hash,omitempty"`
}

// Log appends entries to a chain. It is safe for concurrent use; on Unix a file log is
// also locked against other processes appending to the same file.
type Log struct {
	mu    sync.Mutex
	w     io.Writer
	f     *os.File // nil for a plain writer
	last  string   // hash of the last line written
	lines int      // lines in the chain, as far as this Log knows
	size  int64    // file size after our last write: a change means another writer
}

// New starts a chain on w (for tests and for writers that are not files). prev is the
// hash of the line w already ends with, "" for a new chain.
func New(w io.Writer, prev string) *Log { return &Log{w: w, last: prev} }

// Open opens (creating with mode 0600) an audit file for appending. An existing file is
// verified first: a broken chain is an error naming the first bad line, so tampering is
// noticed at start-up rather than papered over by new lines.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: lock: %w", path, err)
	}
	defer unlockFile(f)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	n, last, err := verify(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s does not verify (%w): move it aside or repair it; `hostkey-mcp audit-verify` checks a file", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return &Log{w: f, f: f, last: last, lines: n, size: st.Size()}, nil
}

// Close closes the file, if any.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.w = io.Discard
	return err
}

// Head returns the number of lines and the hash of the last one: the anchor to keep
// elsewhere (New's writer counts only the lines this Log wrote).
func (l *Log) Head() (lines int, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, l.last
}

// Last returns the hash of the last line written.
func (l *Log) Last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Append chains e to the log and writes it as one line; it returns the line's hash.
// e.Prev and e.Hash are set by Append.
func (l *Log) Append(e Entry) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		if err := lockFile(l.f); err != nil {
			return "", fmt.Errorf("audit log: lock: %w", err)
		}
		defer unlockFile(l.f)
		if err := l.resync(); err != nil {
			return "", err
		}
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Prev = l.last
	e.Hash = ""
	line, hash, err := Seal(e)
	if err != nil {
		return "", err
	}
	if _, err := l.w.Write(line); err != nil {
		return "", fmt.Errorf("audit log: write: %w", err)
	}
	l.last = hash
	l.lines++
	l.size += int64(len(line))
	return hash, nil
}

// resync picks up lines another process appended since our last write, so the chain
// continues from the real last line.
func (l *Log) resync() error {
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if st.Size() == l.size {
		return nil
	}
	last, err := lastHash(l.f, st.Size())
	if err != nil {
		return err
	}
	added, err := countLines(l.f, l.size, st.Size())
	if err != nil {
		return err
	}
	l.last, l.lines, l.size = last, l.lines+added, st.Size()
	return nil
}

// countLines counts the newlines of f between two offsets.
func countLines(f *os.File, from, to int64) (int, error) {
	if to < from {
		return 0, errors.New("audit log: the file shrank under us")
	}
	n := 0
	buf := make([]byte, 64<<10)
	for off := from; off < to; {
		k := min(int64(len(buf)), to-off)
		if _, err := f.ReadAt(buf[:k], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("audit log: read: %w", err)
		}
		n += bytes.Count(buf[:k], []byte("\n"))
		off += k
	}
	return n, nil
}

// lastHash reads the hash of the final line of a file of the given size.
func lastHash(f *os.File, size int64) (string, error) {
	if size == 0 {
		return "", nil
	}
	const chunk = 64 << 10
	start := size - chunk
	if start < 0 {
		start = 0
	}
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("audit log: read tail: %w", err)
	}
	buf = bytes.TrimRight(buf, "\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	_, hash, ok := split(buf)
	if !ok {
		return "", errors.New("audit log: the last line is not a hash-chained entry")
	}
	return hash, nil
}

const hashField = `,"hash":"`

// Seal renders e (whose Hash must be empty) as a chained line ending in "\n" and returns
// it with its hash.
func Seal(e Entry) ([]byte, string, error) {
	e.Hash = ""
	body, err := json.Marshal(e)
	if err != nil {
		return nil, "", fmt.Errorf("audit log: encode: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(body)+len(hashField)+len(hash)+3)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashField...)
	line = append(line, hash...)
	line = append(line, '"', '}', '\n')
	return line, hash, nil
}

// split takes a line apart into the body that was hashed and the hash it claims.
func split(line []byte) (body []byte, hash string, ok bool) {
	const hexLen = 64
	tail := len(hashField) + hexLen + 2 // ,"hash":"<64>"}
	if len(line) < tail+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, "", false
	}
	cut := len(line) - tail
	if !bytes.Equal(line[cut:cut+len(hashField)], []byte(hashField)) {
		return nil, "", false
	}
	hash = string(line[cut+len(hashField) : len(line)-2])
	if _, err := hex.DecodeString(hash); err != nil || len(hash) != hexLen {
		return nil, "", false
	}
	body = make([]byte, 0, cut+1)
	body = append(body, line[:cut]...)
	body = append(body, '}')
	return body, hash, true
}

// Verify checks the chain of an audit log and returns the number of lines. The error
// names the first bad line (1-based) and what is wrong with it.
func Verify(r io.Reader) (lines int, err error) {
	n, _, err := verify(r)
	return n, err
}

// Anchor is what was recorded of a log elsewhere: its line count and the hash of that
// last line. A zero field is not checked.
type Anchor struct {
	Lines int
	Head  string
}

// Check verifies the chain of r and that it extends the anchor: the anchored lines are
// all still there, and the anchored head is among them (the hash of line a.Lines when
// both are given). A log that grew since is fine; one cut below the anchor is not. It
// returns the file's own line count and head.
func Check(r io.Reader, a Anchor) (Anchor, error) {
	at := 0 // the line whose hash is a.Head
	n, head, err := verifyEach(r, func(line int, hash string) {
		if a.Head != "" && hash == a.Head && at == 0 {
			at = line
		}
	})
	got := Anchor{Lines: n, Head: head}
	if err != nil {
		return got, err
	}
	switch {
	case a.Lines > 0 && n < a.Lines:
		return got, fmt.Errorf("the file has %d lines, the anchor %d: %d lines were cut off the end (or the file was replaced)", n, a.Lines, a.Lines-n)
	case a.Head != "" && at == 0:
		return got, fmt.Errorf("the anchored head %s is not in the chain of %d lines: lines were cut off the end, or this is another log", a.Head, n)
	case a.Head != "" && a.Lines > 0 && at != a.Lines:
		return got, fmt.Errorf("the anchored head %s is line %d here, not line %d: this is not the anchored log", a.Head, at, a.Lines)
	}
	return got, nil
}

func verify(r io.Reader) (int, string, error) { return verifyEach(r, nil) }

// verifyEach is verify calling visit with every good line's number and hash.
func verifyEach(r io.Reader, visit func(line int, hash string)) (int, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prev := ""
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return n, prev, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, prev, fmt.Errorf("read after line %d: %w", n, err)
		}
		n++
		if !bytes.HasSuffix(line, []byte("\n")) {
			return n - 1, prev, fmt.Errorf("line %d: incomplete (no final newline): an interrupted write or a truncated file", n)
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		body, hash, ok := split(line)
		if !ok {
			return n - 1, prev, fmt.Errorf("line %d: not a hash-chained audit entry (no trailing \"hash\" field)", n)
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != hash {
			return n - 1, prev, fmt.Errorf("line %d: hash mismatch: the line was edited", n)
		}
		var head struct {
			Prev *string `json:"prev"`
		}
		if err := json.Unmarshal(body, &head); err != nil || head.Prev == nil {
			return n - 1, prev, fmt.Errorf("line %d: not a valid audit entry", n)
		}
		if *head.Prev != prev {
			if n == 1 {
				return n - 1, prev, fmt.Errorf("line 1: chain does not start here (earlier lines were removed)")
			}
			return n - 1, prev, fmt.Errorf("line %d: prev does not match the hash of line %d: lines were removed, inserted or reordered", n, n-1)
		}
		prev = hash
		if visit != nil {
			visit(n, hash)
		}
	}
}
