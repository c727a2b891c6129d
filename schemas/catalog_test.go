package schemas_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hostkey/hostkey-mcp/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestEveryInputSchemaCompiles(t *testing.T) {
	cat := schemas.Load()
	if len(cat.Actions) < 100 {
		t.Fatalf("catalog has %d actions, want ≥ 100", len(cat.Actions))
	}
	for _, a := range cat.Actions {
		var doc any
		if err := json.Unmarshal(a.InputSchema, &doc); err != nil {
			t.Errorf("%s: %v", a.Tool, err)
			continue
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(a.Tool+".json", doc); err != nil {
			t.Errorf("%s: %v", a.Tool, err)
			continue
		}
		if _, err := c.Compile(a.Tool + ".json"); err != nil {
			t.Errorf("%s does not compile: %v", a.Tool, err)
		}
		m := doc.(map[string]any)
		if m["type"] != "object" || m["additionalProperties"] != false {
			t.Errorf("%s: want an object schema with additionalProperties false", a.Tool)
		}
		props, _ := m["properties"].(map[string]any)
		for _, hidden := range []string{"token", "action", "pin"} {
			if _, ok := props[hidden]; ok {
				t.Errorf("%s exposes %q to the model", a.Tool, hidden)
			}
		}
		for _, p := range a.Params {
			if p.Secret && len(p.Path) == 1 {
				if ps, _ := props[p.Path[0]].(map[string]any); ps["writeOnly"] != true {
					t.Errorf("%s: secret %s not writeOnly", a.Tool, p.Wire)
				}
			}
		}
	}
}

func TestSchemasValidateRealArguments(t *testing.T) {
	cat := schemas.Load()
	cases := []struct {
		tool  string
		args  string
		valid bool
	}{
		{"eq_reboot", `{"id": 40101}`, true},
		{"eq_reboot", `{"id": "40101"}`, false},
		{"eq_reboot", `{}`, false},
		{"eq_reboot", `{"id": 1, "pin": "1234"}`, false},
		{"eq_boot_dev", `{"id": 1, "media": "floppy"}`, false},
		{"eq_order_instance", `{"id": 1, "os_id": 2, "root_pass": "short", "location_name": "NL"}`, false},
		{"eq_order_instance", `{"id": 1, "os_id": 2, "root_pass": "Long#enough1", "location_name": "NL"}`, false},
		{"eq_order_instance", `{"id": 1, "os_id": 2, "root_pass": "Longenough1!", "location_name": "NL"}`, true},
		{"eq_order_instance", `{"id": 1, "os_id": 2, "root_pass": "Longenough1!", "location_name": "XX"}`, false},
		{"whmcs_mass_pay", `{"invoices": [1, 2]}`, true},
	}
	for _, c := range cases {
		a, ok := cat.Tool(c.tool)
		if !ok {
			t.Fatalf("no tool %s", c.tool)
		}
		var doc, inst any
		_ = json.Unmarshal(a.InputSchema, &doc)
		if err := json.Unmarshal([]byte(c.args), &inst); err != nil {
			t.Fatal(err)
		}
		comp := jsonschema.NewCompiler()
		_ = comp.AddResource("s.json", doc)
		sch, err := comp.Compile("s.json")
		if err != nil {
			t.Fatal(err)
		}
		err = sch.Validate(inst)
		if (err == nil) != c.valid {
			t.Errorf("%s %s: valid=%v, want %v (%v)", c.tool, c.args, err == nil, c.valid, err)
		}
	}
}

// TestGoldenSchemas pins representative schemas: a change shows up in review twice,
// in schemas/tools and here. Run `go test ./schemas -update` to accept one.
func TestGoldenSchemas(t *testing.T) {
	cat := schemas.Load()
	for _, name := range []string{
		"eq_create_pxe", "eq_order_instance", "eq_search", "eq_backup_save_schedule", "eq_reboot",
		"eq_boot_dev", "ip_get_traffic", "ip_update_ptr", "api_keys_add", "whmcs_mass_pay",
		"whmcs_get_invoices", "eq_callback_check", "nat_callback_check",
		"pdns_add_dns", "iso_mount_iso", "vm_restore_snapshot", "s3_create_bucket", "net_block_ip",
	} {
		a, ok := cat.Tool(name)
		if !ok {
			t.Errorf("no tool %s", name)
			continue
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, a.InputSchema, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		path := filepath.Join("testdata", "golden", name+".json")
		if *update {
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go test ./schemas -update)", name, err)
			continue
		}
		if !bytes.Equal(want, pretty.Bytes()) {
			t.Errorf("%s schema changed; review it and run go test ./schemas -update\n got: %s", name, pretty.String())
		}
	}
}

func TestAnnotationsInputs(t *testing.T) {
	cat := schemas.Load()
	for _, a := range cat.Actions {
		if !a.Class.Valid() {
			t.Errorf("%s: class %q", a.Tool, a.Class)
		}
		if a.Tool != strings.ReplaceAll(a.Module+"_"+a.Action, "/", "_") {
			t.Errorf("%s: not named <module>_<action>", a.Tool)
		}
	}
	for _, want := range []string{"eq_reboot", "ip_update_ptr", "whmcs_get_invoices", "eq_callback_check", "nat_callback_check"} {
		if _, ok := cat.Tool(want); !ok {
			t.Errorf("missing tool %s", want)
		}
	}
}

// TestEveryDocumentedActionHasATool walks the vendor docs (../shared/seeds next to the
// repository) and fails when an action they document has no tool.
func TestEveryDocumentedActionHasATool(t *testing.T) {
	dir, ok := findSeeds()
	if !ok {
		if os.Getenv("CI") != "" {
			t.Fatal("vendor docs not found (HOSTKEY_SEEDS_DIR, or shared/seeds beside the repository or above it): CI must provide them")
		}
		t.Skip("vendor docs not found: set HOSTKEY_SEEDS_DIR or keep shared/seeds beside the repository (CI has them)")
	}
	documented := seedActions(t, dir)
	t.Logf("%d documented actions in the seeds", len(documented))
	if len(documented) < 95 {
		t.Fatalf("found only %d actions in the seeds: the walker is broken", len(documented))
	}
	cat := schemas.Load()
	var missing []string
	for act := range documented {
		if why, ok := notActions[act]; ok {
			if _, inCatalog := schemas.Load().Tool(strings.ReplaceAll(act, "/", "_")); inCatalog {
				t.Errorf("%s is in the catalog although %s", act, why)
			}
			continue
		}
		mod, name, _ := strings.Cut(act, "/")
		if _, ok := cat.Lookup(mod, name); !ok {
			missing = append(missing, act)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented actions without a tool: %v", missing)
	}
}

// notActions are names the seeds mention that are not invapi actions: they have no tool on
// purpose.
var notActions = map[string]string{
	"jenkins/list": "only 001's reinstall method table names it; its prose, the permission list and every client use jenkins/get_tasks",
}

var (
	headingRE   = regexp.MustCompile(`^([a-z_]+)/([a-z_]+)¶?\s*$`)
	resourceRE  = regexp.MustCompile(`^([a-z_]+)\.php \| ([a-z_]+) \|`)
	methodRowRE = regexp.MustCompile(`^([a-z_]+) \| [^|]+ \| `)
	plainRowRE  = regexp.MustCompile(`^([a-z_]+) [a-z]`)
)

func seedActions(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	out := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		// The module reference pages (000, 002, 004) open with a method table of their
		// module before the first section.
		module := ""
		inMethods := false
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := regexp.MustCompile(`^([a-z_]+)\.php¶?$`).FindStringSubmatch(line); m != nil && module == "" {
				module = m[1]
				continue
			}
			if strings.HasPrefix(line, "API Methods") {
				inMethods = true
				continue
			}
			if m := headingRE.FindStringSubmatch(line); m != nil {
				inMethods = false
				out[m[1]+"/"+m[2]] = true
				continue
			}
			if m := resourceRE.FindStringSubmatch(line); m != nil {
				out[m[1]+"/"+m[2]] = true
				continue
			}
			if inMethods && module != "" && !strings.HasPrefix(base, "001") {
				if m := methodRowRE.FindStringSubmatch(line); m != nil && m[1] != "method" {
					out[module+"/"+m[1]] = true
				} else if m := plainRowRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(base, "004") && m[1] != "method" {
					out[module+"/"+m[1]] = true
				}
			}
			if strings.Contains(line, "nat_callback.php?action=check") {
				out["nat_callback/check"] = true
			}
		}
	}
	return out
}

// findSeeds locates the vendor docs: $HOSTKEY_SEEDS_DIR, else shared/seeds in the folder
// that holds the repository or any folder above it.
func findSeeds() (string, bool) {
	if d := os.Getenv("HOSTKEY_SEEDS_DIR"); d != "" {
		_, err := os.Stat(d)
		return d, err == nil
	}
	dir, err := filepath.Abs("..")
	if err != nil {
		return "", false
	}
	for {
		cand := filepath.Join(dir, "..", "shared", "seeds")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
