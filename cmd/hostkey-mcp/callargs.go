package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// schemaOf returns a tool's input schema as a generic JSON object.
func schemaOf(t mcp.Tool) map[string]any {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil
	}
	var v struct {
		InputSchema map[string]any `json:"inputSchema"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.InputSchema
}

// schemaTypes lists the JSON types a property allows ("type": "x" or ["x", "y"]).
func schemaTypes(prop map[string]any) []string {
	switch t := prop["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// applyKV sets key=value pairs in args, typed by the tool's input schema: a string field
// keeps "40101" a string, an integer field gets 40101, arrays take a,b or repeated keys,
// dotted keys reach nested objects. Keys the schema does not know keep the old guess
// (number, boolean or string) and are left for the server's validation to judge.
func applyKV(schema map[string]any, args map[string]any, kvs []string) error {
	seen := map[string]bool{}
	for _, kv := range kvs {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return fmt.Errorf("argument %q: want key=value (or --args JSON)", kv)
		}
		parts := strings.Split(key, ".")
		m, props := args, properties(schema)
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
			if sub, ok := props[p].(map[string]any); ok {
				props = properties(sub)
			} else {
				props = nil
			}
		}
		leaf := parts[len(parts)-1]
		prop, known := props[leaf].(map[string]any)
		if !known {
			if seen[key] {
				return fmt.Errorf("%s is given twice", key)
			}
			seen[key] = true
			m[leaf] = parseScalar(val)
			continue
		}
		types := schemaTypes(prop)
		if slices.Contains(types, "array") {
			items, _ := prop["items"].(map[string]any)
			var list []any
			if strings.HasPrefix(strings.TrimSpace(val), "[") {
				if err := json.Unmarshal([]byte(val), &list); err != nil {
					return fmt.Errorf("%s: %q is not a JSON array (or write a,b)", key, val)
				}
			} else {
				for _, part := range strings.Split(val, ",") {
					x, err := typed(key, strings.TrimSpace(part), schemaTypes(items))
					if err != nil {
						return err
					}
					list = append(list, x)
				}
			}
			if prev, ok := m[leaf].([]any); ok && seen[key] {
				list = append(prev, list...) // repeated key: ids=1 ids=2
			}
			seen[key] = true
			m[leaf] = list
			continue
		}
		if seen[key] {
			return fmt.Errorf("%s is given twice (it takes one value)", key)
		}
		seen[key] = true
		x, err := typed(key, val, types)
		if err != nil {
			return err
		}
		m[leaf] = x
	}
	return nil
}

func properties(schema map[string]any) map[string]any {
	p, _ := schema["properties"].(map[string]any)
	return p
}

// typed converts one value to the first of types it fits; a field that allows strings
// takes the text as is when nothing else fits.
func typed(key, val string, types []string) (any, error) {
	if len(types) == 0 {
		return parseScalar(val), nil
	}
	for _, t := range types {
		switch t {
		case "integer":
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				return n, nil
			}
		case "number":
			if f, err := strconv.ParseFloat(val, 64); err == nil {
				return f, nil
			}
		case "boolean":
			if b, err := strconv.ParseBool(val); err == nil {
				return b, nil
			}
		case "null":
			if val == "null" {
				return nil, nil
			}
		case "object":
			var obj map[string]any
			if json.Unmarshal([]byte(val), &obj) == nil {
				return obj, nil
			}
		}
	}
	if slices.Contains(types, "string") {
		return val, nil
	}
	want := map[string]string{"integer": "an integer", "number": "a number", "boolean": "true or false", "object": `a JSON object (or use --args '{"` + key + `": {…}}')`, "null": "null"}
	var words []string
	for _, t := range types {
		if w, ok := want[t]; ok {
			words = append(words, w)
		} else {
			words = append(words, t)
		}
	}
	return nil, fmt.Errorf("%s=%q: want %s", key, val, strings.Join(words, " or "))
}

// callHelp prints `call --help`, and with a tool name (call eq_show --help) the tool's
// parameters as its schema gives them.
func callHelp(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) {
	c, _ := findCommand("call")
	commandHelp(stdout, c)
	var tool string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
			tool = a
			break
		}
	}
	if tool == "" {
		return
	}
	cfg, _, err := parseConfig("hostkey-mcp call", []string{"--sandbox", "--toolsets", "all,workflows", "--log-level", "error"}, getenv, io.Discard)
	if err != nil {
		return
	}
	list, err := listTools(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stdout, "\n(could not list the tools: %v)\n", err)
		return
	}
	for _, t := range list {
		if t.Name == tool {
			printToolParams(stdout, t)
			return
		}
	}
	fmt.Fprintf(stdout, "\nNo tool %q.%s\n", tool, suggestText(tool, toolNames(list)))
}

func printToolParams(w io.Writer, t mcp.Tool) {
	schema := schemaOf(t)
	props := properties(schema)
	req := requiredSet(schema)
	names := requiredFirst(props, req)
	fmt.Fprintf(w, "\n%s: %s\n\nParameters:\n", t.Name, t.Description)
	if len(names) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, n := range names {
		p, _ := props[n].(map[string]any)
		typ := strings.Join(schemaTypes(p), "|")
		if typ == "array" {
			if items, ok := p["items"].(map[string]any); ok {
				typ = strings.Join(schemaTypes(items), "|") + "[] (a,b)"
			}
		}
		flags := ""
		if req[n] {
			flags = ", required"
		}
		desc, _ := p["description"].(string)
		fmt.Fprintf(w, "  %s (%s%s) %s\n", n, typ, flags, desc)
	}
}

func toolNames(list []mcp.Tool) []string {
	var out []string
	for _, t := range list {
		out = append(out, t.Name)
	}
	return out
}
