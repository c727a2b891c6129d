// Command hostkey-mcp serves the Hostkey invapi API to MCP clients (Claude Desktop,
// VS Code, Cursor, chat-ops bots) with a policy layer in between. stdout belongs to the
// MCP stdio transport: every log line goes to stderr.
// It is the wiring: it may import every package of the module, and nothing imports it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hostkey/hostkey-mcp/invapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with pipes and a fake environment.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" {
		// `hostkey-mcp help call` is `hostkey-mcp call --help`.
		if len(args) == 0 {
			usage(stdout)
			return 0
		}
		cmd, args = args[0], []string{"--help"}
	}
	if c, ok := findCommand(cmd); ok && wantsHelp(args) {
		if cmd == "serve" {
			usage(stdout)
		} else if cmd == "call" {
			callHelp(ctx, args, stdout, getenv)
		} else {
			commandHelp(stdout, c)
		}
		return 0
	}
	if cmd == "version" || (len(args) > 0 && (args[0] == "--version" || args[0] == "-version")) {
		fmt.Fprintf(stdout, "hostkey-mcp %s (commit %s)\n", invapi.Version, commit)
		return 0
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, args, stdin, stdout, stderr, getenv)
	case "tools":
		err = toolsCmd(ctx, args, stdout, stderr, getenv)
	case "call":
		err = callCmd(ctx, args, stdin, stdout, stderr, getenv)
	case "sandbox-api":
		err = sandboxAPICmd(ctx, args, stderr)
	case "doctor":
		var ok bool
		ok, err = doctorCmd(ctx, args, stdout, stderr, getenv)
		if err == nil && !ok {
			return 1
		}
	case "login-alerts":
		err = loginAlertsCmd(ctx, args, stdin, stdout, stderr, getenv)
	case "audit-verify":
		err = auditVerifyCmd(args, stdout)
	case "audit-export":
		err = auditExportCmd(ctx, args, stdout, stderr, getenv)
	default:
		fmt.Fprintf(stderr, "hostkey-mcp: unknown command %q (commands: %s; see 'hostkey-mcp --help')\n", cmd, commandNames())
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hostkey-mcp:", err)
		return 1
	}
	return 0
}

// commit is set with -ldflags by the Makefile.
var commit = "unknown"
