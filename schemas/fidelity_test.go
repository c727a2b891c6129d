package schemas_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// schemaOf decodes a tool's model-facing schema.
func schemaOf(t *testing.T, tool string) (props map[string]any, required []string) {
	t.Helper()
	a, ok := schemas.Load().Tool(tool)
	if !ok {
		t.Fatalf("no tool %s", tool)
	}
	var s struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	if err := json.Unmarshal(a.InputSchema, &s); err != nil {
		t.Fatal(err)
	}
	return s.Properties, s.Required
}

func prop(t *testing.T, props map[string]any, path ...string) map[string]any {
	t.Helper()
	var cur any = map[string]any{"properties": props}
	for _, p := range path {
		m, _ := cur.(map[string]any)
		ps, _ := m["properties"].(map[string]any)
		cur = ps[p]
	}
	m, _ := cur.(map[string]any)
	return m
}

// TestSeedFidelity pins the fixes of the catalog audit (issue 13), each a fact a seed or a
// public client states.
func TestSeedFidelity(t *testing.T) {
	// 000 and 002 require media; without it the action means nothing.
	if _, req := schemaOf(t, "eq_boot_dev"); !slices.Contains(req, "media") {
		t.Errorf("eq_boot_dev: media not required (required %v)", req)
	}
	// 003: location_name is "mandatory even during a reinstall".
	props, req := schemaOf(t, "eq_order_instance")
	if !slices.Contains(req, "location_name") {
		t.Errorf("eq_order_instance: location_name not required (required %v)", req)
	}
	// 000 lists hourly among the periods.
	if enum, _ := prop(t, props, "deploy_period")["enum"].([]any); !slices.Contains(enum, any("hourly")) {
		t.Errorf("eq_order_instance: deploy_period enum %v lacks hourly", enum)
	}
	// Staff fields are hidden on order_instance as on create_pxe and reinstall.
	for _, tool := range []string{"eq_order_instance", "eq_create_pxe", "eq_reinstall"} {
		props, _ := schemaOf(t, tool)
		for _, staff := range []string{"deploy_ticket", "imitate_error", "imitate_deploy", "jenkins_tests", "deploy_price", "invoice_relid"} {
			if _, ok := props[staff]; ok {
				t.Errorf("%s shows the staff field %s", tool, staff)
			}
		}
	}
	// eq/reinstall only creates the key (000, 001): it takes the server and nothing else.
	if props, _ := schemaOf(t, "eq_reinstall"); len(props) != 1 || props["id"] == nil {
		t.Errorf("eq_reinstall shows %d fields, want only id", len(props))
	}
	// 000 marks deploy_data and deploy_options required on eq/deploy: shown and required.
	if props, req := schemaOf(t, "eq_deploy"); props["deploy_data"] == nil || !slices.Contains(req, "deploy_options") {
		t.Errorf("eq_deploy hides or relaxes deploy_data/deploy_options (required %v)", req)
	}
	// Blocking an IP: the server and the IP (001's method table, the vendor's client).
	for _, tool := range []string{"net_block_ip", "net_unblock_ip"} {
		if _, req := schemaOf(t, tool); !slices.Contains(req, "id") || !slices.Contains(req, "ip") {
			t.Errorf("%s: required %v, want id and ip", tool, req)
		}
	}
	if props, _ := schemaOf(t, "ip_show_cacti"); props["id"] == nil || props["ip"] == nil {
		t.Errorf("ip_show_cacti takes %v, want id and ip", props)
	}
	// jenkins/list is not an action; jenkins/call runs a task.
	if _, ok := schemas.Load().Tool("jenkins_list"); ok {
		t.Error("jenkins_list is still a tool")
	}
	if _, req := schemaOf(t, "jenkins_call"); !slices.Contains(req, "task") {
		t.Errorf("jenkins_call: required %v", req)
	}
}

// TestCallbackURLsAreWriteOnly: post_install_callback and login_notify_address are redacted
// as secrets, so the schema marks them writeOnly wherever they appear.
func TestCallbackURLsAreWriteOnly(t *testing.T) {
	n := 0
	for _, a := range schemas.Load().Actions {
		var doc any
		if err := json.Unmarshal(a.InputSchema, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(name string, v any)
		walk = func(name string, v any) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			if name == "post_install_callback" || name == "login_notify_address" {
				n++
				if m["writeOnly"] != true {
					t.Errorf("%s: %s is not writeOnly", a.Tool, name)
				}
			}
			ps, _ := m["properties"].(map[string]any)
			for k, c := range ps {
				walk(k, c)
			}
		}
		walk("", doc)
	}
	if n < 4 {
		t.Fatalf("found %d callback fields; the walker is broken", n)
	}
}

// TestDescriptionsAreModelFacing: what the model reads names no seed ids, and says
// nothing twice.
func TestDescriptionsAreModelFacing(t *testing.T) {
	seedRef := regexp.MustCompile(`\b00[0-4]\b|\bseeds?\b|\bthe docs\b|method table|undocumented`)
	for _, a := range schemas.Load().Actions {
		texts := []string{a.Description}
		for _, p := range a.Params {
			texts = append(texts, p.Description)
		}
		for _, s := range texts {
			if seedRef.MatchString(s) {
				t.Errorf("%s: %q refers to the docs, not to what the model must know", a.Tool, s)
			}
		}
		if a.Async && strings.Contains(strings.ToLower(a.Description), "returns a key") {
			t.Errorf("%s: the description says it returns a key, and so does the async hint: %q", a.Tool, a.Description)
		}
	}
}

// TestNewModulesClassesAndToolsets: reads of DNS, tags, ISO, snapshots and S3 are reads;
// deleting, restoring, unmounting, remote hands and credential reveals are destructive;
// every new module has its own toolset.
func TestNewModulesClassesAndToolsets(t *testing.T) {
	cat := schemas.Load()
	want := map[string]schemas.Class{
		"pdns_list_zones": schemas.Read, "pdns_view_zone": schemas.Read, "pdns_list_domains": schemas.Read,
		"tags_list": schemas.Read, "tags_user_search": schemas.Read, "iso_list_iso": schemas.Read, "iso_uploaded": schemas.Read,
		"vm_get_snapshot": schemas.Read, "vm_load_stats": schemas.Read, "s3_get_buckets": schemas.Read, "s3_get_files": schemas.Read,
		"pdns_add_dns": schemas.Destructive, "pdns_delete_dns": schemas.Destructive, "pdns_delete_zone": schemas.Destructive,
		"tags_remove": schemas.Destructive, "iso_mount_iso": schemas.Destructive, "iso_unmount_iso": schemas.Destructive,
		"vm_restore_snapshot": schemas.Destructive, "vm_remove_snapshot": schemas.Destructive,
		"s3_show_key": schemas.Destructive, "s3_get_buckets_rmq": schemas.Destructive, "s3_create_account": schemas.Destructive,
		"s3_create_order": schemas.Destructive, "s3_delete_bucket": schemas.Destructive,
		"rhr_add": schemas.Destructive, "jira_request_reboot": schemas.Destructive, "jenkins_call": schemas.Destructive,
		"ssh_keys_add": schemas.Destructive, "nat_drop_nat": schemas.Destructive,
		"tags_add": schemas.Write, "s3_create_bucket": schemas.Write, "vm_create_snapshot": schemas.Write, "pdns_add_domain": schemas.Write,
	}
	for tool, class := range want {
		a, ok := cat.Tool(tool)
		if !ok {
			t.Errorf("no tool %s", tool)
			continue
		}
		if a.Class != class {
			t.Errorf("%s is %s, want %s", tool, a.Class, class)
		}
	}
	toolsets := map[string]string{"pdns": "dns", "tags": "tags", "iso": "iso", "vm": "snapshots", "s3": "storage", "rhr": "support", "jira": "support"}
	for _, a := range cat.Actions {
		if ts, ok := toolsets[a.Module]; ok && a.Toolset != ts {
			t.Errorf("%s is in toolset %s, want %s", a.Tool, a.Toolset, ts)
		}
	}
}

// TestPermissionNames: where the permission list and the public clients disagree, the
// clients' name is the action and the list's name is the grant (rule 13).
func TestPermissionNames(t *testing.T) {
	cat := schemas.Load()
	for tool, want := range map[string]string{
		"tags_list": "tag/list", "tags_user_search": "tag/list", "tags_add": "tag/add", "tags_remove": "tag/remove",
		"pdns_list_zones": "pdns/view", "pdns_delete_dns": "pdns/edit", "pdns_view_zone": "pdns/view_zone",
		"eq_reboot": "eq/reboot", "iso_uploaded": "", "s3_get_buckets": "s3/get_buckets",
	} {
		a, ok := cat.Tool(tool)
		if !ok {
			t.Errorf("no tool %s", tool)
			continue
		}
		if got := a.PermissionName(); got != want {
			t.Errorf("%s: permission %q, want %q", tool, got, want)
		}
	}
	// Every permission a catalog action names is in the login permission list of 001.
	listed := map[string]bool{}
	for _, u := range cat.Undocumented {
		listed[u.Module+"/"+u.Action] = true
	}
	for _, a := range cat.Actions {
		listed[a.Module+"/"+a.Action] = true
	}
	for _, a := range cat.Actions {
		if p := a.Permission; p != "" && p != schemas.Unlisted && !listed[p] {
			t.Errorf("%s: permission %q is neither an action nor in the permission list", a.Tool, p)
		}
	}
}

// TestCapabilityTableIsFresh: schemas/README.md's capability table is generated from
// tables/_vendor.md by `make gen`.
func TestCapabilityTableIsFresh(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cat := schemas.Load()
	if len(cat.Vendor) != 132 {
		t.Errorf("%d vendor tools mapped, want the vendor's 132", len(cat.Vendor))
	}
	for _, v := range cat.Vendor {
		row := "| " + v.Vendor + " | `" + v.Tool + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md's capability table lacks %q: run make gen", row)
		}
	}
}
