// Command loadtest measures the webhook receiver on loopback: it starts a receiver with
// the shared SQLite store (fsync on every commit) on 127.0.0.1, creates N install jobs, sends
// their callbacks over C keep-alive connections, and reports accepted/s, CPU per request,
// latency percentiles and how many events were lost (stored events and completed jobs are
// counted from the store afterwards). It exits non-zero if anything was lost, any
// request failed, or the run exceeded -timeout.
//
//	go run ./webhook/cmd/loadtest -n 20000 -c 64 -timeout 2m
//
// With -store postgres -replicas N it runs N receivers, each with its own connection pool
// (and LISTEN connection) to one PostgreSQL database, on N listeners, and sends callback k
// to receiver k mod N (a replay goes to another receiver than the first send): the
// replicas of issue 16 behind a round-robin balancer, measured the same way. The URL
// comes from HOSTKEY_STORE or HOSTKEY_TEST_POSTGRES_URL (never a flag: it may hold a
// password); the run uses a fresh schema there and drops it afterwards.
//
//	HOSTKEY_STORE=postgres://… go run ./webhook/cmd/loadtest -store postgres -replicas 3
//
// It never sends anywhere but the loopback listeners it starts itself.
// It imports webhook, its store and state.
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	n := fs.Int("n", 20000, "callbacks to send (one job each)")
	conns := fs.Int("c", 64, "concurrent connections")
	replay := fs.Float64("replay", 0.05, "fraction of callbacks sent a second time (must be deduplicated)")
	timeout := fs.Duration("timeout", 2*time.Minute, "the whole run must finish within this")
	kind := fs.String("store", "sqlite", "sqlite (the shared store hostkey-mcp uses, durable), or postgres (HOSTKEY_STORE or HOSTKEY_TEST_POSTGRES_URL; durable)")
	replicas := fs.Int("replicas", 1, "receivers, each with its own store handle, callbacks spread round robin (more than 1 needs -store postgres)")
	dir := fs.String("dir", "", "directory for the SQLite file (default: a temporary directory, removed afterwards)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the callback phase to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *n > 1_000_000 || *conns <= 0 || *conns > 1024 || *replay < 0 || *replay > 1 || *replicas < 1 || *replicas > 16 {
		return errors.New("want 0 < n ≤ 1e6, 0 < c ≤ 1024, 0 ≤ replay ≤ 1, 1 ≤ replicas ≤ 16")
	}
	if *replicas > 1 && *kind != "postgres" {
		return fmt.Errorf("-replicas %d: replicas share a PostgreSQL database (-store postgres); %s is one process's", *replicas, *kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// open returns one store handle; with -store postgres every receiver gets its own.
	var open func() (store.Store, error)
	var where string
	switch *kind {
	case "sqlite":
		d := *dir
		if d == "" {
			tmp, err := os.MkdirTemp("", "hostkey-webhook-load-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			d = tmp
		}
		path := filepath.Join(d, state.FileName)
		where = "sqlite (WAL, fsync per commit) at " + path
		open = func() (store.Store, error) { return store.OpenShared(ctx, path) }
	case "postgres":
		url, drop, err := freshSchema(ctx)
		if err != nil {
			return err
		}
		defer drop()
		where = fmt.Sprintf("postgres (%d handles, one database; durable commits)", *replicas)
		open = func() (store.Store, error) { return store.OpenShared(ctx, url) }
	default:
		return fmt.Errorf("-store %q: want sqlite or postgres", *kind)
	}

	notifiedBy := make([]atomic.Int64, *replicas) // events each replica's sessions were told of
	sctx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	rcvs := make([]*webhook.Receiver, *replicas)
	stores := make([]store.Store, *replicas)
	bases := make([]string, *replicas)
	served := make(chan error, *replicas)
	for k := range rcvs {
		st, err := open()
		if err != nil {
			return err
		}
		stores[k] = st
		defer st.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		bases[k] = "http://" + ln.Addr().String()
		rcv, err := webhook.New(ctx, webhook.Config{Store: st, PublicURL: bases[k], RateLimit: rate.Inf, NotifyQueue: *n + 16})
		if err != nil {
			return err
		}
		rcv.SetNotifier(webhook.NotifierFunc(func(context.Context, webhook.Event) { notifiedBy[k].Add(1) }))
		rcvs[k] = rcv
		go func() { served <- webhook.Serve(sctx, ln, rcv.Handler(), webhook.Timeouts{}) }()
	}
	st, public := stores[0], strings.Join(bases, " ")

	fmt.Fprintf(out, "webhook load test: %d callbacks (+%.0f%% replays) over %d connections to %s, store %s, %d CPUs, %s/%s\n",
		*n, *replay*100, *conns, public, where, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)

	// Setup: the jobs, created concurrently (as many tool calls would), on every replica.
	start := time.Now()
	urls := make([]string, *n)
	if err := parallel(ctx, *conns, *n, func(i int) error {
		u, err := rcvs[i%len(rcvs)].NewInstallJob(ctx, int64(100000+i), "eq_order_instance", "load", nil)
		urls[i] = u[strings.Index(u, "/cb/"):] // the path: any replica serves it
		return err
	}); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintf(out, "setup: %d jobs in %v\n", *n, time.Since(start).Round(time.Millisecond))

	// The callbacks: job i once, and every 1/replay-th job twice.
	every := 0
	if *replay > 0 {
		every = int(1 / *replay)
	}
	var plan []int
	for i := range *n {
		plan = append(plan, i)
		if every > 0 && i%every == 0 {
			plan = append(plan, i)
		}
	}
	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, len(plan))
	var non200, failed atomic.Int64
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start = time.Now()
	cpu0 := cpuTime()
	err := parallel(ctx, *conns, len(plan), func(k int) error {
		i := plan[k]
		// Round robin: a replay (the next entry of the plan) lands on another replica.
		u := bases[k%len(bases)] + urls[i]
		var req *http.Request
		if k%2 == 0 {
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, u+"?status=done", nil)
		} else {
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(fmt.Sprintf(`{"hostname":"load-%d","status":"done"}`, i)))
			req.Header.Set("Content-Type", "application/json")
		}
		t0 := time.Now()
		res, err := hc.Do(req)
		if err != nil {
			failed.Add(1)
			return nil
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		lat[k] = time.Since(t0)
		if res.StatusCode != http.StatusOK {
			non200.Add(1)
		}
		return nil
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("sending: %w (after %v)", err, elapsed)
	}

	// Every replica follows the events the others accepted (LISTEN wakes it, a 1 s poll
	// backs that up); Close stops following at once, so wait for them first (bounded).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		caught := true
		for k := range notifiedBy {
			caught = caught && notifiedBy[k].Load() >= int64(*n)
		}
		if caught {
			break
		}
	}
	var notified int64
	for k := range notifiedBy {
		notified += notifiedBy[k].Load()
	}
	stopServer()
	for range rcvs {
		if err := <-served; err != nil {
			return err
		}
	}
	cctx, cc := context.WithTimeout(context.Background(), 30*time.Second)
	defer cc()
	var accepted, duplicates, dropped int64
	for _, r := range rcvs {
		if err := r.Close(cctx); err != nil {
			return err
		}
		m := r.Metrics()
		accepted += int64(m.Accepted[store.KindInstallDone])
		duplicates += int64(m.Duplicates)
		dropped += int64(m.NotifyDropped)
	}

	// Count what the store holds.
	page, err := st.Since(context.Background(), 0, *n*2+10, store.Filter{})
	if err != nil {
		return err
	}
	jobs := map[string]bool{}
	for _, ev := range page.Events {
		jobs[ev.JobID] = true
	}
	done := 0
	for _, u := range urls {
		j, err := st.JobBySecretHash(context.Background(), hashOf(u))
		if err == nil && j.State == store.JobDone {
			done++
		}
	}
	lost := *n - len(jobs)

	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "sent %d requests in %v: %.0f requests/s, %.0f accepted events/s\n",
		len(plan), elapsed.Round(time.Millisecond), float64(len(plan))/elapsed.Seconds(), float64(accepted)/elapsed.Seconds())
	// CPU per request (this process: server and client) is steadier than requests/s on
	// a shared machine: other processes' load stretches wall time, not this.
	fmt.Fprintf(out, "cpu %v per request (server and client, %.2f cores busy)\n",
		(cpu / time.Duration(len(plan))).Round(time.Microsecond), cpu.Seconds()/elapsed.Seconds())
	fmt.Fprintf(out, "latency p50 %v  p90 %v  p99 %v  max %v\n", pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1].Round(10*time.Microsecond))
	fmt.Fprintf(out, "store: %d events, %d jobs done; accepted %d, duplicates %d, non-200 %d, transport errors %d, notified %d, notify dropped %d\n",
		len(page.Events), done, accepted, duplicates, non200.Load(), failed.Load(), notified, dropped)
	fmt.Fprintf(out, "lost = %d\n", lost)
	switch {
	case lost != 0 || done != *n || len(page.Events) != *n:
		return fmt.Errorf("lost %d events (%d stored, %d jobs done, want %d)", lost, len(page.Events), done, *n)
	case non200.Load() != 0 || failed.Load() != 0:
		return fmt.Errorf("%d non-200 answers, %d transport errors", non200.Load(), failed.Load())
	case int(duplicates) != len(plan)-*n:
		return fmt.Errorf("%d duplicates counted, want %d", duplicates, len(plan)-*n)
	}
	return nil
}

// parallel runs fn(0..count-1) on workers goroutines; it stops at the first error or
// when ctx ends.
func parallel(ctx context.Context, workers, count int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				if ctx.Err() != nil {
					once.Do(func() { first = ctx.Err() })
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func hashOf(callbackURL string) []byte {
	h := sha256.Sum256([]byte(callbackURL[strings.LastIndexByte(callbackURL, '/')+1:]))
	return h[:]
}

// freshSchema creates a schema of its own on the PostgreSQL database HOSTKEY_STORE (or
// HOSTKEY_TEST_POSTGRES_URL) names and returns the URL that selects it and a function
// that drops it.
func freshSchema(ctx context.Context) (string, func(), error) {
	base := os.Getenv("HOSTKEY_STORE")
	if base == "" {
		base = os.Getenv("HOSTKEY_TEST_POSTGRES_URL")
	}
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return "", nil, errors.New("-store postgres: set HOSTKEY_STORE (or HOSTKEY_TEST_POSTGRES_URL) to a postgres:// URL (make bench-replicas starts a throwaway cluster)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := strings.ToLower(state.NewID("load_"))
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("PostgreSQL: create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	}, nil
}
