package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// walkStep is one command of the README walkthrough, run in a fresh sandbox.
type walkStep struct {
	intro string // prose before the command
	args  []string
	stdin string
}

var walkthrough = []walkStep{
	{
		intro: "An order with software that does not fit the OS is refused before anything is sent:",
		args:  []string{"call", "server_order", "location_name=NL", "preset=vm.pico", "os_id=187", "soft_id=49", "traffic_plan=25", "deploy_period=monthly", "root_pass=Example-pass-1", "--toolsets", "workflows"},
	},
	{
		intro: "With a compatible OS the human sees one confirmation for the whole order, then every install stage (the sandbox installs in 20 s, `--sandbox-install-duration`), then the result:",
		args:  []string{"call", "server_order", "location_name=NL", "preset=vm.pico", "os_id=180", "soft_id=49", "traffic_plan=25", "deploy_period=monthly", "root_pass=Example-pass-1", "--toolsets", "workflows"},
		stdin: "y\n",
	},
	{
		intro: "A reinstall fills in `location_name` from `eq/show` (invapi insists on it); answering anything but `y` sends nothing:",
		args:  []string{"call", "server_reinstall", "id=40102", "os_id=187", "root_pass=Example-pass-1", "--toolsets", "workflows"},
		stdin: "n\n",
	},
}

// walkMasks hide what changes from run to run (ids, keys, times).
var walkMasks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`job-[0-9a-f]{8,}`), "job-…"},
	{regexp.MustCompile(`\b[0-9a-f]{32}\b`), "…"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "…"},
	{regexp.MustCompile(`inprocess-\d+`), "inprocess-…"},
}

func normaliseWalk(s string) string {
	for _, m := range walkMasks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

var progressLine = regexp.MustCompile(`(?m)^progress (\d+)/(\d+): .*\n`)

// runWalkthrough runs the steps against fresh sandboxes and renders the README section.
func runWalkthrough(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, st := range walkthrough {
		var out, errb bytes.Buffer
		// Hidden from the README: a short install, quiet logs, a private data dir.
		args := append(append([]string{}, st.args...), "--sandbox-install-duration", "2s", "--log-level", "error", "--data-dir", t.TempDir())
		run(t.Context(), args, strings.NewReader(st.stdin), &out, &errb, env())
		// What the terminal shows: stderr (questions, progress, errors), then stdout. The
		// answer typed at the prompt is echoed by the terminal, not by the program.
		// run prints its closing error line after the result, as a terminal shows it.
		stderr, tail := errb.String(), ""
		if i := strings.LastIndex(stderr, "hostkey-mcp: "); i >= 0 {
			stderr, tail = stderr[:i], stderr[i:]
		}
		text := strings.Replace(stderr, "Confirm? [y/N] ", "Confirm? [y/N] "+strings.TrimSpace(st.stdin)+"\n", 1) + out.String() + tail
		// Progress must increase, stage by stage.
		last := -1
		for _, m := range progressLine.FindAllStringSubmatch(text, -1) {
			p, _ := strconv.Atoi(m[1])
			if p <= last {
				t.Errorf("%s: progress went from %d to %d:\n%s", st.args[1], last, p, text)
			}
			last = p
		}
		fmt.Fprintf(&b, "%s\n\n```text\n$ hostkey-mcp %s\n%s```\n\n", st.intro, strings.Join(st.args, " "), normaliseWalk(text))
	}
	return b.String()
}

// Issue 17: the README walkthrough ("6/6 … done") was never what a user got. It is now
// the output of a real sandbox run (make walkthrough rewrites it); this test reruns it
// and fails when the README drifts (ids and times masked; the progress lines are
// compared in full only when regenerating, since a loaded machine may poll a stage late).
func TestREADMEWalkthrough(t *testing.T) {
	got := runWalkthrough(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	have, updated := replaceBetween(t, string(readme), "<!-- BEGIN WALKTHROUGH (generated: make walkthrough) -->\n", "<!-- END WALKTHROUGH -->", got)
	if *updateREADME {
		if n := len(progressLine.FindAllString(got, -1)); n != 7 {
			t.Fatalf("the order showed %d progress lines, want 7 (0/6 … 6/6): rerun on a quieter machine\n%s", n, got)
		}
		if err := os.WriteFile("../../README.md", []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	strip := func(s string) string { return progressLine.ReplaceAllString(s, "") }
	if strip(have) != strip(got) {
		t.Errorf("the README walkthrough differs from a real run: run make walkthrough\n--- README\n%s\n--- run\n%s", have, got)
	}
	if !strings.Contains(have, "progress 6/6: finished") {
		t.Error("the README walkthrough does not show the order finishing")
	}
}
