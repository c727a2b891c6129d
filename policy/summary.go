package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hostkey/hostkey-mcp/invapi"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// consequences says, per module/action, what a human loses by confirming. The class
// default covers the rest.
var consequences = map[string]string{
	"eq/reboot":                         "The server restarts: running services are interrupted and unsaved data in memory is lost.",
	"eq/off":                            "The server is powered off: every service on it stops until someone powers it on.",
	"eq/hard_off":                       "Power is cut at once, without a clean shutdown: unsaved data is lost and file systems may need repair.",
	"eq/on":                             "The server is powered on.",
	"eq/unit_reset":                     "The server is hard-reset (like the reset button): unsaved data is lost and services are interrupted.",
	"eq/reinstall":                      "The operating system is reinstalled: ALL DATA ON THE SERVER'S DISKS IS ERASED.",
	"eq/deploy":                         "An operating system is deployed: ALL DATA ON THE SERVER'S DISKS IS ERASED.",
	"eq/create_pxe":                     "The server boots the network installer on its next restart: that restart reinstalls it and ERASES ITS DISKS.",
	"eq/abort_reinstall":                "The running installation is aborted: the server may be left without a working operating system.",
	"eq/boot_dev":                       "The boot device changes: the next restart may boot an installer or fail to boot.",
	"eq/order_instance":                 "A new server is ordered: this costs money.",
	"eq/suspend":                        "The server is suspended: it stops serving until it is unsuspended.",
	"eq/restore_backup":                 "The server's data is replaced by the backup: changes made since the backup are lost.",
	"eq/delete_backup":                  "The backup is deleted for good.",
	"eq/add_ipmi_admin":                 "An IPMI administrator is created: it gets full out-of-band control of the server.",
	"eq/announceip":                     "IP announcements change: traffic to the address may be routed elsewhere.",
	"eq/traffic_add":                    "Traffic is added to the server: this may cost money.",
	"eq/set_pin":                        "The account PIN changes: everything using the old PIN stops working.",
	"ip/set_main":                       "The server's main IP changes: services bound to the old address may become unreachable.",
	"nat/add_static_nat":                "A static NAT rule exposes a port of the server on a public address.",
	"net/block_ip":                      "Traffic of the IP address is blocked.",
	"net/port_off":                      "The server's switch port is shut down: the server loses its network connection.",
	"api_keys/add":                      "A new API key is created: whoever holds it can act on the account or server.",
	"api_keys/edit":                     "An API key's rights or scope change.",
	"api_keys/delete":                   "The API key is deleted: everything that uses it stops working.",
	"whmcs/apply_credit":                "Account credit is applied to an invoice: money is spent.",
	"whmcs/mass_pay":                    "Invoices are paid: money is spent.",
	"whmcs/request_cancellation":        "The service is cancelled: the server and ALL ITS DATA will be removed.",
	"whmcs/delete_cancellation_request": "The pending cancellation is withdrawn: the service keeps being billed.",
	"whmcs/generate_due_invoice":        "An invoice is generated: you will be billed.",
	"whmcs/delete_contact":              "The billing contact is deleted.",
	"whmcs/reset_password":              "The billing account's password is reset.",
	"whmcs/update_client":               "The billing account's details change.",
	"whmcs/update_contact":              "The billing contact's details change.",
}

// orderReinstall is eq/order_instance's consequence when it names a server.
const orderReinstall = "The named server is REINSTALLED (order_instance with id): ALL DATA ON THE SERVER'S DISKS IS ERASED."

func consequence(module, action string, class schemas.Class) string {
	if c, ok := consequences[module+"/"+action]; ok {
		return c
	}
	switch class {
	case schemas.Destructive:
		return "This can lose data or access, interrupt service or cost money, and may not be reversible."
	case schemas.Write:
		return "This changes state on the account or server."
	}
	return "This only reads."
}

// summary is what a human is asked to confirm.
type summary struct {
	Tool, Module, Action string
	Class                schemas.Class
	Servers              []ServerFacts
	FactsErr             map[int64]string
	Consequence          string
	Extra                string // a workflow's own description (Authorize)
	Args                 []argView
	NeedsPIN             bool
	FullAt               string // where a described value is shown in full: "on the approval page", a URL…
}

func (e *Engine) summarize(ctx context.Context, t *turn) summary {
	call, class, extra := t.call, t.class, t.extra
	s := summary{
		Tool: call.Tool, Module: call.Module, Action: call.Action, Class: class,
		Consequence: consequence(call.Module, call.Action, class),
		Extra:       extra, Args: e.argViews(call), NeedsPIN: call.NeedsPIN,
	}
	if call.Module == "eq" && call.Action == "order_instance" && len(call.ServerIDs) > 0 {
		// With id, order_instance reinstalls that server (the FAQ's reinstall).
		s.Consequence = orderReinstall
	}
	if call.Summary != "" {
		// The caller knows better than the first action's generic consequence.
		s.Consequence, s.Extra = call.Summary, ""
	}
	// A caller's own description may quote what eq/show says (a hostname an earlier
	// reinstall set): escaped like a value, it cannot forge lines of the confirmation.
	s.Consequence, s.Extra = visible(s.Consequence, 0), visible(s.Extra, 0)
	for _, id := range uniqueIDs(call.ServerIDs) {
		f, err := e.facts.get(ctx, id)
		if err != nil || f == nil {
			if s.FactsErr == nil {
				s.FactsErr = map[int64]string{}
			}
			msg := "no details available"
			if err != nil {
				msg = "details unavailable: " + err.Error()
			}
			s.FactsErr[id] = msg
			s.Servers = append(s.Servers, ServerFacts{ID: id})
			continue
		}
		s.Servers = append(s.Servers, *f)
	}
	return s
}

// serverLine names a server as eq/show describes it. Its hostname is free text an
// earlier reinstall set, so every fact is escaped when it holds line breaks, control or
// invisible characters (it cannot forge lines of the confirmation), and the form
// shortens a long one, saying so (padding cannot push the arguments out of sight); the
// page (full) shows it whole.
func serverLine(f ServerFacts, factsErr string, full bool) string {
	fact := ShortFact
	if full {
		fact = func(s string) string { return visible(s, 0) }
	}
	var parts []string
	if f.Hostname != "" {
		if isASCII(f.Hostname) {
			parts = append(parts, fact(f.Hostname))
		} else {
			// Host names are ASCII (IDNs travel as punycode): anything else may be a
			// look-alike of another server's name, so it is spelled out.
			parts = append(parts, fact(strconv.QuoteToASCII(f.Hostname)))
		}
	}
	if len(f.IPs) > 0 {
		ips := make([]string, len(f.IPs))
		for i, ip := range f.IPs {
			ips[i] = fact(ip)
		}
		parts = append(parts, "IPs "+strings.Join(ips, ", "))
	}
	if f.Location != "" {
		parts = append(parts, "location "+fact(f.Location))
	}
	if factsErr != "" {
		parts = append(parts, fact(factsErr))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("server %d", f.ID)
	}
	return fmt.Sprintf("server %d (%s)", f.ID, strings.Join(parts, "; "))
}

// Text renders the summary for a form or a message: precise, without secrets, nothing
// silently cut. A long or multi-line value is described (length, SHA-256, first and
// last lines); Full has it in full.
func (s summary) Text() string { return s.render(false) }

// Full renders the summary with every value in full, for the approval and details pages.
func (s summary) Full() string { return s.render(true) }

// Described reports whether Text describes a value instead of showing it.
func (s summary) Described() bool {
	for _, a := range s.Args {
		if a.long() {
			return true
		}
	}
	return false
}

func (s summary) render(full bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Confirm %s action %s/%s (tool %s)", s.Class, s.Module, s.Action, s.Tool)
	if len(s.Servers) > 0 {
		lines := make([]string, len(s.Servers))
		for i, f := range s.Servers {
			lines[i] = serverLine(f, s.FactsErr[f.ID], full)
		}
		b.WriteString(" on ")
		b.WriteString(strings.Join(lines, ", "))
	}
	b.WriteString(". ")
	b.WriteString(s.Consequence)
	if s.Extra != "" {
		b.WriteString(" ")
		b.WriteString(s.Extra)
	}
	var first, rest []argView
	for _, a := range s.Args {
		if a.consequential {
			first = append(first, a)
		} else {
			rest = append(rest, a)
		}
	}
	// What decides what runs on the server or who can reach it comes first, so that no
	// amount of padding elsewhere pushes it out of sight.
	if len(first) > 0 {
		b.WriteString("\nWhat this puts on the server or who can reach it:")
		for _, a := range first {
			b.WriteString("\n- ")
			b.WriteString(a.render(full, s.FullAt))
		}
	}
	if len(rest) > 0 {
		b.WriteString("\nOther arguments:")
		for _, a := range rest {
			b.WriteString("\n- ")
			b.WriteString(a.render(full, s.FullAt))
		}
	}
	if s.NeedsPIN {
		b.WriteString("\nThe account PIN is added by the server; it is never shown here.")
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ShortFact shows what invapi says about a server (a hostname, a location) in a
// confirmation: escaped when it holds line breaks, control or invisible characters, and
// shortened past 100 bytes, saying so. Callers quoting facts in their own summary use it.
func ShortFact(s string) string { return visible(s, 100) }

// shortLimit is the longest value a form shows inline; longer ones are described.
const shortLimit = 200

// argView is one argument as the human sees it.
type argView struct {
	name          string // path in the arguments: "hostname", "params.ip"
	value         string // the value: a string as is, anything else as JSON
	isString      bool
	secret        bool
	consequential bool
}

// long reports whether the form describes the value instead of showing it.
func (a argView) long() bool {
	return !a.secret && (len(a.value) > shortLimit || strings.ContainsAny(a.value, "\r\n") || hidesText(a.value))
}

// hidesText reports characters that can make a line read differently than it is
// (bidirectional overrides, zero-width and other invisible or control characters, C1
// controls such as NEL, and the Unicode line and paragraph separators).
func hidesText(s string) bool {
	for _, r := range s {
		if (unicode.Is(unicode.Cc, r) && r != '\t') || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return true
		}
	}
	return false
}

func (a argView) render(full bool, fullAt string) string {
	switch {
	case a.secret:
		return a.name + ": " + a.value
	case !a.long():
		if a.isString {
			return a.name + " = " + strconv.Quote(a.value)
		}
		return a.name + " = " + a.value
	}
	lines := strings.Split(strings.TrimRight(a.value, "\n"), "\n")
	head := fmt.Sprintf("%s: %d bytes in %d line%s, SHA-256 %s", a.name, len(a.value), len(lines), plural(len(lines)), sha256Hex(a.value))
	if full {
		var b strings.Builder
		b.WriteString(head)
		b.WriteString(", in full:")
		for _, l := range lines {
			b.WriteString("\n    ")
			b.WriteString(visible(l, 0))
		}
		return b.String()
	}
	head += ", first line " + visible(lines[0], 100)
	if len(lines) > 1 {
		head += ", last line " + visible(lines[len(lines)-1], 100)
	}
	if fullAt == "" {
		return head + " (not shown here in full: no approval page is configured)"
	}
	return head + " (the full text is " + fullAt + ")"
}

// visible quotes a line so that every character shows (invisible and bidirectional
// ones escaped); max > 0 shortens it, saying so.
func visible(s string, max int) string {
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.QuoteToGraphic(s[:cut]) + fmt.Sprintf(" (first %d of %d bytes)", cut, len(s))
	}
	if hidesText(s) {
		return strconv.QuoteToGraphic(s)
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// argViews lists the call's arguments for the human: consequential ones (per the
// catalog) in catalog order, then the rest by name. Secret values are never shown: a
// secret is named, and a secret URL shows only its host (an attacker's callback must be
// recognizable; hostkey-mcp's own carries its secret in the path).
func (e *Engine) argViews(call *Call) []argView {
	order := map[string]int{}
	if a, ok := e.action(call); ok {
		for i, p := range a.Params {
			if p.Consequential {
				order[strings.Join(p.Path, ".")] = i + 1
			}
		}
	}
	secrets := e.secretFields(call)
	var out []argView
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := prefix + k
			if sub, ok := v.(map[string]any); ok && !invapi.IsSecretKey(k, secrets...) {
				walk(name+".", sub)
				continue
			}
			av := argView{name: name, consequential: order[name] > 0}
			switch {
			case invapi.IsSecretKey(k, secrets...):
				av.secret = true
				av.value = secretShown(k, v)
			default:
				if s, ok := v.(string); ok {
					av.value, av.isString = s, true
				} else {
					// Lists are not walked: a secret inside one (users[0][password]) is
					// redacted here, not shown.
					j, _ := json.Marshal(invapi.RedactParams(map[string]any{k: v}, secrets...)[k])
					av.value = string(j)
				}
			}
			out = append(out, av)
		}
	}
	walk("", call.Args)
	sort.Slice(out, func(i, j int) bool {
		oi, oj := order[out[i].name], order[out[j].name]
		if (oi > 0) != (oj > 0) {
			return oi > 0
		}
		if oi != oj {
			return oi < oj
		}
		return out[i].name < out[j].name
	})
	return out
}

// urlSecrets are the secret parameters that hold a URL someone else's server is called
// at (see invapi's secretNames).
var urlSecrets = map[string]bool{"post_install_callback": true, "login_notify_address": true}

// secretShown is what a human sees of a secret value (key is its parameter name).
func secretShown(key string, v any) string {
	s, ok := v.(string)
	if !ok || s == "" {
		return "set (value hidden)"
	}
	if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return fmt.Sprintf("set to a %s URL on host %s (the rest hidden: it may carry a secret)", u.Scheme, strconv.QuoteToGraphic(u.Host))
	}
	if urlSecrets[strings.ToLower(key)] {
		// Not a plain http(s) URL, so not one hostkey-mcp made; a fetcher may still read
		// "evil.example/cb" or "//evil.example/cb" as one. Its host part is shown so
		// that an attacker's callback stays recognizable.
		return fmt.Sprintf("set to a value that is not a plain http(s) URL (%d bytes), whose host part reads %s (the rest hidden)", len(s), strconv.QuoteToGraphic(hostPart(s)))
	}
	return "set (value hidden)"
}

// hostPart is what a lenient URL reader takes for the host of s: after any scheme and
// leading slashes, up to the path, and after any user info.
func hostPart(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimLeft(s, "/\\")
	if i := strings.IndexAny(s, "/\\?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func uniqueIDs(ids []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// factsCache remembers server lookups for a short while: a confirmation and a tag check
// of the same call, or a burst of calls, look the server up once.
type factsCache struct {
	fn  FactsFunc
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[int64]factsEntry
}

type factsEntry struct {
	f  *ServerFacts
	at time.Time
}

func newFactsCache(fn FactsFunc, ttl time.Duration, now func() time.Time) *factsCache {
	return &factsCache{fn: fn, ttl: ttl, now: now, m: map[int64]factsEntry{}}
}

func (c *factsCache) get(ctx context.Context, id int64) (*ServerFacts, error) {
	if c.fn == nil {
		return nil, nil
	}
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[id]; ok && now.Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.f, nil
	}
	c.mu.Unlock()
	f, err := c.fn(ctx, id)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("server %d not found", id)
	}
	cp := *f
	cp.ID = id
	c.mu.Lock()
	if len(c.m) > 4096 {
		c.m = map[int64]factsEntry{}
	}
	c.m[id] = factsEntry{f: &cp, at: now}
	c.mu.Unlock()
	return &cp, nil
}
