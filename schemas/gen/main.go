// Command gen regenerates the catalog from schemas/tables: catalog.json, tools/*.schema.json
// and the capability table of schemas/README.md. Run it with `make gen` or `go generate ./schemas/`.
// It imports schemas/internal/tablegen.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hostkey/hostkey-mcp/schemas/internal/tablegen"
)

func main() {
	root := flag.String("root", "..", "repository root (go generate runs in schemas/)")
	flag.Parse()
	files, cat, err := tablegen.Generate(os.DirFS(filepath.Join(*root, "schemas", "tables")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	// Remove schemas of tools that no longer exist, so the directory mirrors the catalog.
	old, _ := filepath.Glob(filepath.Join(*root, tablegen.ToolsDir, "*.schema.json"))
	for _, f := range old {
		rel, _ := filepath.Rel(*root, f)
		if _, keep := files[filepath.ToSlash(rel)]; !keep {
			if err := os.Remove(f); err != nil {
				fmt.Fprintln(os.Stderr, "gen:", err)
				os.Exit(1)
			}
		}
	}
	// The capability table in schemas/README.md sits between markers in a hand-written file.
	readme := filepath.Join(*root, filepath.FromSlash(tablegen.ReadmePath))
	old2, err := os.ReadFile(readme)
	if err == nil {
		files[tablegen.ReadmePath], err = tablegen.SpliceReadme(old2, cat)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(*root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "gen: %d actions, %d undocumented, %d files\n", len(cat.Actions), len(cat.Undocumented), len(files))
}
