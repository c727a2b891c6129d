package policy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// settingName is a command-line flag (--name) or an environment variable (HOSTKEY_*).
var settingName = regexp.MustCompile(`(^|[^\w-])--[a-z][a-z0-9-]+|HOSTKEY_[A-Z_]+`)

// TestPolicyNamesNoSetting keeps the policy's messages free of the binary's flags and
// environment variables: the wiring supplies them (Options.Hints) and wraps the errors,
// so renaming a flag is one change in cmd. Comments may name them; string literals may not.
func TestPolicyNamesNoSetting(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	sub, _ := filepath.Glob("*/*.go")
	fset := token.NewFileSet()
	for _, name := range append(files, sub...) {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if m := settingName.FindString(lit.Value); m != "" {
					t.Errorf("%s names the setting %q: let the wiring supply it (Options.Hints) or wrap the error", fset.Position(lit.Pos()), strings.TrimSpace(m))
				}
			}
			return true
		})
	}
}
