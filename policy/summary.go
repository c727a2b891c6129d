package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

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
	Args                 map[string]any
	NeedsPIN             bool
}

func (e *Engine) summarize(ctx context.Context, t *turn) summary {
	call, class, extra := t.call, t.class, t.extra
	s := summary{
		Tool: call.Tool, Module: call.Module, Action: call.Action, Class: class,
		Consequence: consequence(call.Module, call.Action, class),
		Extra:       extra, Args: e.redactedArgs(call), NeedsPIN: call.NeedsPIN,
	}
	if call.Summary != "" {
		// The caller knows better than the first action's generic consequence.
		s.Consequence, s.Extra = call.Summary, ""
	}
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

func serverLine(f ServerFacts, factsErr string) string {
	var parts []string
	if f.Hostname != "" {
		parts = append(parts, f.Hostname)
	}
	if len(f.IPs) > 0 {
		parts = append(parts, "IPs "+strings.Join(f.IPs, ", "))
	}
	if f.Location != "" {
		parts = append(parts, "location "+f.Location)
	}
	if factsErr != "" {
		parts = append(parts, factsErr)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("server %d", f.ID)
	}
	return fmt.Sprintf("server %d (%s)", f.ID, strings.Join(parts, "; "))
}

// Text renders the summary for a human: one paragraph, precise, without secrets.
func (s summary) Text() string {
	var b strings.Builder
	verb := "Confirm"
	fmt.Fprintf(&b, "%s %s action %s/%s (tool %s)", verb, s.Class, s.Module, s.Action, s.Tool)
	if len(s.Servers) > 0 {
		lines := make([]string, len(s.Servers))
		for i, f := range s.Servers {
			lines[i] = serverLine(f, s.FactsErr[f.ID])
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
	if args := argsText(s.Args); args != "" {
		b.WriteString(" Arguments: ")
		b.WriteString(args)
		b.WriteString(".")
	}
	if s.NeedsPIN {
		b.WriteString(" The account PIN is added by the server; it is never shown here.")
	}
	return b.String()
}

func argsText(args map[string]any) string {
	if len(args) == 0 {
		return ""
	}
	out, err := json.Marshal(args)
	if err != nil {
		return ""
	}
	const max = 600
	if len(out) > max {
		return string(out[:max]) + "…"
	}
	return string(out)
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
