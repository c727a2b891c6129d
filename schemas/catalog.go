// Package schemas holds the invapi catalog: every documented action, its metadata and
// the model-facing JSON Schema of its tool. The Markdown tables under tables/ are the
// source; catalog.json is generated from them (see README.md) and embedded here.
// It imports nothing of the module: everything else builds on it.
package schemas

//go:generate go run ./gen

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Class says how much an action can hurt. The policy decides confirmation from it.
type Class string

const (
	// Read changes nothing.
	Read Class = "read"
	// Write changes state but loses nothing and costs nothing.
	Write Class = "write"
	// Destructive can lose data or access, interrupt service, cost money or weaken security.
	Destructive Class = "destructive"
)

// Valid reports whether c is one of the three known classes.
func (c Class) Valid() bool { return c == Read || c == Write || c == Destructive }

// Action is one invapi module/action and everything the client, the policy and the
// tool layer need to know about it.
type Action struct {
	Tool     string   `json:"tool"`     // MCP tool name, <module>_<action>
	Module   string   `json:"module"`   // e.g. "eq"
	Action   string   `json:"action"`   // e.g. "reboot"
	Endpoint string   `json:"endpoint"` // e.g. "eq.php"
	Methods  []string `json:"methods"`  // first is used
	Class    Class    `json:"class"`
	PIN      bool     `json:"pin,omitempty"` // invapi wants the account PIN
	// PINParam is the wire name invapi reads the PIN from when it is not "pin" (eq/set_pin
	// wants the current PIN as old_pin). The policy supplies it; the model never does.
	PINParam    string   `json:"pin_param,omitempty"`
	Async       bool     `json:"async,omitempty"` // the response carries a key to check later
	Idempotent  bool     `json:"idempotent,omitempty"`
	NoAuth      bool     `json:"no_auth,omitempty"` // invapi answers without a session token
	Toolset     string   `json:"toolset"`
	Description string   `json:"description"`
	Params      []Param  `json:"params"`
	Sources     []string `json:"sources,omitempty"`
	// Permission is the login permission that grants the action when it is not the
	// action's own name (rule 13: pdns/edit for pdns/delete_dns, tag/list for tags/list),
	// or "unlisted" when the permission list names no grant for it.
	Permission  string          `json:"permission,omitempty"`
	Notes       []string        `json:"notes,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// Param is one model-facing parameter, addressed by its wire name.
type Param struct {
	Wire     string   `json:"wire"`            // e.g. "params[location]", "group[]"
	Path     []string `json:"path"`            // JSON path in the tool arguments, e.g. ["params","location"]
	Type     string   `json:"type"`            // integer, string, boolean, number
	Array    bool     `json:"array,omitempty"` // the wire name ends in []
	Required bool     `json:"required,omitempty"`
	Secret   bool     `json:"secret,omitempty"`
	ServerID bool     `json:"server_id,omitempty"` // names a server: the policy's allowlist checks it
	// Consequential marks a parameter that decides what runs on a server or who can reach
	// it (ssh_key, post_install_script, os_id, hostname, IPs, ...): a human confirming the
	// call is shown it first and in full.
	Consequential bool     `json:"consequential,omitempty"`
	Enum          []string `json:"enum,omitempty"`
	Description   string   `json:"description,omitempty"`
}

// Method is the HTTP method the client uses for the action.
func (a *Action) Method() string {
	if len(a.Methods) == 0 {
		return "POST"
	}
	return a.Methods[0]
}

// PINWire is the wire name that carries the account PIN for this action.
func (a *Action) PINWire() string {
	if a.PINParam != "" {
		return a.PINParam
	}
	return "pin"
}

// PermissionName is the name auth/login's permission list grants the action under: its
// own module/action unless the catalog says otherwise; "" when the list names no grant
// (the permission filter then leaves the tool visible).
func (a *Action) PermissionName() string {
	switch a.Permission {
	case "":
		return a.Module + "/" + a.Action
	case Unlisted:
		return ""
	}
	return a.Permission
}

// Unlisted is the Permission of an action the login permission list names no grant for.
const Unlisted = "unlisted"

// ReadOnly reports whether the action changes nothing upstream.
func (a *Action) ReadOnly() bool { return a.Class == Read }

// SecretFields returns the leaf names of secret inputs (root_pass, params[password] →
// password): redaction matches keys by name at any depth.
func (a *Action) SecretFields() []string {
	var out []string
	for _, p := range a.Params {
		if p.Secret {
			out = append(out, p.Path[len(p.Path)-1])
		}
	}
	return out
}

// ServerIDParams returns the parameters that name servers.
func (a *Action) ServerIDParams() []Param {
	var out []Param
	for _, p := range a.Params {
		if p.ServerID {
			out = append(out, p)
		}
	}
	return out
}

// ServerIDs returns the server IDs that args (tool arguments, or an upstream request's
// params, which have the same shape) name through the server-ID parameters.
func (a *Action) ServerIDs(args map[string]any) []int64 {
	var ids []int64
	for _, p := range a.ServerIDParams() {
		v := valueAt(args, p.Path)
		if list, ok := v.([]any); ok {
			for _, x := range list {
				if n, ok := ToInt64(x); ok {
					ids = append(ids, n)
				}
			}
			continue
		}
		if n, ok := ToInt64(v); ok {
			ids = append(ids, n)
		}
	}
	return ids
}

// valueAt is the value at path in nested argument maps, nil when absent.
func valueAt(args map[string]any, path []string) any {
	var v any = args
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// UnreadableServerID returns the path ("id", "params.id") of a server-ID argument that
// is present but cannot be read as a 64-bit integer (1e19 is a JSON-schema integer), ""
// when there is none. ServerIDs skips such a value, so the allowlist could not check it.
func (a *Action) UnreadableServerID(args map[string]any) string {
	for _, p := range a.ServerIDParams() {
		v := valueAt(args, p.Path)
		vals := []any{v}
		if list, ok := v.([]any); ok {
			vals = list
		}
		for _, x := range vals {
			if x == nil {
				continue
			}
			if _, ok := ToInt64(x); !ok {
				return strings.Join(p.Path, ".")
			}
		}
	}
	return ""
}

// ToInt64 reads an ID however it arrived: JSON number, json.Number, Go integer or a
// decimal string.
func ToInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), x == float64(int64(x))
	case int64:
		return x, true
	case int:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Undocumented is an action that auth/login's permission list names but the docs do not
// describe. It is reachable only through the generic tool.
type Undocumented struct {
	Module string `json:"module"`
	Action string `json:"action"`
	Class  Class  `json:"class"`
	Note   string `json:"note,omitempty"`
}

// VendorTool maps one tool of the vendor's own MCP server (hostkey-cloud/mcp-server) to
// the tool here that covers it, for the capability table and its tests.
type VendorTool struct {
	Vendor string `json:"vendor"` // the vendor's tool name
	Tool   string `json:"tool"`   // ours
	Source string `json:"source"` // the vendor file at a commit
}

// Catalog is the whole set of actions.
type Catalog struct {
	Actions      []*Action      `json:"actions"`
	Undocumented []Undocumented `json:"undocumented"`
	Vendor       []VendorTool   `json:"vendor,omitempty"`

	byTool   map[string]*Action
	byAction map[string]*Action
}

// Lookup finds a documented action by module and action name.
func (c *Catalog) Lookup(module, action string) (*Action, bool) {
	a, ok := c.byAction[module+"/"+action]
	return a, ok
}

// Tool finds a documented action by its tool name.
func (c *Catalog) Tool(name string) (*Action, bool) {
	a, ok := c.byTool[name]
	return a, ok
}

// UndocumentedClass returns the class of an undocumented action, Destructive when unknown.
func (c *Catalog) UndocumentedClass(module, action string) Class {
	for _, u := range c.Undocumented {
		if u.Module == module && u.Action == action && u.Class.Valid() {
			return u.Class
		}
	}
	return Destructive
}

// Toolsets returns the sorted toolset names.
func (c *Catalog) Toolsets() []string { return c.distinct(func(a *Action) string { return a.Toolset }) }

// Modules returns the sorted module names.
func (c *Catalog) Modules() []string { return c.distinct(func(a *Action) string { return a.Module }) }

// distinct returns the sorted distinct values of field over the actions.
func (c *Catalog) distinct(field func(*Action) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range c.Actions {
		if v := field(a); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// Index builds the lookup maps; Parse calls it.
func (c *Catalog) Index() error {
	c.byTool = make(map[string]*Action, len(c.Actions))
	c.byAction = make(map[string]*Action, len(c.Actions))
	for _, a := range c.Actions {
		if _, dup := c.byTool[a.Tool]; dup {
			return fmt.Errorf("schemas: duplicate tool %q", a.Tool)
		}
		c.byTool[a.Tool] = a
		c.byAction[a.Module+"/"+a.Action] = a
	}
	return nil
}

// Parse decodes a catalog.json document.
func Parse(data []byte) (*Catalog, error) {
	var c Catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("schemas: decode catalog: %w", err)
	}
	if err := c.Index(); err != nil {
		return nil, err
	}
	return &c, nil
}

//go:embed catalog.json
var catalogJSON []byte

var (
	loadOnce sync.Once
	loaded   *Catalog
)

// Load returns the embedded catalog. It panics if the embedded file is corrupt, which a
// test catches before any release.
func Load() *Catalog {
	loadOnce.Do(func() {
		c, err := Parse(catalogJSON)
		if err != nil {
			panic(err)
		}
		loaded = c
	})
	return loaded
}
