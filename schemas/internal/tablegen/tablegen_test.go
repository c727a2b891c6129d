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

// TestClientSourcesAndFacts covers rules 2 (listing sources, the required fact), 11
// (hidden-sources), 12 (client sources) and 13 (permission).
func TestClientSourcesAndFacts(t *testing.T) {
	const v, tf = "vendor-mcp@cb3408e:src/tools/x.ts", "tf@bc7212a:internal/invapi/x.go"
	md := "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- permission: m/view\n- required: loc\n- hidden-sources: 002\n- sources: 001, 002, " + v + ", " + tf + "\n\n" +
		"| Parameter | Required | Type | In | Constraints | Description |\n|---|---|---|---|---|---|\n" +
		"| id | yes | integer | " + v + " " + tf + " | | Server ID |\n" +
		"| zone | " + v + ":yes " + tf + ":no | string | " + v + " " + tf + " | | Zone |\n" +
		"| loc | no | string | " + v + " | | Location |\n" +
		"| staff | no | string | 002 | | Staff field |\n" +
		"| token | yes | string | | | Session token |\n"
	_, cat, err := Generate(fstest.MapFS{"m.md": {Data: []byte(md)}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cat.Tool("m_a")
	req := map[string]bool{}
	shown := map[string]bool{}
	for _, p := range a.Params {
		req[p.Wire] = p.Required
		shown[p.Wire] = true
	}
	// 001 lists no parameters (token only): it makes nothing optional. 002 lists only staff.
	if !req["id"] {
		t.Error("id: a source without a parameter table made it optional")
	}
	if req["zone"] {
		t.Error("zone: required although the Terraform provider marks it optional")
	}
	if !req["loc"] {
		t.Error("loc: the required fact did not apply")
	}
	if shown["staff"] {
		t.Error("staff: hidden-sources did not hide a 002-only row")
	}
	if a.Permission != "m/view" || a.PermissionName() != "m/view" {
		t.Errorf("permission %q", a.Permission)
	}

	bad := map[string]string{
		"client source without commit": "- sources: vendor-mcp:src/x.ts",
		"unknown client":               "- sources: npm@abcdef1:x.ts",
		"bad permission":               "- sources: 000\n- permission: view",
		"own name as permission":       "- sources: 000\n- permission: m/a",
		"required names no parameter":  "- sources: 000\n- required: nope",
		"hidden-sources not a source":  "- sources: 000\n- hidden-sources: 002",
	}
	for name, facts := range bad {
		md := "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n" + facts + "\n"
		if _, _, err := Generate(fstest.MapFS{"m.md": {Data: []byte(md)}}); err == nil || !strings.Contains(err.Error(), "schemas/tables/m.md:") {
			t.Errorf("%s: err = %v, want one naming the file and line", name, err)
		}
	}
}

// TestVendorMap: every _vendor.md row must name a catalog action (or invapi_call).
func TestVendorMap(t *testing.T) {
	table := "# m\n- toolset: x\n\n## m/a\n\nDo.\n\n- method: POST\n- class: read\n- sources: 000\n"
	vendor := func(action string) string {
		return "# vendor\n\n| Vendor tool | Action | Source |\n|---|---|---|\n| do_a | " + action + " | vendor-mcp@cb3408e:src/tools/m.ts |\n| raw | invapi_call | vendor-mcp@cb3408e:src/tools/raw.ts |\n"
	}
	_, cat, err := Generate(fstest.MapFS{"m.md": {Data: []byte(table)}, "_vendor.md": {Data: []byte(vendor("m/a"))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Vendor) != 2 || cat.Vendor[0].Tool != "m_a" || cat.Vendor[1].Tool != "invapi_call" {
		t.Fatalf("vendor map %+v", cat.Vendor)
	}
	got, err := SpliceReadme([]byte("x\n"+CapabilityBegin+"\nold\n"+CapabilityEnd+"\ny\n"), cat)
	if err != nil || !strings.Contains(string(got), "| do_a | `m_a` | read |") || strings.Contains(string(got), "old") {
		t.Errorf("capability table: %v\n%s", err, got)
	}
	if _, _, err := Generate(fstest.MapFS{"m.md": {Data: []byte(table)}, "_vendor.md": {Data: []byte(vendor("m/b"))}}); err == nil || !strings.Contains(err.Error(), "_vendor.md:") {
		t.Errorf("a row naming no action: err = %v", err)
	}
}
