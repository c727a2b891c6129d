package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi/sim"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
)

// splitLocalFlags pulls the subcommand's own flags (declared on local, e.g. --json) out
// of args wherever they stand, leaving the configuration flags and the positional
// arguments for parseConfig.
func splitLocalFlags(cmd string, args []string, local *flag.FlagSet) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(rest, args[i:]...), nil
		}
		if !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f := local.Lookup(name)
		if f == nil {
			rest = append(rest, args[i])
			continue
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if !hasVal {
				val = "true"
			}
		} else if !hasVal {
			if i+1 >= len(args) {
				return nil, flagError(cmd, fmt.Errorf("flag needs an argument: --%s", name))
			}
			i++
			val = args[i]
		}
		if err := local.Set(name, val); err != nil {
			return nil, flagError(cmd, fmt.Errorf("--%s %q: %v", name, val, err))
		}
	}
	return rest, nil
}

// positionalCommandConfig reads the flags of a command that takes positional arguments:
// its own (local), then the configuration's, wherever they stand among the positionals.
func positionalCommandConfig(cmd string, args []string, local *flag.FlagSet, getenv func(string) string, stderr io.Writer) (*Config, []string, error) {
	args, err := splitLocalFlags(cmd, args, local)
	if err != nil {
		return nil, nil, err
	}
	return parseConfig("hostkey-mcp "+cmd, flagsFirst(args), getenv, stderr)
}

// flagsFirst moves configuration flags (and their values) before the positional
// arguments, so `call eq_show id=1 --toolsets all` works like `call --toolsets all eq_show id=1`.
func flagsFirst(args []string) []string {
	takesValue := map[string]bool{}
	for _, o := range options {
		takesValue[o.Name] = o.Default != "true" && o.Default != "false"
	}
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if takesValue[name] && !hasValue && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, rest...)
}

// inProcessClient connects an MCP client to the app's server in this process: the CLI
// takes exactly the path an assistant's call takes (schema validation, policy, handler).
func (a *app) inProcessClient(ctx context.Context, confirm client.ElicitationHandler) (*client.Client, error) {
	opts := []client.ClientOption{}
	if confirm != nil {
		opts = append(opts, client.WithElicitationHandler(confirm))
	}
	c, err := client.NewInProcessClientWithOptions(a.srv.MCP(), opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	// 2025-11-25 lets the server ask the person at the terminal directly (elicitation/create),
	// also from workflows, which cannot use multi-round-trip retries.
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "hostkey-mcp-cli", Version: "1"}
	if confirm != nil {
		init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	return c, nil
}

func toolsFlags(fs *flag.FlagSet) (asJSON, sizes, markdown *bool) {
	return fs.Bool("json", false, "print the tools as the JSON array a client receives in tools/list"),
		fs.Bool("sizes", false, "measure tools/list (bytes, ~tokens) for the default toolsets, --dynamic-toolsets, each toolset and all"),
		fs.Bool("markdown", false, "with --sizes: print the README's Markdown table")
}

func toolsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	local := newFlagSet("tools")
	asJSON, sizes, markdown := toolsFlags(local)
	args, err := splitLocalFlags("tools", args, local)
	if err != nil {
		return err
	}
	cfg, rest, err := parseConfig("hostkey-mcp tools", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (see 'hostkey-mcp tools --help')", rest[0])
	}
	a, err := newApp(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.buildServer(ctx); err != nil {
		return err
	}
	if *sizes {
		return toolSizes(ctx, a, stdout, *markdown)
	}
	listed, err := a.listedTools(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(listed)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tTOOLSET\tCLASS\tPIN\tDESCRIPTION")
	sort.Slice(listed, func(i, j int) bool { return listed[i].Name < listed[j].Name })
	for _, t := range listed {
		toolset, class, pin := "-", classOf(t), ""
		if act, ok := a.cat.Tool(t.Name); ok {
			toolset, class = act.Toolset, string(act.Class)
			if act.PIN {
				pin = "yes"
			}
		}
		desc := t.Description
		if i := strings.Index(desc, ". "); i > 0 {
			desc = desc[:i+1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, toolset, class, pin, desc)
	}
	raw, _ := json.Marshal(listed)
	fmt.Fprintf(tw, "\n%d tools; tools/list is %d bytes (~%d tokens)\n", len(listed), len(raw), len(raw)/4)
	return tw.Flush()
}

// sizeRow is one line of `tools --sizes`: what a client is sent for one selection.
type sizeRow struct {
	Label string
	Tools int
	Bytes int
}

// measureSizes measures tools/list — what every turn of the model pays for — for the
// default selection, --dynamic-toolsets, each toolset and everything, through a real
// in-process client and the same server options as a served client gets (events_list,
// eq_callback_check and the workflow tools included), so it agrees with tools --json.
func measureSizes(ctx context.Context, a *app) ([]sizeRow, error) {
	type variant struct {
		label   string
		sel     tools.Selection
		dynamic bool
	}
	base := tools.Selection{ReadOnly: a.cfg.ReadOnly, Include: a.cfg.Tools, Exclude: a.cfg.ExcludeTools}
	with := func(ts ...string) tools.Selection { s := base; s.Toolsets = ts; return s }
	vs := []variant{
		{strings.Join(tools.DefaultToolsets, ",") + " (default)", with(tools.DefaultToolsets...), false},
		{"--dynamic-toolsets (start)", with(), true},
	}
	for _, ts := range append(a.cat.Toolsets(), "workflows") {
		vs = append(vs, variant{ts, with(ts), false})
	}
	vs = append(vs, variant{"all", with("all"), false})
	var rows []sizeRow
	for _, v := range vs {
		opts := a.toolsOpts
		opts.Selection, opts.Dynamic, opts.Hooks, opts.Logger = v.sel, v.dynamic, nil, nil
		srv, err := tools.New(opts)
		if err != nil {
			return nil, err
		}
		list, err := listThrough(ctx, srv)
		if err != nil {
			return nil, err
		}
		raw, _ := json.Marshal(list)
		rows = append(rows, sizeRow{v.label, len(list), len(raw)})
	}
	return rows, nil
}

// listThrough lists srv's tools through a fresh in-process client.
func listThrough(ctx context.Context, srv *tools.Server) ([]mcp.Tool, error) {
	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "sizes", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	return list.Tools, nil
}

func toolSizes(ctx context.Context, a *app, w io.Writer, markdown bool) error {
	rows, err := measureSizes(ctx, a)
	if err != nil {
		return err
	}
	if markdown {
		fmt.Fprint(w, sizesMarkdown(rows))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "toolsets\ttools\tbytes\t~tokens\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", r.Label, r.Tools, r.Bytes, r.Bytes/4)
	}
	return tw.Flush()
}

// sizesMarkdown is the README's size table (between its TOOL SIZES markers).
func sizesMarkdown(rows []sizeRow) string {
	var b strings.Builder
	b.WriteString("| toolsets | tools | bytes | ~tokens |\n|---|---:|---:|---:|\n")
	for _, r := range rows {
		label := r.Label
		if strings.HasSuffix(label, "(default)") || label == "all" {
			label = "**" + label + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", label, r.Tools, thousands(r.Bytes), thousands(r.Bytes/4))
	}
	return b.String()
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func classOf(t mcp.Tool) string {
	switch {
	case t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint:
		return "read"
	case t.Annotations.DestructiveHint != nil && *t.Annotations.DestructiveHint:
		return "destructive"
	}
	return "write"
}

func callFlags(fs *flag.FlagSet) (argsJSON *string) {
	return fs.String("args", "", "the arguments as one JSON object (key=value pairs are applied on top)")
}

func callCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	local := newFlagSet("call")
	argsJSONp := callFlags(local)
	cfg, rest, err := positionalCommandConfig("call", args, local, getenv, stderr)
	if err != nil {
		return err
	}
	argsJSON := *argsJSONp
	if len(rest) == 0 {
		return errors.New("call needs a tool name (see 'hostkey-mcp call --help')")
	}
	tool, kvs := rest[0], rest[1:]
	arguments := map[string]any{}
	if argsJSON != "" {
		if err := json.Unmarshal([]byte(argsJSON), &arguments); err != nil {
			return fmt.Errorf("--args: not a JSON object: %v", err)
		}
	}
	a, err := newApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	a.operator = true
	if err := a.buildServer(ctx); err != nil {
		return err
	}
	confirm := &terminalConfirm{in: bufio.NewReader(orEmpty(stdin)), out: stderr}
	c, list, err := a.clientAndTools(ctx, confirm)
	if err != nil {
		return err
	}
	defer c.Close()
	var schema map[string]any
	found := false
	for _, t := range list {
		if t.Name == tool {
			schema, found = schemaOf(t), true
		}
	}
	if !found {
		return fmt.Errorf("no tool %q here. %s", tool, a.srv.UnknownToolHint(tool))
	}
	// key=value pairs are typed by the tool's schema (query=40101 stays a string).
	if err := applyKV(schema, arguments, kvs); err != nil {
		return fmt.Errorf("%s: %v (see 'hostkey-mcp call %s --help')", tool, err, tool)
	}
	// A workflow waits for its end by default (the CLI's default wait, see buildServer);
	// wait_seconds=N returns a handle instead and leaves the job to the next process.
	if _, given := arguments["wait_seconds"]; !given && waitsForJob(tool) {
		next := "the job goes on under the next hostkey-mcp on this data dir"
		if cfg.Ephemeral {
			next = "this process follows the job no further (--ephemeral)"
		}
		fmt.Fprintf(stderr, "%s: waiting for the job to end (progress below; Ctrl-C cancels it). With wait_seconds=N the command returns after N seconds and %s.\n", tool, next)
	}
	// Long workflows report stage progress: show it to the person at the terminal. The
	// client hands notifications over on its own goroutine; once the result is in,
	// stragglers are dropped so nothing is written after the command returned.
	var notifyMu sync.Mutex
	returned := false
	defer func() { notifyMu.Lock(); returned = true; notifyMu.Unlock() }()
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		notifyMu.Lock()
		defer notifyMu.Unlock()
		if returned {
			return
		}
		switch n.Method {
		case "notifications/progress":
			f := n.Params.AdditionalFields
			fmt.Fprintf(stderr, "progress %v/%v: %v\n", f["progress"], f["total"], f["message"])
		case "notifications/message":
			data := n.Params.AdditionalFields["data"]
			if m, ok := data.(map[string]any); ok && m["message"] != nil {
				data = m["message"]
			}
			fmt.Fprintf(stderr, "%v: %v\n", n.Params.AdditionalFields["level"], data)
		}
	})
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = arguments
	req.Params.Meta = &mcp.Meta{ProgressToken: "cli"}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if confirm.closed && res.IsError {
		// The result's text speaks to a model ("the user declined"); the person at the
		// terminal gets the plain reason instead.
		return errNoAnswer
	}
	out := map[string]any{"isError": res.IsError, "content": res.Content}
	if res.StructuredContent != nil {
		out["structuredContent"] = res.StructuredContent
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if res.IsError {
		return errors.New("the tool reported an error (see isError above)")
	}
	return nil
}

// parseScalar reads numbers, booleans and JSON arrays/objects; anything else is a string.
// A number with a leading zero stays a string (a password or PIN like 0123).
func parseScalar(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && (v == "0" || !strings.HasPrefix(strings.TrimPrefix(v, "-"), "0")) {
		return float64(n)
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	if strings.HasPrefix(v, "[") || strings.HasPrefix(v, "{") {
		var x any
		if json.Unmarshal([]byte(v), &x) == nil {
			return x
		}
	}
	return v
}

// terminalConfirm answers form elicitations by asking the person at the terminal. One
// buffered reader serves every question, so a later answer is not swallowed.
type terminalConfirm struct {
	in  *bufio.Reader
	out io.Writer
	// closed is set when stdin ended before an answer: nobody said no, nobody was asked.
	closed bool
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}

func (t *terminalConfirm) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	fmt.Fprintf(t.out, "\n%s\nConfirm? [y/N] ", req.Params.Message)
	line, err := t.in.ReadString('\n')
	res := &mcp.ElicitationResult{}
	answer := strings.TrimSpace(line)
	switch {
	case strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes"):
		res.Action = mcp.ElicitationResponseActionAccept
		res.Content = map[string]any{"confirm": true}
	case err != nil && answer == "":
		// End of input is no answer, not a "no": cancel, and say so in the terminal's words.
		t.closed = true
		fmt.Fprintln(t.out, "\nno answer (stdin closed)")
		res.Action = mcp.ElicitationResponseActionCancel
	default:
		res.Action = mcp.ElicitationResponseActionDecline
	}
	return res, nil
}

// errNoAnswer is what the CLI says when a confirmation got no answer.
var errNoAnswer = errors.New("no answer to the confirmation (stdin closed): nothing was sent. Run the command at a terminal, or pipe the answer: echo y | hostkey-mcp …")

func sandboxAPIFlags(fs *flag.FlagSet) (listen *string, install *time.Duration) {
	return fs.String("listen", "127.0.0.1:8090", "address to serve the invapi simulator on"),
		fs.Duration("install-duration", sim.SandboxInstallDuration, "how long a simulated install takes (5 stages)")
}

func sandboxAPICmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("sandbox-api")
	listen, install := sandboxAPIFlags(fs)
	if err := fs.Parse(args); err != nil {
		return flagError("sandbox-api", err)
	}
	if fs.NArg() > 0 {
		return flagError("sandbox-api", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *install <= 0 {
		return flagError("sandbox-api", fmt.Errorf("--install-duration %s: want a positive duration, e.g. 20s", *install))
	}
	s, err := sim.New(sim.Options{StageDuration: *install / 5})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	key, _ := s.Keys()
	fmt.Fprintf(stderr, "invapi simulator on http://%s/\nuse it with: HOSTKEY_BASE_URL=http://%s/ HOSTKEY_API_KEY=%s hostkey-mcp\n", ln.Addr(), ln.Addr(), key)
	return s.Serve(ctx, ln, 1)
}

// listTools lists the tools a configuration selects, through an in-process client.
func listTools(ctx context.Context, cfg *Config) ([]mcp.Tool, error) {
	a, err := newApp(ctx, cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if err := a.buildServer(ctx); err != nil {
		return nil, err
	}
	return a.listedTools(ctx)
}

// listedTools is what tools/list answers, asked through an in-process client.
func (a *app) listedTools(ctx context.Context) ([]mcp.Tool, error) {
	c, listed, err := a.clientAndTools(ctx, nil)
	if err != nil {
		return nil, err
	}
	c.Close()
	return listed, nil
}

// clientAndTools connects an in-process client and lists its tools; the caller closes it.
func (a *app) clientAndTools(ctx context.Context, confirm client.ElicitationHandler) (*client.Client, []mcp.Tool, error) {
	c, err := a.inProcessClient(ctx, confirm)
	if err != nil {
		return nil, nil, err
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, list.Tools, nil
}

func suggestText(name string, names []string) string {
	if near := tools.Suggest(name, names); len(near) > 0 {
		return " Did you mean " + strings.Join(near, " or ") + "?"
	}
	return ""
}

// waitsForJob: the workflow tools that follow a job (their calls wait for its end).
func waitsForJob(tool string) bool {
	switch tool {
	case workflows.OrderTool, workflows.ReinstallTool, workflows.ReinstallPXETool, workflows.WatchTool:
		return true
	}
	return false
}
