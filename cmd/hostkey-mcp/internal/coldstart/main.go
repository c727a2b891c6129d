// Command coldstart measures how long `hostkey-mcp --sandbox` takes from spawn to
// answering tools/list over stdio, and its resident memory at that point. `make bench`
// runs it; the README quotes it. Every stdio client spawns a process on the same data
// dir, so the figure is for a data dir that exists; the very first start, which creates
// the shared store (state.db), is reported apart.
// It imports nothing of the module: it runs the built binary.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

const requests = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"coldstart","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/list"}
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: coldstart BINARY [runs]")
		os.Exit(2)
	}
	runs := 10
	if len(os.Args) > 2 {
		fmt.Sscan(os.Args[2], &runs)
	}
	home, err := os.MkdirTemp("", "coldstart")
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(home)
	first, _, err := once(os.Args[1], home)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
	var times []time.Duration
	var rss []int
	for i := 0; i < runs; i++ {
		d, kb, err := once(os.Args[1], home)
		if err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", err)
			os.Exit(1)
		}
		times = append(times, d)
		rss = append(rss, kb)
	}
	sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
	sort.Ints(rss)
	cpu := cpuTimes[1:] // the first start's is not one of the runs
	sort.Slice(cpu, func(a, b int) bool { return cpu[a] < cpu[b] })
	fmt.Printf("cold start to tools/list (%d runs): median %s, min %s, max %s; on CPU median %s; resident memory median %.1f MiB; the first start on a new data dir: %s\n",
		runs, times[runs/2].Round(time.Millisecond), times[0].Round(time.Millisecond), times[runs-1].Round(time.Millisecond),
		cpu[len(cpu)/2].Round(100*time.Microsecond), float64(rss[runs/2])/1024, first.Round(time.Millisecond))
}

func once(bin, home string) (time.Duration, int, error) {
	cmd := exec.Command(bin, "--sandbox", "--log-level", "error")
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if _, err := io.WriteString(stdin, requests); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"id":2`) {
			d := time.Since(start)
			cpuTimes = append(cpuTimes, onCPU(cmd.Process.Pid))
			return d, rssKB(cmd.Process.Pid), nil
		}
	}
	return 0, 0, fmt.Errorf("no tools/list answer: %v", sc.Err())
}

// cpuTimes is each measured start's time on a CPU up to the tools/list answer: on a
// shared machine, other processes stretch the wall time but not this.
var cpuTimes []time.Duration

// onCPU sums the run time of the process's threads (Linux schedstat, in ns); 0 elsewhere.
func onCPU(pid int) time.Duration {
	dirs, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum time.Duration
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue
		}
		var ns int64
		fmt.Sscan(string(b), &ns)
		sum += time.Duration(ns)
	}
	return sum
}

// rssKB reads VmRSS from /proc (Linux); 0 elsewhere.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), &kb)
			return kb
		}
	}
	return 0
}
