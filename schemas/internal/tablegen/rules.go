package tablegen

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// sourceRank orders the sources for rule 5's tie-breaker: the seeds from newest to oldest,
// then the public clients (rule 12: the seeds win where they are explicit; the Terraform
// provider's tested wire code over the vendor's MCP server, which forwards arguments).
var sourceRank = map[string]int{"000": 0, "002": 1, "004": 2, "001": 3, "003": 4, "tf": 5, "vendor-mcp": 6}

// clientSourceRE is a public client file at a commit: vendor-mcp@cb3408e:src/tools/dns.ts.
var clientSourceRE = regexp.MustCompile(`^(vendor-mcp|tf)@[0-9a-f]{7,40}:[A-Za-z0-9_./-]+$`)

// permissionRE is a login permission name (module/action), or "unlisted" (rule 13).
var permissionRE = regexp.MustCompile(`^([a-z][a-z0-9_]*/[A-Za-z][A-Za-z0-9_]*|unlisted)$`)

// notModelFacing are supplied by the client (action, token) or by the policy (pin and
// old_pin, the current PIN: a model that could fill them could guess the PIN).
var notModelFacing = map[string]bool{"action": true, "token": true, "pin": true, "old_pin": true}

// pinNames are the wire names that carry the account PIN (rule 4).
var pinNames = map[string]bool{"pin": true, "old_pin": true}

// secretNames are secret wherever they appear (rule 7); `secret` marks others.
var secretNames = map[string]bool{
	"pin": true, "new_pin": true, "root_pass": true, "password": true,
	"admin_pass": true, "token": true, "new_password": true,
	// Callback URLs carry hostkey-mcp's per-job tokens; login alerts point at a private address.
	"post_install_callback": true, "login_notify_address": true,
}

var typeAliases = map[string]string{
	"int": "integer", "integer": "integer", "string": "string", "str": "string",
	"bool": "boolean", "boolean": "boolean", "float": "number", "number": "number",
	"double": "number", "object": "object", "array": "array",
}

var wireNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z0-9_]*\])*$`)

// param is one parameter after the rules: its wire name, JSON path and constraints.
type param struct {
	schemas.Param
	Constraints constraints
	line        int
}

type constraints struct {
	Hidden    bool // rule 11: transcribed, sent when set, never shown to the model
	Enum      []string
	MinLength *uint64
	MaxLength *uint64
	Minimum   string
	Maximum   string
	Pattern   string
	Format    string
	Default   string
}

// action is one action after the rules.
type action struct {
	*schemas.Action
	params []param
}

func (r *rawAction) fail(line int, format string, args ...any) error {
	return &parseError{File: r.File, Line: line, Msg: fmt.Sprintf("%s/%s: ", r.Module, r.Action) + fmt.Sprintf(format, args...)}
}

// build applies the conflict rules of schemas/README.md to one raw action.
func build(m *rawModule, r *rawAction) (*action, error) {
	if r.Module != m.Name {
		return nil, r.fail(r.Line, "module %q in a file for module %q", r.Module, m.Name)
	}
	if strings.TrimSpace(r.Description) == "" {
		return nil, r.fail(r.Line, "missing description")
	}
	a := &schemas.Action{
		Tool:        r.Module + "_" + r.Action,
		Module:      r.Module,
		Action:      r.Action,
		Endpoint:    m.Endpoint,
		Toolset:     m.Toolset,
		Description: r.Description,
		Notes:       r.Notes,
	}
	if a.Endpoint == "" {
		a.Endpoint = r.Module + ".php"
	}
	known := map[string]bool{"method": true, "class": true, "async": true, "idempotent": true, "toolset": true, "auth": true, "endpoint": true, "sources": true, "permission": true, "required": true, "hidden-sources": true}
	for k := range r.Facts {
		if !known[k] {
			return nil, r.fail(r.Line, "unknown fact %q", k)
		}
	}
	for _, meth := range strings.Split(r.Facts["method"], "|") {
		meth = strings.ToUpper(strings.TrimSpace(meth))
		if meth != "GET" && meth != "POST" {
			return nil, r.fail(r.Line, "method %q: want POST, GET or POST|GET", r.Facts["method"])
		}
		a.Methods = append(a.Methods, meth)
	}
	a.Class = schemas.Class(r.Facts["class"])
	if !a.Class.Valid() {
		return nil, r.fail(r.Line, "class %q: want read, write or destructive", r.Facts["class"])
	}
	var err error
	if a.Async, err = yesNo(r.Facts["async"], false); err != nil {
		return nil, r.fail(r.Line, "async: %v", err)
	}
	if a.Idempotent, err = yesNo(r.Facts["idempotent"], a.Class == schemas.Read); err != nil {
		return nil, r.fail(r.Line, "idempotent: %v", err)
	}
	if v := r.Facts["toolset"]; v != "" {
		a.Toolset = v
	}
	if a.Toolset == "" {
		return nil, r.fail(r.Line, "no toolset (module or action)")
	}
	switch r.Facts["auth"] {
	case "", "token":
	case "none":
		a.NoAuth = true
	default:
		return nil, r.fail(r.Line, "auth %q: want token or none", r.Facts["auth"])
	}
	if v := r.Facts["endpoint"]; v != "" {
		a.Endpoint = v
	}
	sources := splitList(r.Facts["sources"])
	if len(sources) == 0 {
		return nil, r.fail(r.Line, "sources missing")
	}
	for _, s := range sources {
		if _, ok := sourceRank[seedOf(s)]; !ok || (strings.Contains(s, "@") && !clientSourceRE.MatchString(s)) {
			return nil, r.fail(r.Line, "unknown source %q: want a seed (000-004, optionally #variant) or a client file vendor-mcp@<commit>:<path> or tf@<commit>:<path>", s)
		}
	}
	a.Sources = sources
	if v := r.Facts["permission"]; v != "" {
		if !permissionRE.MatchString(v) {
			return nil, r.fail(r.Line, "permission %q: want module/action or unlisted", v)
		}
		if v == r.Module+"/"+r.Action {
			return nil, r.fail(r.Line, "permission %q is the action's own name: leave the fact out", v)
		}
		a.Permission = v
	}

	forced := map[string]bool{} // rule 2's exception: a seed's prose says the parameter is mandatory
	for _, n := range splitList(r.Facts["required"]) {
		forced[n] = true
	}
	hiddenSrc := splitList(r.Facts["hidden-sources"]) // rule 11: a source describing another action
	for _, s := range hiddenSrc {
		if !slices.Contains(sources, s) {
			return nil, r.fail(r.Line, "hidden-sources names %q, which is not one of the action's sources", s)
		}
	}
	out := &action{Action: a}
	var listing []string // a source describing another action (hidden-sources) makes nothing optional
	for _, s := range listingSources(r, sources) {
		if !slices.Contains(hiddenSrc, s) {
			listing = append(listing, s)
		}
	}
	seen := map[string]bool{}
	for _, rp := range r.Params {
		name := rp.Name
		if name == "" && strings.Contains(strings.ToLower(rp.Description), "email") {
			name = "email" // rule 8
		}
		if !wireNameRE.MatchString(name) {
			return nil, r.fail(rp.Line, "parameter %q is not a wire name like id, a[], a[b], a[b][]", rp.Name)
		}
		if seen[name] {
			return nil, r.fail(rp.Line, "parameter %q listed twice", name)
		}
		seen[name] = true
		if pinNames[name] {
			a.PIN = true // rule 4
			if name == "pin" || a.PINParam == "" {
				a.PINParam = name
			}
		}
		if notModelFacing[name] {
			continue // rule 3
		}
		p, err := buildParam(r, rp, name, sources, listing)
		if err != nil {
			return nil, err
		}
		if forced[name] {
			p.Required = true
			delete(forced, name)
		}
		if len(hiddenSrc) > 0 && strings.TrimSpace(rp.In) != "" && subset(splitList(rp.In), hiddenSrc) {
			p.Constraints.Hidden = true
		}
		out.params = append(out.params, p)
		if !p.Constraints.Hidden {
			a.Params = append(a.Params, p.Param)
		}
	}
	if a.PINParam == "pin" {
		a.PINParam = "" // the default wire name
	}
	for n := range forced {
		return nil, r.fail(r.Line, "required names %q, which is not a parameter of the action", n)
	}
	return out, nil
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// listingSources are the sources that list any parameter of the action besides the
// client-supplied ones. A source with no parameter table (rule 9: method table only)
// documents nothing, so it cannot make a parameter optional (rule 2).
func listingSources(r *rawAction, sources []string) []string {
	lists := map[string]bool{}
	for _, rp := range r.Params {
		if notModelFacing[rp.Name] {
			continue
		}
		if strings.TrimSpace(rp.In) == "" {
			return sources
		}
		for _, s := range splitList(rp.In) {
			lists[s] = true
		}
	}
	var out []string
	for _, s := range sources {
		if lists[s] {
			out = append(out, s)
		}
	}
	return out
}

func buildParam(r *rawAction, rp rawParam, name string, sources, listing []string) (param, error) {
	p := param{line: rp.Line}
	p.Wire = name
	p.Description = strings.TrimSpace(rp.Description)
	p.Path, p.Array = wirePath(name)

	listedIn := sources
	if strings.TrimSpace(rp.In) != "" {
		listedIn = splitList(rp.In)
		for _, s := range listedIn {
			if !slices.Contains(sources, s) {
				return p, r.fail(rp.Line, "%s: In names %q, which is not one of the action's sources %v", name, s, sources)
			}
		}
	}
	// Rule 2: required only when every source lists it and marks it required.
	marks, err := perSource(rp.Required, listedIn)
	if err != nil {
		return p, r.fail(rp.Line, "%s: Required: %v", name, err)
	}
	allYes := true
	for _, s := range listedIn {
		v, err := yesNo(marks[s], false)
		if err != nil {
			return p, r.fail(rp.Line, "%s: Required for %s: %v", name, s, err)
		}
		allYes = allYes && v
	}
	p.Required = allYes
	for _, s := range listing {
		p.Required = p.Required && slices.Contains(listedIn, s)
	}

	if err := parseConstraints(rp.Constraints, &p); err != nil {
		return p, r.fail(rp.Line, "%s: Constraints: %v", name, err)
	}
	leaf := p.Path[len(p.Path)-1]
	if secretNames[leaf] {
		p.Secret = true
	}
	p.Enum = p.Constraints.Enum
	p.ServerID = isServerRef(leaf, p.Description)

	// Rule 5: types.
	types, err := perSource(rp.Type, listedIn)
	if err != nil {
		return p, r.fail(rp.Line, "%s: Type: %v", name, err)
	}
	p.Type, err = resolveType(leaf, p.Description, p.Constraints.Enum, types)
	if err != nil {
		return p, r.fail(rp.Line, "%s: Type: %v", name, err)
	}
	if p.Type == "array" {
		p.Array, p.Type = true, "string"
	}
	return p, nil
}

// perSource expands a cell that is either one value for all sources or `src:value ...`.
func perSource(cell string, sources []string) (map[string]string, error) {
	cell = strings.TrimSpace(cell)
	out := map[string]string{}
	if !strings.Contains(cell, ":") {
		for _, s := range sources {
			out[s] = cell
		}
		return out, nil
	}
	for _, f := range strings.Fields(cell) {
		// The last colon: a client source (tf@abc:internal/x.go) has one of its own.
		i := strings.LastIndex(f, ":")
		if i <= 0 {
			return nil, fmt.Errorf("%q: want `src:value` pairs", cell)
		}
		out[f[:i]] = f[i+1:]
	}
	for _, s := range sources {
		if _, ok := out[s]; !ok {
			// A mark given for the seed (e.g. 001) covers its variants (001#order).
			if v, ok := out[seedOf(s)]; ok {
				out[s] = v
				continue
			}
			return nil, fmt.Errorf("%q gives no value for source %s", cell, s)
		}
	}
	return out, nil
}

var idDescRE = regexp.MustCompile(`\bID\b`)

func resolveType(leaf, desc string, enum []string, bySource map[string]string) (string, error) {
	norm := map[string]string{}
	distinct := map[string]bool{}
	for s, raw := range bySource {
		raw = strings.ToLower(strings.TrimSpace(raw))
		// "string|boolean" and similar unions: the first type is what the wire carries.
		if i := strings.IndexAny(raw, "|/"); i > 0 {
			raw = raw[:i]
		}
		t, ok := typeAliases[raw]
		if !ok {
			return "", fmt.Errorf("unknown type %q (source %s)", raw, s)
		}
		norm[s] = t
		distinct[t] = true
	}
	if len(distinct) == 1 {
		for t := range distinct {
			return t, nil
		}
	}
	if distinct["integer"] && (leaf == "id" || strings.HasSuffix(leaf, "_id") || idDescRE.MatchString(desc)) {
		return "integer", nil
	}
	if len(enum) > 0 && !allNumeric(enum) {
		return "string", nil
	}
	srcs := make([]string, 0, len(norm))
	for s := range norm {
		srcs = append(srcs, s)
	}
	sort.Slice(srcs, func(i, j int) bool { return sourceRank[seedOf(srcs[i])] < sourceRank[seedOf(srcs[j])] })
	return norm[srcs[0]], nil
}

// wirePath maps a PHP wire name to the JSON path of the argument (rule 6).
func wirePath(wire string) (path []string, array bool) {
	base, rest, _ := strings.Cut(wire, "[")
	path = []string{base}
	if rest == "" {
		return path, false
	}
	for _, seg := range strings.Split("["+rest, "]") {
		seg = strings.TrimPrefix(seg, "[")
		if seg == "" {
			continue
		}
		path = append(path, seg)
	}
	return path, strings.HasSuffix(wire, "[]")
}

func parseConstraints(cell string, p *param) error {
	for _, f := range strings.Split(cell, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "secret" {
			p.Secret = true
			continue
		}
		if f == "hidden" {
			p.Constraints.Hidden = true
			continue
		}
		if f == "consequential" {
			p.Consequential = true
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is not `secret`, `hidden`, `consequential` or key=value", f)
		}
		v = strings.Trim(strings.TrimSpace(v), "`")
		c := &p.Constraints
		switch strings.TrimSpace(k) {
		case "enum":
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					c.Enum = append(c.Enum, e)
				}
			}
		case "minLength", "maxLength":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("%s=%q: want a whole number", k, v)
			}
			if k == "minLength" {
				c.MinLength = &n
			} else {
				c.MaxLength = &n
			}
		case "minimum", "maximum":
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return fmt.Errorf("%s=%q: want a number", k, v)
			}
			if k == "minimum" {
				c.Minimum = v
			} else {
				c.Maximum = v
			}
		case "pattern":
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("pattern %q: %v", v, err)
			}
			c.Pattern = v
		case "format":
			if v != "date" && v != "date-time" && v != "email" && v != "uri" && v != "ipv4" && v != "ipv6" {
				return fmt.Errorf("format %q: want date, date-time, email, uri, ipv4 or ipv6", v)
			}
			c.Format = v
		case "default":
			c.Default = v
		default:
			return fmt.Errorf("unknown constraint %q", k)
		}
	}
	return nil
}

func yesNo(v string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return def, nil
	case "yes", "y", "true", "✅", "*":
		return true, nil
	case "no", "n", "false", "❌", "-":
		return false, nil
	}
	return false, fmt.Errorf("%q: want yes or no", v)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// seedOf names the document a source belongs to: the seed (001 for 001#order) or the
// client (tf for tf@bc7212a:internal/invapi/pdns.go).
func seedOf(source string) string {
	if c, _, ok := strings.Cut(source, "@"); ok {
		return c
	}
	s, _, _ := strings.Cut(source, "#")
	return s
}

func allNumeric(ss []string) bool {
	for _, s := range ss {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return false
		}
	}
	return true
}

var serverDescRE = regexp.MustCompile(`(?i)\b(server|equipment)\b`)

// isServerRef applies rule 10: server_id and servers always name servers; id does when
// its description says it is a server's (or equipment's) ID.
func isServerRef(leaf, desc string) bool {
	switch leaf {
	case "server_id", "servers":
		return true
	case "id":
		return serverDescRE.MatchString(desc) && !regexp.MustCompile(`(?i)\b(key|invoice|contact|backup|user|plan|task|preset|os|software)\b`).MatchString(desc)
	}
	return false
}
