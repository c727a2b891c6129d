package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// The policy validates every tool call's arguments against the tool's input schema
// itself, before anything else: mcp-go's own validation (WithInputSchemaValidation)
// runs before any middleware, so its rejects were never audited, it skips the task
// path, and its messages are Go struct dumps that echo secrets. Here each problem is one
// line in words naming the field, and the value of a secret field is never repeated.

// schemaCache keeps compiled input schemas by tool name, recompiled when a tool's
// schema changes.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]compiledSchema
}

type compiledSchema struct {
	sum       [32]byte
	sch       *jsonschema.Schema // nil: the schema does not compile; not validated
	writeOnly map[string]bool    // property names the schema marks writeOnly (secrets)
}

func (c *schemaCache) get(name string, raw []byte) compiledSchema {
	sum := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[name]; ok && e.sum == sum {
		return e
	}
	e := compiledSchema{sum: sum, writeOnly: map[string]bool{}}
	if doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw)); err == nil {
		comp := jsonschema.NewCompiler()
		url := "mem:///hostkey-mcp/tools/" + name + ".json"
		if comp.AddResource(url, doc) == nil {
			e.sch, _ = comp.Compile(url)
		}
		collectWriteOnly(doc, e.writeOnly)
	}
	if c.m == nil {
		c.m = map[string]compiledSchema{}
	}
	c.m[name] = e
	return e
}

// collectWriteOnly finds the properties marked writeOnly at any depth.
func collectWriteOnly(doc any, into map[string]bool) {
	m, ok := doc.(map[string]any)
	if !ok {
		return
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for k, p := range props {
			if pm, ok := p.(map[string]any); ok && pm["writeOnly"] == true {
				into[k] = true
			}
			collectWriteOnly(p, into)
		}
	}
	if items, ok := m["items"]; ok {
		collectWriteOnly(items, into)
	}
}

// ToolSchema returns the JSON input schema of the tool registered on ctx's server (nil
// when there is none): what the argument check validates against, and where the
// callback middleware (tools/events) looks for post_install_callback.
func ToolSchema(ctx context.Context, name string) []byte {
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	st := srv.GetTool(name)
	if st == nil {
		return nil
	}
	if len(st.Tool.RawInputSchema) > 0 {
		return st.Tool.RawInputSchema
	}
	is := st.Tool.InputSchema
	if is.Type == "" && len(is.Properties) == 0 && len(is.Required) == 0 && is.AdditionalProperties == nil {
		return nil
	}
	b, err := json.Marshal(is)
	if err != nil {
		return nil
	}
	return b
}

// checkArgs validates a call's arguments; it returns one line per problem, none when
// they fit (or the tool has no usable schema), and the names the schema marks writeOnly.
// secret tells which other names hold secrets.
func (e *Engine) checkArgs(ctx context.Context, req mcp.CallToolRequest, secret func(name string) bool) (lines []string, writeOnly []string) {
	raw := ToolSchema(ctx, req.Params.Name)
	if raw == nil {
		return nil, nil
	}
	cs := e.schemas.get(req.Params.Name, raw)
	for k := range cs.writeOnly {
		writeOnly = append(writeOnly, k)
	}
	if cs.sch == nil {
		return nil, writeOnly
	}
	return e.problems(cs.sch, req, func(name string) bool { return cs.writeOnly[name] || secret(name) }), writeOnly
}

func (e *Engine) problems(sch *jsonschema.Schema, req mcp.CallToolRequest, secret func(name string) bool) []string {
	var inst any = map[string]any{}
	switch a := req.Params.Arguments.(type) {
	case nil:
	case json.RawMessage:
		if len(bytes.TrimSpace(a)) > 0 {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(a))
			if err != nil {
				return []string{"the arguments are not valid JSON"}
			}
			inst = v
		}
	default:
		b, err := json.Marshal(a)
		if err != nil {
			return []string{"the arguments cannot be read as JSON"}
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return []string{"the arguments cannot be read as JSON"}
		}
		inst = v
	}
	err := sch.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []string{"the arguments could not be checked against the tool's schema"}
	}
	var lines []string
	seen := map[string]bool{}
	var walk func(v *jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		l := describeProblem(v, inst, secret)
		if l != "" && !seen[l] {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	walk(verr)
	if _, ok := inst.(map[string]any); !ok {
		return []string{"the arguments must be a JSON object"}
	}
	sort.Strings(lines)
	return lines
}

// describeProblem renders one schema violation in words.
func describeProblem(v *jsonschema.ValidationError, inst any, secret func(string) bool) string {
	field := strings.Join(v.InstanceLocation, ".")
	leaf := ""
	if n := len(v.InstanceLocation); n > 0 {
		leaf = v.InstanceLocation[n-1]
	}
	hidden := secret(leaf)
	got := func() string {
		if hidden {
			return ""
		}
		return ", got " + shortValue(valueAt(inst, v.InstanceLocation))
	}
	name := strconv.Quote(field)
	switch k := v.ErrorKind.(type) {
	case *kind.Required:
		var out []string
		for _, m := range k.Missing {
			out = append(out, "missing required argument "+strconv.Quote(join(field, m)))
		}
		return strings.Join(out, "; ")
	case *kind.AdditionalProperties:
		var out []string
		for _, p := range k.Properties {
			out = append(out, "unknown argument "+strconv.Quote(join(field, p))+" (not in this tool's input schema)")
		}
		return strings.Join(out, "; ")
	case *kind.Type:
		return fmt.Sprintf("%s must be %s%s", name, typeWords(k.Want), got())
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			b, _ := json.Marshal(w)
			want = append(want, string(b))
		}
		return fmt.Sprintf("%s must be one of %s%s", name, strings.Join(want, ", "), got())
	case *kind.Const:
		return fmt.Sprintf("%s has a fixed value it does not match%s", name, got())
	case *kind.Pattern:
		return fmt.Sprintf("%s %s", name, patternWords(k.Want))
	case *kind.MinLength:
		return fmt.Sprintf("%s must be at least %d characters long (it is %d)", name, k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("%s must be at most %d characters long (it is %d)", name, k.Want, k.Got)
	case *kind.Minimum:
		return fmt.Sprintf("%s must be at least %s%s", name, ratWords(k.Want), got())
	case *kind.Maximum:
		return fmt.Sprintf("%s must be at most %s%s", name, ratWords(k.Want), got())
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("%s must be greater than %s%s", name, ratWords(k.Want), got())
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("%s must be less than %s%s", name, ratWords(k.Want), got())
	case *kind.MultipleOf:
		return fmt.Sprintf("%s must be a multiple of %s%s", name, ratWords(k.Want), got())
	case *kind.MinItems:
		return fmt.Sprintf("%s must have at least %d items (it has %d)", name, k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("%s must have at most %d items (it has %d)", name, k.Want, k.Got)
	case *kind.UniqueItems:
		return fmt.Sprintf("%s must not repeat items (items %d and %d are equal)", name, k.Duplicates[0], k.Duplicates[1])
	case *kind.Format:
		return fmt.Sprintf("%s must be a valid %s%s", name, k.Want, got())
	case *kind.FalseSchema:
		return fmt.Sprintf("%s is not allowed", name)
	}
	if field == "" {
		return "the arguments do not fit the tool's input schema"
	}
	return fmt.Sprintf("%s does not fit the tool's input schema", name)
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func typeWords(want []string) string {
	var out []string
	for _, w := range want {
		switch w {
		case "integer", "object", "array":
			out = append(out, "an "+w)
		case "null":
			out = append(out, "null")
		default:
			out = append(out, "a "+w)
		}
	}
	return strings.Join(out, " or ")
}

var notCharsRE = regexp.MustCompile(`^\^\[\^([^\]\\]+)\]\*\$$`)

// patternWords says what a pattern demands, in words for the simple "none of these
// characters" case, else the pattern itself. It never repeats the value.
func patternWords(p string) string {
	if m := notCharsRE.FindStringSubmatch(p); m != nil {
		var cs []string
		for _, r := range m[1] {
			cs = append(cs, string(r))
		}
		if len(cs) == 1 {
			return "must not contain " + cs[0]
		}
		return "must not contain " + strings.Join(cs[:len(cs)-1], ", ") + " or " + cs[len(cs)-1]
	}
	return "must match the pattern " + p
}

func ratWords(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}

func valueAt(inst any, path []string) any {
	v := inst
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// shortValue shows a (non-secret) value briefly: a long one by its length.
func shortValue(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case string:
		if len(x) > 60 || hidesText(x) {
			return fmt.Sprintf("a string of %d bytes", len(x))
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return fmt.Sprintf("a value of %d bytes", len(b))
	}
	return string(b)
}

// invalidCall refuses a call whose arguments do not fit its tool, and audits it with
// the arguments redacted.
func (e *Engine) invalidCall(ctx context.Context, req mcp.CallToolRequest) *mcp.CallToolResult {
	call := &Call{Tool: req.Params.Name, Args: req.GetArguments()}
	if a, ok := e.action(call); ok {
		call.Module, call.Action, call.Class = a.Module, a.Action, a.Class
	}
	secrets := e.secretFields(call)
	lines, writeOnly := e.checkArgs(ctx, req, func(name string) bool { return invapi.IsSecretKey(name, secrets...) })
	if len(lines) == 0 {
		return nil
	}
	// The audit line redacts by the catalog's secrets; the schema may mark more.
	call.Args = invapi.RedactParams(call.Args, writeOnly...)
	t := &turn{call: call, class: e.ClassOf(call), start: e.now()}
	t.session, t.client, _, _ = clientView(ctx)
	text := fmt.Sprintf("Invalid arguments for %s; nothing was sent:\n- %s", req.Params.Name, strings.Join(lines, "\n- "))
	return e.refuse(t, DecisionInvalid, text, map[string]any{"invalid": true, "problems": lines})
}
