package tablegen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hostkey/hostkey-mcp/schemas"
)

func demoCatalog(t *testing.T) (*schemas.Catalog, map[string][]byte) {
	t.Helper()
	files, cat, err := Generate(os.DirFS("testdata/tables"))
	if err != nil {
		t.Fatal(err)
	}
	return cat, files
}

func TestRulesOnDemoTable(t *testing.T) {
	cat, _ := demoCatalog(t)
	a, ok := cat.Tool("demo_order")
	if !ok {
		t.Fatal("demo_order missing")
	}
	if !a.PIN || !a.Async || a.Class != schemas.Destructive || a.Idempotent {
		t.Fatalf("facts: pin=%v async=%v class=%v idempotent=%v", a.PIN, a.Async, a.Class, a.Idempotent)
	}
	if !reflect.DeepEqual(a.Methods, []string{"POST", "GET"}) {
		t.Fatalf("methods %v", a.Methods)
	}
	var s map[string]any
	if err := json.Unmarshal(a.InputSchema, &s); err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	for _, hidden := range []string{"token", "pin", "action"} {
		if _, ok := props[hidden]; ok {
			t.Errorf("%s is model-facing", hidden)
		}
	}
	if s["additionalProperties"] != false {
		t.Errorf("additionalProperties = %v", s["additionalProperties"])
	}
	typ := func(name string) string { return props[name].(map[string]any)["type"].(string) }
	// Rule 5: an ID is an integer; a non-numeric enum is a string; otherwise the newest source.
	if typ("id") != "integer" || typ("media") != "string" || typ("count") != "string" {
		t.Errorf("types id=%s media=%s count=%s", typ("id"), typ("media"), typ("count"))
	}
	// Rule 2: required only when every source lists and requires it.
	req := map[string]bool{}
	for _, r := range s["required"].([]any) {
		req[r.(string)] = true
	}
	want := map[string]bool{"id": true, "count": true, "root_pass": true, "params": true}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("required = %v, want %v", req, want)
	}
	// Rule 7: root_pass is secret wherever it appears.
	if props["root_pass"].(map[string]any)["writeOnly"] != true {
		t.Error("root_pass not writeOnly")
	}
	// Rule 6: PHP names become objects and arrays.
	params := props["params"].(map[string]any)
	if params["type"] != "object" || params["additionalProperties"] != false {
		t.Errorf("params = %v", params)
	}
	if got := params["required"]; !reflect.DeepEqual(got, []any{"location"}) {
		t.Errorf("params.required = %v", got)
	}
	group := props["group"].(map[string]any)
	if group["type"] != "array" || group["items"].(map[string]any)["type"] != "integer" {
		t.Errorf("group = %v", group)
	}
	days := props["backup_schedule"].(map[string]any)["properties"].(map[string]any)["days"].(map[string]any)
	if days["type"] != "array" {
		t.Errorf("backup_schedule.days = %v", days)
	}
	// Rule 11: hidden parameters are not model-facing.
	if _, ok := props["rack"]; ok {
		t.Error("hidden parameter rack is model-facing")
	}
	// Rule 8: the lost name is email.
	if _, ok := props["email"]; !ok {
		t.Error("email not recovered")
	}
}

func TestGeneratedGoHasPIN(t *testing.T) {
	_, files := demoCatalog(t)
	src := string(files[ParamsPath])
	for _, want := range []string{"type DemoOrderParams struct", "PIN string", "Params: v}", "Group []int64", "ParamsLocation string", "Rack string"} {
		if !strings.Contains(src, want) {
			t.Errorf("generated Go lacks %q", want)
		}
	}
	if !strings.HasPrefix(src, "// "+Header) {
		t.Error("generated Go lacks the header")
	}
}

func TestTableErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]string{
		"bad class":     "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: maybe\n- sources: 000\n",
		"bad source":    "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- sources: 009\n",
		"bad wire name": "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- sources: 000\n\n| Parameter | Required | Type | In | Constraints | Description |\n|---|---|---|---|---|---|\n| a b | yes | string | | | x |\n",
		"bad type":      "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- sources: 000\n\n| Parameter | Required | Type | In | Constraints | Description |\n|---|---|---|---|---|---|\n| a | yes | strin | | | x |\n",
		"unknown fact":  "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- colour: red\n- sources: 000\n",
	}
	for name, md := range cases {
		_, _, err := Generate(fstest.MapFS{"m.md": {Data: []byte(md)}})
		if err == nil || !strings.Contains(err.Error(), "schemas/tables/m.md:") {
			t.Errorf("%s: err = %v, want one naming schemas/tables/m.md:<line>", name, err)
		}
	}
}

// TestCommittedOutputIsFresh fails when someone edits a table and forgets `make gen`.
func TestCommittedOutputIsFresh(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	files, cat, err := Generate(os.DirFS(filepath.Join(root, "schemas", "tables")))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is stale: run `make gen`", p)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, ReadmePath))
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err := SpliceReadme(readme, cat); err != nil || string(fresh) != string(readme) {
		t.Errorf("%s: the capability table is stale (%v): run `make gen`", ReadmePath, err)
	}
	old, _ := filepath.Glob(filepath.Join(root, ToolsDir, "*.schema.json"))
	for _, f := range old {
		rel, _ := filepath.Rel(root, f)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s has no table row any more: run `make gen`", rel)
		}
	}
}
