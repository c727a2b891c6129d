package tools

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// DefaultToolsets is what a new user gets: look at servers, power them, manage their IPs.
// It keeps tools/list small; everything else is one flag (or one toolsets_enable call) away.
var DefaultToolsets = []string{"servers", "power", "ip"}

// Selection decides which catalog tools a server exposes. The filters apply in one fixed
// order: toolsets → read-only → exclude → include (include wins over toolsets, never over
// read-only).
type Selection struct {
	Toolsets []string // toolset or module names; "all" for everything
	ReadOnly bool     // only tools whose class is read
	Include  []string // extra tool names, whatever their toolset
	Exclude  []string // tool names never exposed
	// AuthTools exposes the session tools (auth_login, auth_logout, auth_whmcslogin).
	// hostkey-mcp manages the invapi session itself; without this flag the model can
	// neither hand it an API key or billing password nor end the session.
	AuthTools bool
}

// sessionTools manage the invapi session hostkey-mcp runs for every client.
var sessionTools = map[string]bool{"auth_login": true, "auth_logout": true, "auth_whmcslogin": true}

// IsSessionTool reports whether name is one of the session tools only --auth-tools exposes.
func IsSessionTool(name string) bool { return sessionTools[name] }

// Hidden reports whether the selection keeps a from the model whatever the toolsets.
func (s Selection) Hidden(a *schemas.Action) bool { return sessionTools[a.Tool] && !s.AuthTools }

// Resolve checks the names in s against the catalog (and the names of tools outside it,
// such as the workflows) and returns an error naming the unknown ones and the choices.
func (s Selection) Resolve(cat *schemas.Catalog, otherTools ...string) error {
	return s.resolve(cat, nil, otherTools)
}

// resolve is Resolve that also knows the names of toolsets outside the catalog.
func (s Selection) resolve(cat *schemas.Catalog, otherToolsets, otherTools []string) error {
	other := map[string]bool{GenericToolName: true, SearchToolName: true, EnableToolName: true}
	for _, n := range otherTools {
		other[n] = true
	}
	valid := map[string]bool{"all": true}
	for _, n := range otherToolsets {
		valid[n] = true
	}
	for _, t := range cat.Toolsets() {
		valid[t] = true
	}
	for _, m := range cat.Modules() {
		valid[m] = true
	}
	var bad []string
	for _, n := range s.Toolsets {
		if !valid[n] {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown toolset %s: choose from all, %s (or a module: %s)",
			strings.Join(bad, ", "), strings.Join(append(cat.Toolsets(), otherToolsets...), ", "), strings.Join(cat.Modules(), ", "))
	}
	for _, n := range s.Include {
		if sessionTools[n] && !s.AuthTools {
			return fmt.Errorf("%s is hidden: hostkey-mcp manages the invapi session itself; add --auth-tools to expose auth_login, auth_logout and auth_whmcslogin", n)
		}
	}
	for _, list := range [][]string{s.Include, s.Exclude} {
		for _, n := range list {
			if _, ok := cat.Tool(n); !ok && !other[n] {
				return fmt.Errorf("unknown tool %q in --tools/--exclude-tools: `hostkey-mcp tools` lists them", n)
			}
		}
	}
	return nil
}

// Allows reports whether the selection exposes a.
func (s Selection) Allows(a *schemas.Action) bool {
	if s.Hidden(a) {
		return false
	}
	if s.ReadOnly && a.Class != schemas.Read {
		return false
	}
	for _, n := range s.Exclude {
		if n == a.Tool {
			return false
		}
	}
	for _, n := range s.Include {
		if n == a.Tool {
			return true
		}
	}
	return s.toolsetEnabled(a.Toolset, a.Module)
}

func (s Selection) toolsetEnabled(toolset, module string) bool {
	for _, n := range s.Toolsets {
		if n == "all" || n == toolset || n == module {
			return true
		}
	}
	return false
}

// AllowsGeneric reports whether the generic invapi_call tool is exposed: only when asked
// for by name or with "all", and never in read-only mode (it can reach any action).
func (s Selection) AllowsGeneric() bool {
	if s.ReadOnly {
		return false
	}
	for _, n := range s.Exclude {
		if n == GenericToolName {
			return false
		}
	}
	for _, n := range s.Include {
		if n == GenericToolName {
			return true
		}
	}
	return s.toolsetEnabled("all", "") || s.toolsetEnabled("undocumented", "")
}

// ToolsetInfo describes one toolset for people and for the discovery tools.
type ToolsetInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tools       []string `json:"tools"`
	Enabled     bool     `json:"enabled"`
}

var toolsetDescriptions = map[string]string{
	"servers":   "Find and inspect servers: list, show, status, search, history, traffic.",
	"power":     "Power on, off, reboot and hard off (destructive: confirmed by a human).",
	"ip":        "IP addresses: details, PTR records, traffic, free IPs, main IP.",
	"reinstall": "Order and reinstall servers, PXE install steps, install progress.",
	"ipmi":      "IPMI users, console and IPMI NAT access.",
	"backups":   "Backup schedules, backups, restore.",
	"network":   "Switch ports, announcements and network status.",
	"account":   "API keys, SSH keys, session info, PIN (the session tools need --auth-tools).",
	"billing":   "Invoices, payments, credit, contacts and cancellations (WHMCS).",
	"catalog":   "What can be ordered: presets, OS, software, traffic plans, stock servers, Jenkins tasks.",
	"dns":       "DNS hosting: zones, records, domains and subdomains (PowerDNS).",
	"tags":      "Server tags: list, search, set and remove.",
	"iso":       "ISO images: library, uploads, mount and unmount on a server.",
	"snapshots": "VM snapshots (take, restore, delete), engine and load statistics.",
	"storage":   "S3 object storage: plans, accounts, buckets, files and keys.",
	"support":   "Remote-hands requests and tickets to the data centre and sales.",
}

// Toolsets lists every toolset with its tools, marking those s enables.
func Toolsets(cat *schemas.Catalog, s Selection) []ToolsetInfo {
	by := map[string][]string{}
	for _, a := range cat.Actions {
		if !s.Hidden(a) {
			by[a.Toolset] = append(by[a.Toolset], a.Tool)
		}
	}
	var out []ToolsetInfo
	for _, name := range cat.Toolsets() {
		tools := by[name]
		sort.Strings(tools)
		out = append(out, ToolsetInfo{
			Name:        name,
			Description: toolsetDescriptions[name],
			Tools:       tools,
			Enabled:     s.toolsetEnabled(name, ""),
		})
	}
	return out
}
