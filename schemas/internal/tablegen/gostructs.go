package tablegen

import (
	"bytes"
	"fmt"
	"go/format"
	"strings"
)

// initialisms keep Go names idiomatic (ServerID, not ServerId).
var initialisms = map[string]string{
	"id": "ID", "ip": "IP", "ips": "IPs", "os": "OS", "url": "URL", "pxe": "PXE", "ssh": "SSH",
	"pin": "PIN", "ipmi": "IPMI", "api": "API", "ptr": "PTR", "vlan": "VLAN", "asn": "ASN",
	"dns": "DNS", "nat": "NAT", "mac": "MAC", "vm": "VM", "pdf": "PDF", "whmcs": "WHMCS",
	"ttl": "TTL", "json": "JSON", "gw": "GW", "http": "HTTP",
}

func goName(parts ...string) string {
	var b strings.Builder
	for _, part := range parts {
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
			if up, ok := initialisms[strings.ToLower(w)]; ok {
				b.WriteString(up)
				continue
			}
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

var goTypes = map[string]string{"integer": "int64", "string": "string", "boolean": "bool", "number": "float64", "object": "map[string]any"}

// goParams renders typed parameter structs for the invapi client. Optional scalars other
// than strings are pointers so that "not given" differs from a zero value.
func goParams(actions []*action) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// %s\n\n", Header)
	b.WriteString("package invapi\n\n")
	for _, a := range actions {
		typ := goName(a.Tool) + "Params"
		fmt.Fprintf(&b, "// %s are the parameters of %s/%s: %s\n", typ, a.Module, a.Action.Action, oneLine(a.Description))
		fmt.Fprintf(&b, "type %s struct {\n", typ)
		fields := map[string]bool{}
		for _, p := range a.params {
			f := goName(p.Path...)
			if fields[f] {
				return nil, fmt.Errorf("%s: Go field %s twice", a.Tool, f)
			}
			fields[f] = true
			t := goTypes[p.Type]
			switch {
			case p.Array:
				t = "[]" + t
			case !p.Required && p.Type != "string" && p.Type != "object":
				t = "*" + t
			}
			if p.Description != "" {
				fmt.Fprintf(&b, "\t// %s", oneLine(p.Description))
				if p.Required {
					b.WriteString(" (required)")
				}
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "\t%s %s\n", f, t)
		}
		if a.PIN {
			if fields["PIN"] {
				return nil, fmt.Errorf("%s: PIN field clashes", a.Tool)
			}
			b.WriteString("\t// PIN is the account PIN; the policy supplies it after a human confirms.\n\tPIN string\n")
		}
		b.WriteString("}\n\n")

		fmt.Fprintf(&b, "// Request builds the invapi request for %s/%s.\n", a.Module, a.Action.Action)
		fmt.Fprintf(&b, "func (p *%s) Request() *Request {\n\tv := map[string]any{}\n", typ)
		for _, p := range a.params {
			f := "p." + goName(p.Path...)
			set := fmt.Sprintf("setPath(v, %#v, %s)", p.Path, f)
			switch {
			case p.Array || p.Type == "object":
				fmt.Fprintf(&b, "\tif %s != nil {\n\t\t%s\n\t}\n", f, set)
			case p.Type == "string" && !p.Required:
				fmt.Fprintf(&b, "\tif %s != \"\" {\n\t\t%s\n\t}\n", f, set)
			case !p.Required:
				fmt.Fprintf(&b, "\tif %s != nil {\n\t\tsetPath(v, %#v, *%s)\n\t}\n", f, p.Path, f)
			default:
				fmt.Fprintf(&b, "\t%s\n", set)
			}
		}
		if a.PIN {
			fmt.Fprintf(&b, "\tif p.PIN != \"\" {\n\t\tv[%q] = p.PIN\n\t}\n", a.PINWire())
		}
		fmt.Fprintf(&b, "\treturn &Request{Module: %q, Action: %q, Endpoint: %q, Method: %q, ReadOnly: %t, NoAuth: %t, Params: v}\n}\n\n",
			a.Module, a.Action.Action, a.Endpoint, a.Method(), a.ReadOnly(), a.NoAuth)
	}
	b.WriteString(`// setPath stores val at the nested path, creating maps on the way; the form encoder
// turns the nesting into PHP-style names (params[location]).
func setPath(v map[string]any, path []string, val any) {
	for _, k := range path[:len(path)-1] {
		next, ok := v[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			v[k] = next
		}
		v = next
	}
	v[path[len(path)-1]] = val
}
`)
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated Go does not format: %v", err)
	}
	return src, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
