package tablegen

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"
)

// inputSchema builds the model-facing JSON Schema of one action (rules 3, 6, 7):
// additionalProperties false at every level, secrets writeOnly, PHP nesting as JSON
// objects and arrays.
func inputSchema(a *action) (*jsonschema.Schema, error) {
	root := newObject()
	for _, p := range a.params {
		if p.Constraints.Hidden {
			continue
		}
		if err := place(root, p.Path, p); err != nil {
			return nil, (&rawAction{File: a.Tool, Module: a.Module, Action: a.Action.Action}).fail(p.line, "%v", err)
		}
	}
	return root, nil
}

func newObject() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:                 "object",
		Properties:           orderedmap.New[string, *jsonschema.Schema](),
		AdditionalProperties: jsonschema.FalseSchema,
	}
}

// place puts p at path inside obj, creating intermediate objects.
func place(obj *jsonschema.Schema, path []string, p param) error {
	name := path[0]
	if len(path) == 1 {
		if _, dup := obj.Properties.Get(name); dup {
			return fmt.Errorf("%s: %q defined twice", p.Wire, name)
		}
		leaf, err := leafSchema(p)
		if err != nil {
			return err
		}
		obj.Properties.Set(name, leaf)
		if p.Required {
			obj.Required = append(obj.Required, name)
		}
		return nil
	}
	child, ok := obj.Properties.Get(name)
	if !ok {
		child = newObject()
		obj.Properties.Set(name, child)
	}
	if child.Type != "object" || child.Properties == nil {
		return fmt.Errorf("%s: %q is both a value and an object", p.Wire, name)
	}
	if p.Required && !containsString(obj.Required, name) {
		obj.Required = append(obj.Required, name)
	}
	return place(child, path[1:], p)
}

func leafSchema(p param) (*jsonschema.Schema, error) {
	s := &jsonschema.Schema{Type: p.Type, Description: p.Description, WriteOnly: p.Secret}
	c := p.Constraints
	for _, e := range c.Enum {
		v, err := typed(p.Type, e)
		if err != nil {
			return nil, fmt.Errorf("%s: enum value %q: %v", p.Wire, e, err)
		}
		s.Enum = append(s.Enum, v)
	}
	s.MinLength, s.MaxLength, s.Pattern, s.Format = c.MinLength, c.MaxLength, c.Pattern, c.Format
	s.Minimum, s.Maximum = json.Number(c.Minimum), json.Number(c.Maximum)
	if c.Default != "" {
		v, err := typed(p.Type, c.Default)
		if err != nil {
			return nil, fmt.Errorf("%s: default %q: %v", p.Wire, c.Default, err)
		}
		s.Default = v
	}
	if p.Type == "object" {
		// A free-form object the docs do not break down further.
		s.AdditionalProperties = nil
	}
	if p.Array {
		return &jsonschema.Schema{Type: "array", Description: s.Description, WriteOnly: s.WriteOnly, Items: stripDoc(s)}, nil
	}
	return s, nil
}

func stripDoc(s *jsonschema.Schema) *jsonschema.Schema {
	c := *s
	c.Description, c.WriteOnly = "", false
	return &c
}

func typed(typ, v string) (any, error) {
	switch typ {
	case "integer":
		return strconv.ParseInt(v, 10, 64)
	case "number":
		return strconv.ParseFloat(v, 64)
	case "boolean":
		return strconv.ParseBool(v)
	}
	return v, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
