package state_test

// Real processes on one store: the test binary runs itself as the appender
// (TestHelperAppender, selected by HOSTKEY_STATE_CHILD).

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hostkey/hostkey-mcp/state"
)

// TestHelperAppender is not a test: as a child process it appends events to the store
// HOSTKEY_STATE_TARGET and prints "cursor key" for each acknowledged append.
func TestHelperAppender(t *testing.T) {
	target := os.Getenv("HOSTKEY_STATE_CHILD")
	if target == "" {
		t.Skip("child process helper")
	}
	id := os.Getenv("HOSTKEY_STATE_CHILD_ID")
	n, _ := strconv.Atoi(os.Getenv("HOSTKEY_STATE_CHILD_N")) // 0: until killed
	s, err := state.Open(ctx, target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 { // concurrent appenders inside the process too
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; n == 0 || i < n; i++ {
				key := fmt.Sprintf("%s-%d-%d", id, w, i)
				if i%5 == 0 {
					key = fmt.Sprintf("shared-%d-%d", w, i) // every child sends it
				}
				e, _, err := s.Append(ctx, ev("install_done", 1, key), key)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(out, e.Cursor, key)
				out.Flush() // acknowledged only once the parent can see it
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.Close()
	os.Exit(0)
}

type child struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

func startChild(t *testing.T, target, id string, n int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOSTKEY_STATE_CHILD="+target, "HOSTKEY_STATE_CHILD_ID="+id, "HOSTKEY_STATE_CHILD_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	return c
}

// Three processes append concurrently (some keys sent by all), one of them is killed
// with SIGKILL half-way: every acknowledged append is stored exactly once, with the
// cursor its appender was told, and the cursors are 1..N without a gap.
func TestMultiProcessAppendAndKill(t *testing.T) {
	each(t, func(t *testing.T, target string, open func() state.Store) {
		s := open() // migrated before the children race to do it
		const n = 60
		kids := []*child{startChild(t, target, "a", n), startChild(t, target, "b", n), startChild(t, target, "victim", 0)}
		acked := map[string]uint64{} // key → cursor
		record := func(line string) {
			var cur uint64
			var key string
			if _, err := fmt.Sscan(line, &cur, &key); err != nil {
				t.Fatalf("child line %q: %v", line, err)
			}
			if prev, ok := acked[key]; ok && prev != cur {
				t.Fatalf("key %s acknowledged at cursors %d and %d", key, prev, cur)
			}
			acked[key] = cur
		}
		victim := kids[2]
		for seen := 0; seen < 300; seen++ {
			line, ok := <-victim.lines
			if !ok {
				t.Fatal("the victim exited early")
			}
			record(line)
		}
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			for line := range k.lines {
				record(line)
			}
			err := <-k.done
			if k != victim && err != nil {
				t.Fatalf("child failed: %v", err)
			}
		}
		p := must(s.Since(ctx, 0, 1<<20, state.Filter{})).ok(t)
		byKey := map[string]uint64{}
		for i, e := range p.Events {
			if e.Cursor != uint64(i+1) {
				t.Fatalf("event %d has cursor %d: a gap", i, e.Cursor)
			}
			key, _ := strconv.Unquote(string(e.Data))
			if _, dup := byKey[key]; dup {
				t.Fatalf("key %s stored twice", key)
			}
			byKey[key] = e.Cursor
		}
		for key, cur := range acked {
			if byKey[key] != cur {
				t.Fatalf("acknowledged %s at cursor %d, stored at %d", key, cur, byKey[key])
			}
		}
		shared := 0
		for key := range byKey {
			if strings.HasPrefix(key, "shared-") {
				shared++
			}
		}
		t.Logf("%d events stored, %d acknowledged, %d shared keys", len(p.Events), len(acked), shared)
	})
}
