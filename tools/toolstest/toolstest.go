// Package toolstest starts the whole stack for tests, like net/http/httptest does for
// handlers: the invapi simulator on a real loopback HTTP server, the real invapi client,
// the MCP server, and an mcp-go client connected in process. With Options.Full the
// server is the whole stack as cmd assembles it (tools/stack): policy, receiver,
// workflows, events.
// It may import every package but cmd.
package toolstest

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
)

// Options adjust the stack. Configure, when set, edits the tools options last.
type Options struct {
	Selection   tools.Selection
	Elicitation client.ElicitationHandler // nil: the client declares no elicitation
	SimOptions  sim.Options
	Configure   func(*tools.Options)
	NoConnect   bool   // build everything but do not connect a client
	Protocol    string // protocol version the client asks for (default: the latest)
	// Full, when set, assembles the whole stack with stack.New and edits its options
	// first (the client and the simulator's PIN are filled in; Configure still runs last
	// on the tools options).
	Full func(*stack.Options)
}

// Stack is a running sandbox.
type Stack struct {
	Sim    *sim.Server
	Clock  *sim.ManualClock
	HTTP   *httptest.Server
	Client *invapi.Client
	Server *tools.Server
	MCP    *client.Client
	Full   *stack.Stack // the assembled stack with Options.Full; nil otherwise
}

// Epoch is the simulator's start time in every test.
var Epoch = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// New starts a stack and stops it when the test ends.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	clock := sim.NewManualClock(Epoch)
	so := o.SimOptions
	if so.Clock == nil {
		so.Clock = clock
	}
	so.NoPINFailDelay = true
	s, err := sim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	account, _ := s.Keys()
	cat := schemas.Load()
	c, err := invapi.New(invapi.Options{
		BaseURL:  hs.URL + "/",
		APIKey:   account,
		Resolver: invapi.CatalogResolver(cat),
		Retry:    invapi.RetryPolicy{Attempts: 2, Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Now:      clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Selection.Toolsets) == 0 && len(o.Selection.Include) == 0 {
		o.Selection.Toolsets = []string{"all"}
	}
	st := &Stack{Sim: s, Clock: clock, HTTP: hs, Client: c}
	if o.Full != nil {
		so := stack.Options{Catalog: cat, Client: c, Selection: o.Selection, Version: "test",
			Policy: policy.Options{PIN: policy.StaticPIN(s.PIN())}, ConfigureTools: o.Configure}
		o.Full(&so)
		full, err := stack.New(t.Context(), so)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(full.Close)
		st.Full, st.Server = full, full.Server
	} else {
		topts := tools.Options{Catalog: cat, Client: c, Sessions: c, Selection: o.Selection, Version: "test"}
		if o.Configure != nil {
			o.Configure(&topts)
		}
		if st.Server, err = tools.New(topts); err != nil {
			t.Fatal(err)
		}
	}
	srv := st.Server
	if !o.NoConnect {
		st.MCP = ConnectVersion(t, srv, o.Elicitation, o.Protocol)
	}
	return st
}

// Connect attaches a new in-process MCP client (a new session) to srv.
func Connect(t testing.TB, srv *tools.Server, elicit client.ElicitationHandler) *client.Client {
	t.Helper()
	return ConnectVersion(t, srv, elicit, "")
}

// ConnectVersion is Connect with a protocol version ("" for the latest).
func ConnectVersion(t testing.TB, srv *tools.Server, elicit client.ElicitationHandler, version string) *client.Client {
	t.Helper()
	if version == "" {
		version = mcp.LATEST_PROTOCOL_VERSION
	}
	var opts []client.ClientOption
	if elicit != nil {
		opts = append(opts, client.WithElicitationHandler(elicit))
	}
	c, err := client.NewInProcessClientWithOptions(srv.MCP(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "toolstest", Version: "1"}
	if elicit != nil {
		init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// ConnectStdio attaches a client over in-memory stdio pipes: the transport that carries
// notifications/cancelled the way a real stdio client does (the in-process transport
// does not forward it to the request).
func ConnectStdio(t testing.TB, srv *tools.Server, elicit client.ElicitationHandler, version string) *client.Client {
	t.Helper()
	if version == "" {
		version = mcp.LATEST_PROTOCOL_VERSION
	}
	ctx := t.Context()
	clientRead, serverWrite := io.Pipe()
	serverRead, clientWrite := io.Pipe()
	t.Cleanup(func() {
		_ = serverWrite.Close()
		_ = serverRead.Close()
	})
	go func() { _ = server.NewStdioServer(srv.MCP()).Listen(ctx, serverRead, serverWrite) }()
	var opts []client.ClientOption
	if elicit != nil {
		opts = append(opts, client.WithElicitationHandler(elicit))
	}
	c := client.NewClient(transport.NewIO(clientRead, clientWrite, io.NopCloser(strings.NewReader(""))), opts...)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "toolstest-stdio", Version: "1"}
	if elicit != nil {
		init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// Call calls a tool and fails the test on a protocol error (tool errors are results).
func (s *Stack) Call(t testing.TB, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	return CallWith(t, s.MCP, name, args)
}

// CallWith calls a tool through the given client.
func CallWith(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// Text joins a result's text content.
func Text(res *mcp.CallToolResult) string {
	out := ""
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			out += tc.Text
		}
	}
	return out
}

// Sent returns the simulator's requests for module/action.
func (s *Stack) Sent(module, action string) []sim.Request {
	var out []sim.Request
	for _, r := range s.Sim.Requests() {
		if r.Module == module && r.Action == action {
			out = append(out, r)
		}
	}
	return out
}
