package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/outbound"
)

// Config is every setting of hostkey-mcp. Each one can come from a flag, an environment
// variable or the config file (in that order of precedence); the option table below is
// the single definition that --help and the README's configuration reference are made
// from.
type Config struct {
	APIKey     string
	APIKeyFile string
	BaseURL    string
	Sandbox    bool
	ConfigFile string
	// SandboxInstall is how long a sandbox install takes (5 stages).
	SandboxInstall time.Duration

	HTTP           string
	HTTPToken      string // HOSTKEY_HTTP_TOKEN or --http-token-file: a secret, never a flag
	HTTPTokenFile  string
	AllowedOrigins []string
	HTTPMaxBody    int64

	Toolsets     []string
	Tools        []string
	ExcludeTools []string
	ReadOnly     bool
	Dynamic      bool
	AuthTools    bool

	Servers    []int64
	ServerTags []string

	Confirm           policy.ConfirmMode
	ConfirmWrites     bool
	ApprovalListen    string
	ApproverTokenFile string
	ApproverToken     string
	PIN               string // HOSTKEY_PIN: environment or config file only
	PINFile           string
	PolicyFile        string
	DryRun            bool
	AuditLog          string

	RateGlobal      policy.Limit
	RateDestructive policy.Limit
	RateServer      policy.Limit
	RateSession     policy.Limit
	MaxPending      int

	WebhookListen  string
	PublicURL      string
	DataDir        string
	Store          string // --store / HOSTKEY_STORE: "" is SQLite in the data dir
	JobLease       time.Duration
	Ephemeral      bool
	Retention      time.Duration
	TrustedProxies []netip.Prefix
	CheckSourceIP  bool

	NotifyURLs         string // --notify-url, repeatable: space-separated
	NotifySecret       string // HOSTKEY_NOTIFY_SECRET or --notify-secret-file: never a flag
	NotifySecretFile   string
	NotifyAllowPrivate bool
	NotifyMaxAge       time.Duration
	Notify             []outbound.Destination // parsed from the above

	LogFormat string
	LogLevel  zapcore.Level
	Timeout   time.Duration

	// set names the options given by flag, environment or config file (not defaults).
	set map[string]bool
}

// option is one setting: its flag, its environment variable and its help text.
type option struct {
	Name, Env, Default, Help string
	Group                    string
	bind                     func(fs *flag.FlagSet, c *Config, o option)
}

func str(field func(*Config) *string) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) { fs.StringVar(field(c), o.Name, o.Default, o.Help) }
}

func boolean(field func(*Config) *bool) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) {
		def, _ := strconv.ParseBool(o.Default)
		fs.BoolVar(field(c), o.Name, def, o.Help)
	}
}

func duration(field func(*Config) *time.Duration) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) {
		def, _ := time.ParseDuration(o.Default)
		fs.DurationVar(field(c), o.Name, def, o.Help)
	}
}

// byteSize binds a size in bytes written as 1048576, 512KiB or 1MiB.
func byteSize(field func(*Config) *int64) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) {
		v := (*sizeValue)(field(c))
		_ = v.Set(o.Default)
		fs.Var(v, o.Name, o.Help)
	}
}

// multi binds a repeatable flag: each use appends (space-separated).
func multi(field func(*Config) *string) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) { fs.Var((*multiValue)(field(c)), o.Name, o.Help) }
}

type multiValue string

func (v *multiValue) String() string { return string(*v) }

func (v *multiValue) Set(s string) error {
	*v = multiValue(strings.TrimSpace(string(*v) + " " + s))
	return nil
}

type sizeValue int64

func (v *sizeValue) String() string { return strconv.FormatInt(int64(*v), 10) }

func (v *sizeValue) Set(s string) error {
	num, mul := strings.TrimSpace(s), int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mul = n, u.mul
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mul {
		return fmt.Errorf("want a positive size such as 1048576, 512KiB or 1MiB")
	}
	*v = sizeValue(n * mul)
	return nil
}

// options is the configuration reference. Keep help texts to one line each.
var options = []option{
	{Group: "invapi", Name: "api-key-file", Env: "HOSTKEY_API_KEY_FILE", Help: "file holding the invapi API key (the key itself is read only from HOSTKEY_API_KEY or this file, never a flag)", bind: str(func(c *Config) *string { return &c.APIKeyFile })},
	{Group: "invapi", Name: "base-url", Env: "HOSTKEY_BASE_URL", Default: "https://invapi.hostkey.com/", Help: "invapi endpoint (other brands and regions have their own)", bind: str(func(c *Config) *string { return &c.BaseURL })},
	{Group: "invapi", Name: "sandbox", Env: "HOSTKEY_SANDBOX", Default: "false", Help: "serve against the built-in invapi simulator (the default when no API key is set)", bind: boolean(func(c *Config) *bool { return &c.Sandbox })},
	{Group: "invapi", Name: "sandbox-install-duration", Env: "HOSTKEY_SANDBOX_INSTALL_DURATION", Default: "20s", Help: "how long an install takes in the sandbox (5 stages; the workflow tools wait 50s by default)", bind: duration(func(c *Config) *time.Duration { return &c.SandboxInstall })},
	{Group: "invapi", Name: "timeout", Env: "HOSTKEY_TIMEOUT", Default: "60s", Help: "timeout of one invapi request", bind: duration(func(c *Config) *time.Duration { return &c.Timeout })},
	{Group: "general", Name: "config", Env: "HOSTKEY_CONFIG", Help: "optional config file of KEY=value lines using the environment variable names", bind: str(func(c *Config) *string { return &c.ConfigFile })},

	{Group: "transport", Name: "http", Env: "HOSTKEY_HTTP", Help: "serve streamable HTTP on this address (e.g. 127.0.0.1:8080) instead of stdio", bind: str(func(c *Config) *string { return &c.HTTP })},
	{Group: "transport", Name: "http-token-file", Env: "HOSTKEY_HTTP_TOKEN_FILE", Help: "file with the bearer token HTTP clients must send (or set HOSTKEY_HTTP_TOKEN); required when --http is not loopback", bind: str(func(c *Config) *string { return &c.HTTPTokenFile })},
	{Group: "transport", Name: "http-max-body", Env: "HOSTKEY_HTTP_MAX_BODY", Default: "1MiB", Help: "largest request body --http accepts on /mcp (e.g. 512KiB); larger ones get 413", bind: byteSize(func(c *Config) *int64 { return &c.HTTPMaxBody })},
	{Group: "transport", Name: "allowed-origins", Env: "HOSTKEY_ALLOWED_ORIGINS", Help: "comma-separated browser origins allowed to call --http (loopback origins always are)", bind: parsed(func(c *Config) *[]string { return &c.AllowedOrigins }, parseList)},

	{Group: "scope", Name: "toolsets", Env: "HOSTKEY_TOOLSETS", Default: "servers,power,ip", Help: "toolsets or modules to expose, comma-separated; 'all' for everything", bind: parsed(func(c *Config) *[]string { return &c.Toolsets }, parseList)},
	{Group: "scope", Name: "tools", Env: "HOSTKEY_TOOLS", Help: "extra tools to expose by name, whatever their toolset", bind: parsed(func(c *Config) *[]string { return &c.Tools }, parseList)},
	{Group: "scope", Name: "exclude-tools", Env: "HOSTKEY_EXCLUDE_TOOLS", Help: "tools never to expose, comma-separated", bind: parsed(func(c *Config) *[]string { return &c.ExcludeTools }, parseList)},
	{Group: "scope", Name: "read-only", Env: "HOSTKEY_READ_ONLY", Default: "false", Help: "expose and run read tools only", bind: boolean(func(c *Config) *bool { return &c.ReadOnly })},
	{Group: "scope", Name: "dynamic-toolsets", Env: "HOSTKEY_DYNAMIC_TOOLSETS", Default: "false", Help: "add tools_search and toolsets_enable so the model loads toolsets on demand", bind: boolean(func(c *Config) *bool { return &c.Dynamic })},
	{Group: "scope", Name: "auth-tools", Env: "HOSTKEY_AUTH_TOOLS", Default: "false", Help: "expose auth_login, auth_logout and auth_whmcslogin (hostkey-mcp manages the session; tokens in their results are redacted anyway)", bind: boolean(func(c *Config) *bool { return &c.AuthTools })},
	{Group: "scope", Name: "servers", Env: "HOSTKEY_SERVERS", Help: "server IDs the assistant may touch, comma-separated (empty: all of the token's)", bind: parsed(func(c *Config) *[]int64 { return &c.Servers }, parseServerIDs)},
	{Group: "scope", Name: "server-tags", Env: "HOSTKEY_SERVER_TAGS", Help: "also allow servers carrying one of these invapi tags", bind: parsed(func(c *Config) *[]string { return &c.ServerTags }, parseList)},

	{Group: "policy", Name: "confirm", Env: "HOSTKEY_CONFIRM", Default: "elicit", Help: "how a human confirms destructive calls: elicit, token (chat-ops bots) or off (loudly logged)", bind: parsed(func(c *Config) *policy.ConfirmMode { return &c.Confirm }, parseConfirm)},
	{Group: "policy", Name: "confirm-writes", Env: "HOSTKEY_CONFIRM_WRITES", Default: "false", Help: "also confirm write (non-destructive) calls", bind: boolean(func(c *Config) *bool { return &c.ConfirmWrites })},
	{Group: "policy", Name: "approval-listen", Env: "HOSTKEY_APPROVAL_LISTEN", Default: "127.0.0.1:0", Help: "loopback address of the one-time approval and PIN pages (port 0: any free port)", bind: str(func(c *Config) *string { return &c.ApprovalListen })},
	{Group: "policy", Name: "approver-token-file", Env: "HOSTKEY_APPROVER_TOKEN_FILE", Help: "file with the bearer credential chat-ops bots use to approve calls (--confirm token); or set HOSTKEY_APPROVER_TOKEN", bind: str(func(c *Config) *string { return &c.ApproverTokenFile })},
	{Group: "policy", Name: "pin-file", Env: "HOSTKEY_PIN_FILE", Help: "file (mode 0600) holding the account PIN; or set HOSTKEY_PIN; else the PIN is asked on a local page", bind: str(func(c *Config) *string { return &c.PINFile })},
	{Group: "policy", Name: "policy-file", Env: "HOSTKEY_POLICY_FILE", Help: "JSON file reclassifying tools, e.g. {\"classes\":{\"eq_reboot\":\"write\"}}", bind: str(func(c *Config) *string { return &c.PolicyFile })},
	{Group: "policy", Name: "dry-run", Env: "HOSTKEY_DRY_RUN", Default: "false", Help: "answer write and destructive calls with the request that would be sent; send nothing", bind: boolean(func(c *Config) *bool { return &c.DryRun })},
	{Group: "policy", Name: "audit-log", Env: "HOSTKEY_AUDIT_LOG", Help: "append-only, hash-chained JSON Lines audit file", bind: str(func(c *Config) *string { return &c.AuditLog })},
	{Group: "policy", Name: "rate-global", Env: "HOSTKEY_RATE_GLOBAL", Default: "5:10", Help: "requests per second:burst toward invapi", bind: parsed(func(c *Config) *policy.Limit { return &c.RateGlobal }, parseLimit)},
	{Group: "policy", Name: "rate-destructive", Env: "HOSTKEY_RATE_DESTRUCTIVE", Default: "0.1:3", Help: "destructive calls per second:burst", bind: parsed(func(c *Config) *policy.Limit { return &c.RateDestructive }, parseLimit)},
	{Group: "policy", Name: "rate-server", Env: "HOSTKEY_RATE_SERVER", Default: "0.0167:1", Help: "destructive calls per server per second:burst (one a minute)", bind: parsed(func(c *Config) *policy.Limit { return &c.RateServer }, parseLimit)},
	{Group: "policy", Name: "rate-session", Env: "HOSTKEY_RATE_SESSION", Default: "2:20", Help: "calls per MCP session per second:burst", bind: parsed(func(c *Config) *policy.Limit { return &c.RateSession }, parseLimit)},
	{Group: "policy", Name: "max-pending", Env: "HOSTKEY_MAX_PENDING", Default: "3", Help: "confirmations that may wait for the user at once per MCP session (0 = no limit)", bind: parsed(func(c *Config) *int { return &c.MaxPending }, parseMaxPending)},

	{Group: "webhook", Name: "webhook-listen", Env: "HOSTKEY_WEBHOOK_LISTEN", Help: "serve install callbacks and login alerts on this address (e.g. 127.0.0.1:8787)", bind: str(func(c *Config) *string { return &c.WebhookListen })},
	{Group: "webhook", Name: "public-url", Env: "HOSTKEY_PUBLIC_URL", Help: "URL at which invapi and fresh servers reach the webhook listener", bind: str(func(c *Config) *string { return &c.PublicURL })},
	{Group: "webhook", Name: "data-dir", Env: "HOSTKEY_DATA_DIR", Help: "directory of the durable event store (default: the user's state directory)", bind: str(func(c *Config) *string { return &c.DataDir })},
	{Group: "webhook", Name: "store", Env: "HOSTKEY_STORE", Help: "shared state store: a postgres:// URL for replicas behind a load balancer (a password only in HOSTKEY_STORE, PGPASSWORD or ~/.pgpass, never in the flag); default SQLite in --data-dir", bind: str(func(c *Config) *string { return &c.Store })},
	{Group: "webhook", Name: "job-lease", Env: "HOSTKEY_JOB_LEASE", Default: "30s", Help: "how long a workflow job stays with its process unrenewed: another process or replica takes it over after that (at least 2s)", bind: duration(func(c *Config) *time.Duration { return &c.JobLease })},
	{Group: "webhook", Name: "ephemeral", Env: "HOSTKEY_EPHEMERAL", Default: "false", Help: "keep events, jobs and secrets in this process's memory only (no data dir; lost at exit)", bind: boolean(func(c *Config) *bool { return &c.Ephemeral })},
	{Group: "webhook", Name: "events-retention", Env: "HOSTKEY_EVENTS_RETENTION", Default: "720h", Help: "how long stored events and finished install jobs are kept (0 = forever; at least 24h)", bind: duration(func(c *Config) *time.Duration { return &c.Retention })},
	{Group: "webhook", Name: "trusted-proxies", Env: "HOSTKEY_TRUSTED_PROXIES", Help: "CIDRs of reverse proxies whose X-Forwarded-For is believed", bind: parsed(func(c *Config) *[]netip.Prefix { return &c.TrustedProxies }, parseCIDRs)},
	{Group: "webhook", Name: "check-source-ip", Env: "HOSTKEY_CHECK_SOURCE_IP", Default: "false", Help: "accept an install callback only from one of the server's own IPs", bind: boolean(func(c *Config) *bool { return &c.CheckSourceIP })},

	{Group: "chat-ops", Name: "notify-url", Env: "HOSTKEY_NOTIFY_URL", Help: "deliver events and approval requests to this webhook (repeatable; space-separated in the environment); settings in its #fragment: format=standard|slack, types=, servers=, toolsets=, secret-env=, secret-file=", bind: multi(func(c *Config) *string { return &c.NotifyURLs })},
	{Group: "chat-ops", Name: "notify-secret-file", Env: "HOSTKEY_NOTIFY_SECRET_FILE", Help: "file with the signing secret of --notify-url deliveries (or set HOSTKEY_NOTIFY_SECRET)", bind: str(func(c *Config) *string { return &c.NotifySecretFile })},
	{Group: "chat-ops", Name: "notify-allow-private", Env: "HOSTKEY_NOTIFY_ALLOW_PRIVATE", Default: "false", Help: "allow --notify-url destinations (and redirects) on loopback, private and link-local addresses", bind: boolean(func(c *Config) *bool { return &c.NotifyAllowPrivate })},
	{Group: "chat-ops", Name: "notify-max-age", Env: "HOSTKEY_NOTIFY_MAX_AGE", Default: "24h", Help: "how long a delivery is retried before it becomes a dead letter", bind: duration(func(c *Config) *time.Duration { return &c.NotifyMaxAge })},

	{Group: "general", Name: "log-format", Env: "HOSTKEY_LOG_FORMAT", Default: "console", Help: "log format on stderr: console or json", bind: parsed(func(c *Config) *string { return &c.LogFormat }, oneOf("console", "json"))},
	{Group: "general", Name: "log-level", Env: "HOSTKEY_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error", bind: parsed(func(c *Config) *zapcore.Level { return &c.LogLevel }, parseLevel)},
}

// parseConfig reads flags, then fills every flag not given on the command line from its
// environment variable, then from the config file. It returns the remaining arguments.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*Config, []string, error) {
	c := &Config{}
	fs := newFlagSet(name)
	for _, o := range options {
		o.bind(fs, c, o)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		// One line, once: run prints it; the help is a command away.
		return nil, nil, fmt.Errorf("%v (see '%s --help')", err, name)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	storeFlag := given["store"] // given is extended below with what the environment set

	file := map[string]string{}
	path := c.ConfigFile
	if path == "" {
		path = getenv("HOSTKEY_CONFIG")
	}
	if path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return nil, nil, err
		}
	}
	c.set = given
	for _, o := range options {
		if given[o.Name] {
			continue
		}
		v, ok := lookupEnv(getenv, o.Env)
		if !ok {
			v, ok = file[o.Env]
		}
		if ok {
			c.set[o.Name] = true
			if err := fs.Set(o.Name, v); err != nil {
				return nil, nil, fmt.Errorf("%s=%q (--%s): %v", o.Env, v, o.Name, err)
			}
		}
	}
	// Secrets come from the environment, their own files or the config file, never from
	// flags (they would show in ps), with the same precedence as every other setting.
	secrets := []struct {
		env, path, what string
		into            *string
	}{
		{"HOSTKEY_API_KEY", c.APIKeyFile, "--api-key-file", &c.APIKey},
		{"HOSTKEY_PIN", "", "", &c.PIN},
		{"HOSTKEY_APPROVER_TOKEN", c.ApproverTokenFile, "--approver-token-file", &c.ApproverToken},
		{"HOSTKEY_HTTP_TOKEN", c.HTTPTokenFile, "--http-token-file", &c.HTTPToken},
		{"HOSTKEY_NOTIFY_SECRET", c.NotifySecretFile, "--notify-secret-file", &c.NotifySecret},
	}
	for _, sec := range secrets {
		switch {
		case getenv(sec.env) != "":
			*sec.into = getenv(sec.env)
		case sec.path != "":
			b, err := os.ReadFile(sec.path)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %v", sec.what, err)
			}
			*sec.into = strings.TrimSpace(string(b))
		default:
			*sec.into = file[sec.env]
		}
	}
	if storeFlag && storeHasPassword(c.Store) {
		// A flag shows in ps and in shell history; the URL is never repeated here.
		return nil, nil, errors.New("--store: the URL holds a password, and flags are visible to every user of the machine (ps): put the URL in HOSTKEY_STORE, or the password in PGPASSWORD or ~/.pgpass")
	}
	var err error
	if c.Notify, err = parseDestinations(c, getenv); err != nil {
		return nil, nil, err
	}
	return c, fs.Args(), c.validate()
}

// parsed binds a setting that is read into a typed value as the flag is parsed, so a bad
// value stops the start with the flag's name (flag.FlagSet, or the environment wrapper in
// parseConfig) instead of failing later, or not at all, deep in the wiring.
func parsed[T any](field func(*Config) *T, parse func(string) (T, error)) func(*flag.FlagSet, *Config, option) {
	return func(fs *flag.FlagSet, c *Config, o option) {
		v := &typedValue[T]{into: field(c), parse: parse}
		if err := v.Set(o.Default); err != nil {
			panic("option " + o.Name + ": bad default: " + err.Error())
		}
		fs.Var(v, o.Name, o.Help)
	}
}

type typedValue[T any] struct {
	into  *T
	parse func(string) (T, error)
	text  string // as given: --help shows defaults as written
}

func (v *typedValue[T]) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *typedValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.into, v.text = x, s
	return nil
}

func parseList(s string) ([]string, error) { return splitCSV(s), nil }

func parseServerIDs(s string) ([]int64, error) {
	var ids []int64
	for _, f := range splitCSV(s) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not a server ID (want positive numbers, comma-separated)", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	p, err := webhook.ParseCIDRs(s)
	if err != nil {
		return nil, fmt.Errorf("%v (want addresses or CIDRs such as 10.0.0.0/8, comma-separated)", err)
	}
	return p, nil
}

func parseConfirm(s string) (policy.ConfirmMode, error) {
	switch m := policy.ConfirmMode(s); m {
	case policy.ConfirmElicit, policy.ConfirmToken, policy.ConfirmOff:
		return m, nil
	}
	return "", errors.New("want elicit, token or off")
}

func parseLimit(s string) (policy.Limit, error) {
	l, err := policy.ParseLimit(s)
	if err != nil {
		return l, fmt.Errorf("%v (want rps:burst, e.g. 5:10, or off)", err)
	}
	return l, nil
}

func parseMaxPending(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number, 0 for no limit")
	}
	return n, nil
}

func parseLevel(s string) (zapcore.Level, error) {
	l, err := zapcore.ParseLevel(s)
	if err != nil {
		return l, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

func oneOf(values ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		if slices.Contains(values, s) {
			return s, nil
		}
		return "", fmt.Errorf("want %s", strings.Join(values, " or "))
	}
}

func lookupEnv(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func (c *Config) validate() error {
	if c.SandboxInstall <= 0 {
		return fmt.Errorf("--sandbox-install-duration %s: want a positive duration, e.g. 20s", c.SandboxInstall)
	}
	if c.Retention < 0 || (c.Retention > 0 && c.Retention < 24*time.Hour) {
		// A shorter retention could prune a running install's job (workflows watch up to 3h).
		return fmt.Errorf("--events-retention %s: want 0 (keep forever) or at least 24h", c.Retention)
	}
	if c.JobLease < 2*time.Second {
		// A shorter lease could expire between two renewals of a live process (every third).
		return fmt.Errorf("--job-lease %s: want at least 2s (default 30s)", c.JobLease)
	}
	if err := checkStore(c.Store); err != nil {
		return err
	}
	if c.Store != "" && c.Ephemeral {
		return errors.New("--store and --ephemeral exclude each other: --ephemeral keeps the state in this process's memory")
	}
	if c.PublicURL != "" && c.WebhookListen == "" && c.HTTP == "" {
		return errors.New("--public-url needs --webhook-listen (or --http) to receive the callbacks")
	}
	return nil
}

// secretEnv are the variables that carry secrets: never flags, so not in options.
var secretEnv = []string{"HOSTKEY_API_KEY", "HOSTKEY_PIN", "HOSTKEY_APPROVER_TOKEN", "HOSTKEY_HTTP_TOKEN", "HOSTKEY_NOTIFY_SECRET"}

// knownEnv is every HOSTKEY_* variable a setting or a secret reads.
func knownEnv() map[string]bool {
	known := map[string]bool{}
	for _, k := range secretEnv {
		known[k] = true
	}
	for _, o := range options {
		known[o.Env] = true
	}
	return known
}

// readConfigFile reads KEY=value lines (# comments allowed).
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %v", err)
	}
	defer f.Close()
	known := knownEnv()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		if !ok || !known[k] {
			return nil, fmt.Errorf("%s:%d: want KEY=value with a HOSTKEY_* name from --help", path, n)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range append(secretEnv, "HOSTKEY_STORE") {
		if v, ok := out[k]; !ok || (k == "HOSTKEY_STORE" && !storeHasPassword(v)) {
			continue
		}
		if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s holds %s but others can read it (mode %o): chmod 600 %s", path, k, st.Mode().Perm(), path)
		}
	}
	return out, nil
}

func splitCSV(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

const usageHead = `hostkey-mcp: operate Hostkey servers from AI assistants, safely.

Usage:
  hostkey-mcp [flags]                     serve MCP over stdio (or --http)
  hostkey-mcp tools [--json|--sizes] [flags]
                                          list the tools the flags select (--sizes: bytes per toolset)
  hostkey-mcp call <tool> [k=v ...] [--args JSON] [flags]
                                          call one tool like an assistant would; prints JSON
  hostkey-mcp sandbox-api --listen ADDR   run the invapi simulator alone
  hostkey-mcp doctor [--healthz] [flags]  check configuration and connectivity
  hostkey-mcp login-alerts [KEY_ID]       point an API key's login notifications at --public-url
  hostkey-mcp audit-verify [--expect-lines N] [--expect-head HASH] FILE
                                          verify an audit log's hash chain (and an anchor)
  hostkey-mcp version

'hostkey-mcp <command> --help' shows a command's own flags and examples.

Without HOSTKEY_API_KEY it serves the built-in sandbox. Secrets (HOSTKEY_API_KEY,
HOSTKEY_PIN, HOSTKEY_APPROVER_TOKEN, HOSTKEY_HTTP_TOKEN) are read from the environment,
the files named below or a mode-0600 config file, never from flags.

`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	configFlagsHelp(w)
}

// configFlagsHelp lists the configuration flags by group, each group once (in order of
// first appearance in the option table).
func configFlagsHelp(w io.Writer) {
	fmt.Fprintln(w, "Flags (environment variable in brackets):")
	for _, group := range optionGroups() {
		fmt.Fprintf(w, "\n %s:\n", group)
		for _, o := range options {
			if o.Group != group {
				continue
			}
			def := ""
			if o.Default != "" {
				def = fmt.Sprintf(" (default %s)", o.Default)
			}
			fmt.Fprintf(w, "  --%s [%s]\n      %s%s\n", o.Name, o.Env, o.Help, def)
		}
	}
}

// markdownReference renders the options as the README's configuration table.
func markdownReference() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | what it does |\n|---|---|---|---|\n")
	b.WriteString("| | `HOSTKEY_API_KEY` | | invapi API key (secret: environment or file only) |\n")
	b.WriteString("| | `HOSTKEY_PIN` | | account PIN (secret: environment or `--pin-file` only) |\n")
	b.WriteString("| | `HOSTKEY_APPROVER_TOKEN` | | chat-ops bots' approval credential (secret: environment or `--approver-token-file`) |\n")
	b.WriteString("| | `HOSTKEY_HTTP_TOKEN` | | bearer token of the HTTP transport (secret: environment or `--http-token-file`) |\n")
	for _, o := range options {
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", o.Name, o.Env, codeOrEmpty(o.Default), strings.ReplaceAll(o.Help, "|", `\|`))
	}
	return b.String()
}

func codeOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}
