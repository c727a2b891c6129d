package main

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/hostkey/hostkey-mcp"

// layer ranks the top-level folders (README, "Layout"): a package may import packages of
// its own folder and of lower layers only. schemas, state and testdata are leaves; policy
// and webhook share a layer and so may not import each other; nothing imports cmd.
var layer = map[string]int{
	"schemas": 0, "state": 0, "testdata": 0,
	"invapi": 1,
	"policy": 2, "webhook": 2,
	"tools": 3,
	"cmd":   4,
}

// forbidden are imports inside one folder that the layering alone would allow.
var forbidden = map[string]string{
	"invapi/sim": "invapi", // the client's tests import the simulator
}

// assemblerUsers may import tools/stack, the one assembler: the wiring and the test
// helper; the packages it assembles may not.
var assemblerUsers = map[string]bool{"cmd/hostkey-mcp": true, "tools/toolstest": true}

// TestLayout walks the module's packages: each opens with a doc comment that says its
// job and what it may import, and imports nothing against the direction
// cmd → tools → policy/webhook → invapi → schemas (state a leaf beside schemas);
// webhook depends on no MCP code, and invapi/httpx on nothing of the module.
func TestLayout(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p struct {
			ImportPath, Name, Doc, Dir string
			Imports, GoFiles, Deps     []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		rank, known := layer[top]
		if !known {
			t.Errorf("%s: top-level folder %q is not in the layout: add it to layer here and a line to the README's layout section", rel, top)
			continue
		}
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: no package doc comment (want %q… saying its one job)", rel, want)
		} else if full := docOf(t, p.Dir, p.GoFiles); !strings.Contains(full, "import") {
			t.Errorf("%s: the doc comment does not say what it may import", rel)
		}
		for _, d := range p.Deps {
			// webhook is HTTP ingress only: what speaks MCP lives in tools/events.
			if (top == "webhook") && strings.HasPrefix(d, "github.com/mark3labs/mcp-go") {
				t.Errorf("%s depends on %s: keep MCP code out of webhook (tools/events)", rel, d)
			}
			// httpx is a leaf, so every layer may import it.
			if rel == "invapi/httpx" && strings.HasPrefix(d, module+"/") {
				t.Errorf("invapi/httpx depends on %s: it must import nothing of this module", d)
			}
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			irel := strings.TrimPrefix(imp, module+"/")
			itop, _, _ := strings.Cut(irel, "/")
			if forbidden[rel] == irel {
				t.Errorf("%s imports %s: not allowed (see forbidden)", rel, irel)
			}
			if irel == "tools/stack" && !assemblerUsers[rel] {
				t.Errorf("%s imports tools/stack: only %v may (the assembler sits above what it assembles)", rel, assemblerUsers)
			}
			if itop == top {
				continue
			}
			if irank, ok := layer[itop]; !ok || irank >= rank {
				t.Errorf("%s imports %s: against the layering (%s is layer %d, %s layer %d)", rel, irel, top, rank, itop, irank)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found %d packages", n)
	}
}

// docOf is the whole package comment (go list's Doc is its first sentence).
func docOf(t *testing.T, dir string, files []string) string {
	var doc strings.Builder
	for _, f := range files {
		pf, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if pf.Doc != nil {
			doc.WriteString(pf.Doc.Text())
		}
	}
	return doc.String()
}
