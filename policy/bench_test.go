package policy_test

// `make bench` runs this (issue 15: the shared state may add at most 0.3 ms p50 to a
// tool call against the in-memory baseline). One governed read call (eq_show) through
// a real in-process MCP client, the policy, the invapi client and the simulator on real
// HTTP; "memory" keeps the policy's state in the process (rate buckets, audit to a
// buffer), "sqlite" in a store file (buckets taken and the audit line appended, each a
// durable commit). Back to back the background audit writer competes with the calls
// for the 2 cores; "-paced" leaves 5 ms between calls. HOSTKEY_BENCH_DIR puts the file
// on another disk.

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
)

func BenchmarkToolCallState(b *testing.B) {
	for _, mode := range []string{"memory", "sqlite", "sqlite-limits-only", "sqlite-audit-only", "memory-paced", "sqlite-paced"} {
		b.Run(mode, func(b *testing.B) {
			s, err := sim.New(sim.Options{Fixtures: fixtures(b), NoPINFailDelay: true})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(s)
			defer hs.Close()
			key, _ := s.Keys()
			inv, err := invapi.New(invapi.Options{BaseURL: hs.URL + "/", APIKey: key, Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			cat := schemas.Load()
			// The default limits' bursts (they size the leases), with rates that never
			// refuse during the benchmark.
			lim := func(burst int) policy.Limit { return policy.Limit{Rate: 1e6, Burst: burst} }
			po := policy.Options{Describe: tools.Describer(cat), Catalog: cat, PIN: policy.StaticPIN(testPIN),
				Limits: policy.Limits{Global: lim(10), Session: lim(20), Destructive: lim(3), Server: lim(1)},
				Audit:  audit.New(io.Discard, "")}
			paced := strings.HasSuffix(mode, "-paced")
			if strings.HasPrefix(mode, "sqlite") {
				dir := os.Getenv("HOSTKEY_BENCH_DIR")
				if dir == "" {
					dir = b.TempDir()
				} else if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
					b.Fatal(err)
				} else {
					defer os.RemoveAll(dir)
				}
				st, err := state.Open(context.Background(), filepath.Join(dir, "state.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				po.State, po.Audit = st, audit.NewChain(st, nil)
				switch mode {
				case "sqlite-limits-only":
					po.Audit = audit.New(io.Discard, "")
				case "sqlite-audit-only":
					po.Limits = policy.Limits{}
				}
			}
			eng, err := policy.New(po)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := tools.New(tools.Options{Catalog: cat, Client: eng.Guard(inv), Selection: tools.Selection{Toolsets: []string{"all"}},
				Version: "bench", PIN: policy.PINFrom, Middleware: []server.ToolHandlerMiddleware{eng.Middleware}, ArgsValidated: true, Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			c, err := client.NewInProcessClient(srv.MCP())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
			init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
			if _, err := c.Initialize(ctx, init); err != nil {
				b.Fatal(err)
			}
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "eq_show", map[string]any{"id": 40101}
			durs := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				if paced {
					// 200 calls/s, 40 times the default global limit: the background
					// audit writer keeps up, as it does in use.
					b.StopTimer()
					time.Sleep(5 * time.Millisecond)
					b.StartTimer()
				}
				t0 := time.Now()
				res, err := c.CallTool(ctx, req)
				durs = append(durs, time.Since(t0))
				if err != nil || res.IsError {
					b.Fatalf("eq_show: %v %v", err, res)
				}
			}
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-µs")
		})
	}
}
