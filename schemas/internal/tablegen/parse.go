// Package tablegen turns the Markdown parameter tables under schemas/tables into the
// generated catalog: catalog.json and one JSON Schema per tool. The rules it applies are
// documented in schemas/README.md. Of this module it imports only schemas.
package tablegen

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// rawModule is one tables/<module>.md file as written, before any rule is applied.
type rawModule struct {
	File     string
	Name     string
	Endpoint string
	Toolset  string
	Actions  []*rawAction
	// Undocumented rows come only from the _undocumented.md file.
	Undocumented []rawUndocumented
	// Vendor rows come only from _vendor.md: the vendor's MCP tools and our actions.
	Vendor []rawVendor
}

type rawVendor struct {
	Line   int
	Tool   string // the vendor's tool name
	Action string // module/action, or a tool outside the catalog (invapi_call)
	Source string // the vendor file at a commit
}

type rawAction struct {
	File        string
	Line        int
	Module      string
	Action      string
	Description string
	Facts       map[string]string
	Notes       []string
	Params      []rawParam
}

type rawParam struct {
	Line        int
	Name        string
	Required    string
	Type        string
	In          string
	Constraints string
	Description string
}

type rawUndocumented struct {
	Line   int
	Action string
	Class  string
	Note   string
}

// parseError points at the file and line a maintainer must fix.
type parseError struct {
	File string
	Line int
	Msg  string
}

func (e *parseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

var paramHeader = []string{"parameter", "required", "type", "in", "constraints", "description"}

// parseModule reads one table file.
func parseModule(file string, data []byte) (*rawModule, error) {
	m := &rawModule{File: file}
	var cur *rawAction
	var tableHeader []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	fail := func(format string, args ...any) error {
		return &parseError{File: file, Line: n, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "# "):
			if m.Name != "" {
				return nil, fail("second module heading %q", line)
			}
			m.Name = strings.TrimSpace(line[2:])
			cur = nil
		case strings.HasPrefix(line, "## "):
			name := strings.TrimSpace(line[3:])
			mod, act, ok := strings.Cut(name, "/")
			if !ok || mod == "" || act == "" {
				return nil, fail("action heading %q is not <module>/<action>", name)
			}
			cur = &rawAction{File: file, Line: n, Module: mod, Action: act, Facts: map[string]string{}}
			m.Actions = append(m.Actions, cur)
			tableHeader = nil
		case strings.HasPrefix(trimmed, "- ") && !strings.HasPrefix(trimmed, "|"):
			k, v, ok := strings.Cut(strings.TrimSpace(trimmed[2:]), ":")
			if !ok {
				return nil, fail("fact %q is not `- key: value`", trimmed)
			}
			k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
			switch {
			case cur == nil && k == "endpoint":
				m.Endpoint = v
			case cur == nil && k == "toolset":
				m.Toolset = v
			case cur == nil:
				// Module prose lists are allowed; only known facts matter.
			case k == "note":
				cur.Notes = append(cur.Notes, v)
			default:
				if _, dup := cur.Facts[k]; dup {
					return nil, fail("fact %q given twice", k)
				}
				cur.Facts[k] = v
			}
		case strings.HasPrefix(trimmed, "|"):
			cells := splitRow(trimmed)
			if isSeparator(cells) {
				continue
			}
			if tableHeader == nil {
				tableHeader = lower(cells)
				continue
			}
			if len(cells) != len(tableHeader) {
				return nil, fail("row has %d cells, header has %d", len(cells), len(tableHeader))
			}
			if cur == nil {
				switch {
				case equal(tableHeader, []string{"action", "class", "note"}):
					m.Undocumented = append(m.Undocumented, rawUndocumented{Line: n, Action: cells[0], Class: cells[1], Note: cells[2]})
				case equal(tableHeader, []string{"vendor tool", "action", "source"}):
					m.Vendor = append(m.Vendor, rawVendor{Line: n, Tool: cells[0], Action: cells[1], Source: cells[2]})
				default:
					return nil, fail("table outside an action section")
				}
				continue
			}
			if !equal(tableHeader, paramHeader) {
				return nil, fail("parameter table header must be %q", strings.Join(paramHeader, " | "))
			}
			cur.Params = append(cur.Params, rawParam{Line: n, Name: cells[0], Required: cells[1], Type: cells[2], In: cells[3], Constraints: cells[4], Description: cells[5]})
		case trimmed == "":
			if cur != nil && len(cur.Params) > 0 {
				tableHeader = nil
			}
		default:
			if cur != nil && len(cur.Params) == 0 && len(cur.Facts) == 0 {
				if cur.Description != "" {
					cur.Description += " "
				}
				cur.Description += trimmed
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if m.Name == "" {
		return nil, &parseError{File: file, Line: 1, Msg: "missing `# <module>` heading"}
	}
	return m, nil
}

// splitRow splits a Markdown table row on unescaped pipes and unescapes `\|`.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	if strings.HasSuffix(row, "|") && !strings.HasSuffix(row, `\|`) {
		row = row[:len(row)-1]
	}
	var cells []string
	var b strings.Builder
	for i := 0; i < len(row); i++ {
		c := row[i]
		if c == '\\' && i+1 < len(row) && row[i+1] == '|' {
			b.WriteByte('|')
			i++
			continue
		}
		if c == '|' {
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
			continue
		}
		b.WriteByte(c)
	}
	cells = append(cells, strings.TrimSpace(b.String()))
	for i, c := range cells {
		cells[i] = strings.Trim(c, "`")
	}
	return cells
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, "-: ") != "" {
			return false
		}
	}
	return true
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
