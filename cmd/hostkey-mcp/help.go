package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

// command is one subcommand as `hostkey-mcp <command> --help` shows it. Its own flags
// come from the same FlagSet the command parses with (flags), so a flag added there
// shows up in the help without touching this table.
type command struct {
	name     string
	args     string // the synopsis after the command name
	summary  string
	details  string
	config   bool                   // takes the configuration flags of `hostkey-mcp --help`
	flags    func(fs *flag.FlagSet) // declares the command's own flags
	examples []string
}

var commands = []command{
	{
		name: "serve", args: "[flags]", config: true,
		summary: "Serve MCP over stdio (the default command), or streamable HTTP with --http.",
		examples: []string{
			"hostkey-mcp --sandbox                              # stdio, against the built-in simulator",
			"HOSTKEY_HTTP_TOKEN=… hostkey-mcp --http 127.0.0.1:8080 # streamable HTTP at /mcp",
		},
	},
	{
		name: "tools", args: "[--json | --sizes] [flags]", config: true, flags: func(fs *flag.FlagSet) { toolsFlags(fs) },
		summary: "List the tools the flags select, as a client receives them in tools/list.",
		examples: []string{
			"hostkey-mcp tools --toolsets servers,workflows",
			"hostkey-mcp tools --sizes            # bytes and ~tokens per toolset",
		},
	},
	{
		name: "call", args: "<tool> [key=value ...] [--args JSON] [flags]", config: true, flags: func(fs *flag.FlagSet) { callFlags(fs) },
		summary: "Call one tool like an assistant would (same schema check, policy and confirmation); prints the result as JSON.",
		details: `key=value arguments are typed by the tool's input schema: integer, number and boolean
fields are converted (id=40101, force=true), a string field stays a string (query=40101),
array fields take a,b or repeated keys (ids=1,2 or ids=1 ids=2), and nested fields take
dotted keys (params.location=NL). Objects or anything else: --args '{"key": …}'
(key=value pairs are applied on top). Destructive calls ask "Confirm? [y/N]" on the
terminal. 'hostkey-mcp call <tool> --help' lists the tool's parameters.`,
		examples: []string{
			"hostkey-mcp call eq_show id=40101",
			"hostkey-mcp call eq_unified_server_search query=40101",
			`hostkey-mcp call eq_reboot --args '{"id":40101}'`,
		},
	},
	{
		name: "sandbox-api", args: "[--listen ADDR] [--install-duration D]", flags: func(fs *flag.FlagSet) { sandboxAPIFlags(fs) },
		summary: "Run the invapi simulator alone (for other invapi clients and demos); prints its URL and API key.",
		examples: []string{
			"hostkey-mcp sandbox-api --listen 127.0.0.1:8090",
			"hostkey-mcp sandbox-api --install-duration 2m",
		},
	},
	{
		name: "doctor", args: "[--healthz] [flags]", config: true, flags: func(fs *flag.FlagSet) { doctorFlags(fs) },
		summary: "Check configuration, the API key, the PIN source, toolsets and webhooks; says what it verified and what it could not. Exit 1 when a check fails.",
		examples: []string{
			"hostkey-mcp doctor",
			"hostkey-mcp doctor --healthz --http 0.0.0.0:8080   # the container HEALTHCHECK",
		},
	},
	{
		name: "login-alerts", args: "[API_KEY_ID] [--yes] [flags]", config: true, flags: func(fs *flag.FlagSet) { loginAlertsFlags(fs) },
		summary: "Point an API key's login notifications at --public-url (through the tools and the policy: you confirm, it is audited). Without an id: check the endpoint.",
		examples: []string{
			"hostkey-mcp login-alerts --public-url https://hooks.example.com/hostkey --webhook-listen 127.0.0.1:8787",
			"hostkey-mcp login-alerts 501 --public-url https://hooks.example.com/hostkey --webhook-listen 127.0.0.1:8787",
		},
	},
	{
		name: "audit-verify", args: "[flags] FILE", flags: func(fs *flag.FlagSet) { auditVerifyFlags(fs, &audit.Anchor{}) },
		summary: "Verify an audit log's hash chain; names the first edited, removed or reordered line.",
		examples: []string{
			"hostkey-mcp audit-verify /var/log/hostkey-mcp/audit.jsonl",
			"hostkey-mcp audit-verify audit.jsonl && echo intact",
		},
	},
	{
		name: "audit-export", args: "[flags] [FILE]", config: true,
		summary: "Write the audit chain every process on the data dir appends to (the shared store) as JSON Lines, for audit-verify.",
		examples: []string{
			"hostkey-mcp audit-export audit.jsonl && hostkey-mcp audit-verify audit.jsonl",
			"hostkey-mcp audit-export --data-dir /var/lib/hostkey-mcp > audit.jsonl",
		},
	},
	{
		name: "version", args: "", summary: "Print the version and commit.",
		examples: []string{"hostkey-mcp version", "hostkey-mcp --version"},
	},
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// newFlagSet is the FlagSet of a subcommand: errors are returned, never printed (run
// prints them once, with a pointer to the command's --help).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// wantsHelp reports whether args ask for help (before a "--" terminator).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// commandHelp prints a subcommand's short help: usage, its own flags, examples.
func commandHelp(w io.Writer, c command) {
	name := "hostkey-mcp " + c.name
	if c.name == "serve" {
		name = "hostkey-mcp [serve]"
	}
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", name, c.args, c.summary)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", c.details)
	}
	if c.flags != nil {
		fs := newFlagSet(c.name)
		c.flags(fs)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.VisitAll(func(f *flag.Flag) {
				def := ""
				if f.DefValue != "" && f.DefValue != "false" {
					def = " (default " + f.DefValue + ")"
				}
				fmt.Fprintf(w, "  --%s\n      %s%s\n", f.Name, f.Usage, def)
			})
		}
	}
	if c.config {
		if c.name == "serve" {
			fmt.Fprintln(w)
			configFlagsHelp(w)
		} else {
			fmt.Fprintln(w, "\nConfiguration flags (described in 'hostkey-mcp --help'; each also has a HOSTKEY_* variable):")
			for _, g := range optionGroups() {
				var names []string
				for _, o := range options {
					if o.Group == g {
						names = append(names, "--"+o.Name)
					}
				}
				fmt.Fprintf(w, "  %-10s %s\n", g+":", wrap(strings.Join(names, " "), 66, "             "))
			}
		}
	}
	fmt.Fprintln(w, "\nExamples:")
	for _, e := range c.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// optionGroups returns the option groups in order of first appearance (a group may
// recur further down the table; it is shown once).
func optionGroups() []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range options {
		if !seen[o.Group] {
			seen[o.Group] = true
			out = append(out, o.Group)
		}
	}
	return out
}

// wrap breaks s into lines of at most width characters, indenting continuation lines.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		if i > 0 && n+1+len(word) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// flagError turns a flag parse error into one line pointing at the command's help.
func flagError(cmd string, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%v (see 'hostkey-mcp %s --help')", err, cmd)
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}
