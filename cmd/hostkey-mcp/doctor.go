package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/transport"
	"github.com/hostkey/hostkey-mcp/webhook"
)

// report collects doctor's findings: every failed check comes with its remedy.
type report struct {
	w      io.Writer
	failed int
}

func (r *report) ok(format string, args ...any) { fmt.Fprintf(r.w, "  ok    "+format+"\n", args...) }
func (r *report) info(format string, args ...any) {
	fmt.Fprintf(r.w, "  info  "+format+"\n", args...)
}
func (r *report) fail(remedy, format string, args ...any) {
	r.failed++
	fmt.Fprintf(r.w, "  FAIL  "+format+"\n        → %s\n", append(args, remedy)...)
}

// doctorCmd checks configuration and connectivity and prints remedies; ok=false → exit 1.
func doctorFlags(fs *flag.FlagSet) (healthz *bool) {
	return fs.Bool("healthz", false, "only probe the running server's /healthz (--http, from the same flags and HOSTKEY_HTTP); exit 1 if it does not answer")
}

func doctorCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (bool, error) {
	local := newFlagSet("doctor")
	healthzp := doctorFlags(local)
	args, err := splitLocalFlags("doctor", args, local)
	if err != nil {
		return false, err
	}
	healthz := *healthzp
	cfg, rest, err := parseConfig("hostkey-mcp doctor", args, getenv, stderr)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q (see 'hostkey-mcp doctor --help')", rest[0])
	}
	if err != nil {
		fmt.Fprintf(stdout, "  FAIL  configuration: %v\n        → fix the flag or variable named above (hostkey-mcp --help)\n", err)
		return false, nil
	}
	if healthz {
		return healthCheck(ctx, cfg, stdout), nil
	}
	r := &report{w: stdout}
	fmt.Fprintln(stdout, "hostkey-mcp doctor")

	fmt.Fprintln(stdout, "configuration")
	r.ok("flags and environment parse")
	if cfg.HTTP != "" && !transport.IsLoopbackAddr(cfg.HTTP) && cfg.HTTPToken == "" {
		r.fail("set HOSTKEY_HTTP_TOKEN (or --http-token-file) or bind --http to 127.0.0.1", "--http %s is reachable from other machines without a bearer token", cfg.HTTP)
	}
	if cfg.Confirm == "off" {
		r.fail("use --confirm elicit (default) or token; off lets the model run destructive calls unconfirmed", "--confirm off")
	} else {
		r.ok("confirmation mode: %s", cfg.Confirm)
	}

	a, err := newApp(ctx, cfg, io.Discard)
	if err != nil {
		r.fail("check HOSTKEY_BASE_URL and the flags above", "start: %v", err)
		return false, nil
	}
	defer a.Close()

	fmt.Fprintln(stdout, "invapi")
	if a.sandbox != nil {
		r.info("SANDBOX: the built-in simulator (set HOSTKEY_API_KEY to use your account)")
	} else {
		r.ok("endpoint %s", cfg.BaseURL)
	}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sess, err := a.client.Session(lctx)
	if err != nil {
		r.fail("check HOSTKEY_API_KEY, the key's IP allowlist (api_keys_view) and that invapi is reachable", "login: %v", err)
		return r.failed == 0, nil
	}
	r.ok("logged in: role %q, %d servers, session valid until %s", sess.Role, len(sess.Servers), sess.Expires.Format(time.RFC3339))
	if len(sess.Permissions) > 0 {
		r.ok("token permissions: %d actions", len(sess.Permissions))
	} else {
		r.info("the login reply lists no permissions: every selected tool is shown")
	}

	fmt.Fprintln(stdout, "PIN")
	switch {
	case cfg.PIN != "" || cfg.PINFile != "":
		// doctor reads the PIN and checks its form, nothing more: invapi has no way to test
		// a PIN without using it, and a wrong one counts toward its lock-out.
		if _, err := policy.LoadPIN(cfg.PIN, cfg.PINFile); err != nil {
			r.fail("fix HOSTKEY_PIN or --pin-file (a file readable only by you: chmod 600)", "%v", err)
		} else if cfg.PINFile != "" {
			r.ok("PIN read from %s (mode 0600, well-formed)", cfg.PINFile)
			r.info("the PIN itself is NOT verified: invapi can only check it by using it; a wrong PIN shows at the first PIN action (then PIN calls pause 15 minutes)")
		} else {
			r.ok("PIN read from HOSTKEY_PIN (environment or config file, well-formed)")
			r.info("the PIN itself is NOT verified: invapi can only check it by using it; a wrong PIN shows at the first PIN action (then PIN calls pause 15 minutes)")
		}
	case a.sandbox != nil:
		r.ok("the sandbox supplies its own PIN")
	default:
		r.info("no PIN configured: a human enters it on a one-time local page when a PIN action is confirmed")
	}
	if r.failed > 0 {
		fmt.Fprintf(stdout, "%d check(s) failed\n", r.failed)
		return false, nil
	}

	fmt.Fprintln(stdout, "state store")
	if !storeLine(ctx, r, a) {
		fmt.Fprintf(stdout, "%d check(s) failed\n", r.failed)
		return false, nil
	}

	fmt.Fprintln(stdout, "toolsets")
	if err := a.buildServer(ctx); err != nil {
		r.fail("fix the flag or file named in the message", "%v", err)
		return false, nil
	}
	if err := a.srv.RefreshPermissions(lctx); err != nil {
		r.fail("see the login check", "permissions: %v", err)
	}
	for _, ts := range tools.Toolsets(a.cat, a.selection()) {
		usable := 0
		for _, name := range ts.Tools {
			act, _ := a.cat.Tool(name)
			if a.srv.Permitted(act.Module, act.Action) {
				usable++
			}
		}
		state := "available"
		if ts.Enabled {
			state = "ENABLED"
		}
		r.info("%-10s %-9s %2d/%2d tools usable with this token", ts.Name, state, usable, len(ts.Tools))
	}

	fmt.Fprintln(stdout, "webhooks")
	if cfg.WebhookListen != "" {
		listenerLine(ctx, r, cfg.WebhookListen, a.receiver.Identity())
	}
	if cfg.PublicURL == "" {
		r.info("no --public-url: install progress is followed by polling (set --public-url and --webhook-listen for callbacks)")
	} else {
		hc := &http.Client{Timeout: 10 * time.Second}
		u := strings.TrimRight(cfg.PublicURL, "/") + "/healthz"
		resp, err := hc.Get(u)
		if err != nil || resp.StatusCode != http.StatusOK {
			r.fail("make sure hostkey-mcp is serving --webhook-listen and the proxy/tunnel forwards to it", "public URL %s does not answer /healthz (%v)", cfg.PublicURL, errOrStatus(err, resp))
		} else {
			r.ok("public URL %s answers", cfg.PublicURL)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}

	if len(cfg.Notify) > 0 {
		fmt.Fprintln(stdout, "chat-ops deliveries")
		if !doctorNotify(ctx, a, stdout) {
			r.failed++
		}
	}

	fmt.Fprintln(stdout, "not checked by doctor")
	r.info("destructive calls and their confirmation (doctor sends nothing that changes state)")
	if a.sandbox == nil {
		r.info("the PIN's value, and the API key's IP allowlist for hosts other than this one")
	}
	if r.failed == 0 {
		fmt.Fprintln(stdout, "all checks passed")
	} else {
		fmt.Fprintf(stdout, "%d check(s) failed\n", r.failed)
	}
	return r.failed == 0, nil
}

// storeLine opens the shared state store and says which it is: the engine, and for
// PostgreSQL host, database and user (never the password).
func storeLine(ctx context.Context, r *report, a *app) bool {
	st, err := a.sharedState(ctx)
	if err != nil {
		r.fail("start PostgreSQL or fix --store / HOSTKEY_STORE (the password goes in HOSTKEY_STORE, PGPASSWORD or ~/.pgpass)", "%v", err)
		return false
	}
	switch {
	case a.cfg.Store != "" && st.Engine() == "postgres":
		r.ok("engine postgres at %s: reachable (replica mode: every replica on this store shares events, approvals, rate limits, jobs and the audit chain)", storeDisplay(a.cfg.Store))
		if a.cfg.PIN == "" && a.cfg.PINFile == "" && a.sandbox == nil {
			r.info("replica mode without HOSTKEY_PIN or --pin-file: PIN actions are refused (a PIN typed on one replica's page cannot reach the others); set HOSTKEY_PIN on every replica to use them")
		}
	case st.Engine() == "sqlite-memory":
		r.info("engine sqlite in this process's memory (--ephemeral): lost at exit")
	default:
		dir, _ := a.dataDir()
		if a.cfg.Store != "" {
			dir = a.cfg.Store
		}
		r.ok("engine %s in %s", st.Engine(), dir)
	}
	return true
}

// listenerLine says who holds --webhook-listen: one process of a store at a time.
func listenerLine(ctx context.Context, r *report, addr, identity string) {
	h, err := webhook.ProbeHolder(ctx, addr)
	switch {
	case err != nil:
		if ln, lerr := net.Listen("tcp", addr); lerr == nil {
			ln.Close()
			r.info("webhook listener %s: free (no hostkey-mcp serving holds it now; the next server started takes it)", addr)
		} else {
			r.fail("stop the program on that address or choose another --webhook-listen", "webhook listener %s: in use by a program that does not answer HTTP (%v)", addr, err)
		}
	case h.Identity == identity:
		r.ok("webhook listener %s: held by hostkey-mcp pid %d on this data dir (the others stand by and take it over when it goes)", addr, h.PID)
	case h.Identity != "":
		r.fail("use the same --data-dir as that process, or another --webhook-listen", "webhook listener %s: held by a hostkey-mcp (pid %d) on another data dir or store", addr, h.PID)
	default:
		r.fail("stop the program on that address or choose another --webhook-listen", "webhook listener %s: in use by a program that is not hostkey-mcp", addr)
	}
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// healthCheck is the Docker HEALTHCHECK. It probes the HTTP listener of the flags and
// environment given to it, else the one the running server recorded in its data
// directory: the container's HEALTHCHECK does not see the arguments given to the server
// (docker run … hostkey-mcp --http 0.0.0.0:8080), only the image's environment.
func healthCheck(ctx context.Context, cfg *Config, w io.Writer) bool {
	addr := cfg.HTTP
	if addr == "" {
		b, err := os.ReadFile(healthFile(cfg))
		if err != nil {
			fmt.Fprintf(w, "stdio mode (no --http, HOSTKEY_HTTP or %s): nothing to probe\n", healthFile(cfg))
			return true
		}
		addr = strings.TrimSpace(string(b))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(w, "unhealthy: --http %q: %v\n", addr, err)
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(w, "unhealthy:", err)
		return false
	}
	resp.Body.Close()
	fmt.Fprintln(w, "healthz:", resp.Status)
	return resp.StatusCode == http.StatusOK
}

// healthFile is where a server serving --http records its address for healthCheck: in
// --data-dir (or the user's state directory), which the image sets with HOSTKEY_DATA_DIR.
func healthFile(cfg *Config) string {
	dir := cfg.DataDir
	if dir == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(base, "hostkey-mcp")
	}
	return filepath.Join(dir, "http-listen.addr")
}
