package tools_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
)

// TestBlockAndUnblockIPThroughMCP: net_block_ip and net_unblock_ip take the server and the
// IP (they took nothing before, so blocking an IP was impossible) and change the
// simulator's state through the real client.
func TestBlockAndUnblockIPThroughMCP(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	res := st.Call(t, "net_block_ip", map[string]any{"id": 40101, "ip": "198.51.100.7", "description": "abuse report 1234", "four_hours": 1})
	if res.IsError {
		t.Fatalf("net_block_ip: %s", toolstest.Text(res))
	}
	if got := st.Sim.BlockedIPs(40101); !reflect.DeepEqual(got, []string{"198.51.100.7"}) {
		t.Fatalf("blocked after net_block_ip: %v", got)
	}
	sent := st.Sent("net", "block_ip")
	if len(sent) != 1 || sent[0].Form.Get("ip") != "198.51.100.7" || sent[0].Form.Get("id") != "40101" || sent[0].Form.Get("four_hours") != "1" {
		t.Errorf("block_ip sent %+v", sent)
	}
	res = st.Call(t, "net_unblock_ip", map[string]any{"id": 40101, "ip": "198.51.100.7"})
	if res.IsError {
		t.Fatalf("net_unblock_ip: %s", toolstest.Text(res))
	}
	if got := st.Sim.BlockedIPs(40101); len(got) != 0 {
		t.Errorf("still blocked after net_unblock_ip: %v", got)
	}
	// Without the IP the tool says which field is missing, and nothing is sent.
	res = st.Call(t, "net_unblock_ip", map[string]any{"id": 40101})
	if !res.IsError || len(st.Sent("net", "unblock_ip")) != 1 {
		t.Errorf("unblock without ip: error=%v %q", res.IsError, toolstest.Text(res))
	}
}

// TestNewModulesThroughMCP writes and reads back DNS, tags, ISO, snapshots and S3 through
// the typed tools (none needs invapi_call).
func TestNewModulesThroughMCP(t *testing.T) {
	st := toolstest.New(t, toolstest.Options{})
	call := func(name string, args map[string]any) map[string]any {
		t.Helper()
		res := st.Call(t, name, args)
		if res.IsError {
			t.Fatalf("%s: %s", name, toolstest.Text(res))
		}
		m, _ := res.StructuredContent.(map[string]any)
		return m
	}
	call("pdns_add_domain", map[string]any{"params": map[string]any{"name": "example.net"}})
	call("pdns_add_dns", map[string]any{"params": map[string]any{"zone": "example.net", "name": "www", "type": "A", "content": []any{"192.0.2.10"}}})
	zone := call("pdns_view_zone", map[string]any{"params": map[string]any{"zone": "example.net"}})
	found := false
	for _, r := range zone["data"].(map[string]any)["records"].([]any) {
		rec := r.(map[string]any)
		found = found || (rec["name"] == "www" && rec["content"] == "192.0.2.10")
	}
	if !found {
		t.Errorf("record not read back: %v", zone)
	}

	call("tags_add", map[string]any{"id": 40101, "tag": "release", "value": "canary-7"})
	if hits := call("tags_user_search", map[string]any{"value": "canary-7"})["servers"].([]any); len(hits) != 1 {
		t.Errorf("tag search: %v", hits)
	}

	call("iso_mount_iso", map[string]any{"id": 40101, "iso_id": 101})
	if got := call("iso_list_iso", map[string]any{"server_id": 40101})["mounted"]; got != float64(101) {
		t.Errorf("mounted %v", got)
	}

	call("vm_create_snapshot", map[string]any{"id": 40102, "name": "pre-deploy"})
	call("vm_restore_snapshot", map[string]any{"id": 40102, "name": "pre-deploy"})
	if snaps := call("vm_get_snapshot", map[string]any{"id": 40102})["snapshots"].([]any); len(snaps) != 1 {
		t.Errorf("snapshots %v", snaps)
	}

	call("s3_create_account", map[string]any{"plan_id": "1"})
	call("s3_create_bucket", map[string]any{"bucket": "logs-archive"})
	if b := call("s3_get_buckets", map[string]any{})["buckets"].([]any); len(b) != 1 {
		t.Errorf("buckets %v", b)
	}
}

// TestPermissionGrantNames: the login permission list names grants (tag/*, pdns/view,
// pdns/edit); the filter checks an action's grant, not its wire name.
func TestPermissionGrantNames(t *testing.T) {
	perms := []string{"tag/add", "pdns/view", "pdns/view_zone", "iso/list_iso"}
	st := toolstest.New(t, toolstest.Options{Configure: func(o *tools.Options) { o.Sessions = fakeSessions{&perms} }})
	if err := st.Server.RefreshPermissions(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tl := range listTools(t, st) {
		got[tl.Name] = true
	}
	for name, want := range map[string]bool{
		"pdns_list_zones": true,  // granted by pdns/view
		"pdns_view_zone":  true,  // its own name
		"pdns_delete_dns": false, // needs pdns/edit
		"tags_add":        true,  // tag/add
		"tags_list":       false, // tag/list not granted, though tags.php is not in the list
		"iso_uploaded":    true,  // the list names no grant for it
		"iso_add":         false, // a staff grant
		"s3_get_buckets":  true,  // the list says nothing about s3
	} {
		if got[name] != want {
			t.Errorf("%s listed=%v, want %v", name, got[name], want)
		}
	}
	if !st.Server.Permitted("pdns", "list_zones") || st.Server.Permitted("tags", "list") {
		t.Error("Permitted does not follow the grant names")
	}
}

// TestDescriptionHints: every PIN tool tells the model never to ask for the PIN, whatever
// its class; a read's answer holds its data, so no read says it returns a key to poll.
func TestDescriptionHints(t *testing.T) {
	pins := 0
	for _, a := range schemas.Load().Actions {
		d := tools.Definition(a).Description
		if a.PIN {
			pins++
			if !strings.Contains(d, "never ask for it") {
				t.Errorf("%s wants the PIN but its description does not say never to ask for it: %q", a.Tool, d)
			}
		}
		if a.Class == schemas.Read && strings.Contains(d, "key to poll") {
			t.Errorf("%s is a read but says it returns a key to poll: %q", a.Tool, d)
		}
		if a.Async && a.Class != schemas.Read && !strings.Contains(d, "key to poll") {
			t.Errorf("%s is async but does not say so: %q", a.Tool, d)
		}
	}
	if pins < 10 {
		t.Fatalf("%d PIN tools: the catalog is not loaded", pins)
	}
}

// TestGenericRedirectsToTypedTools: the generic tool refuses what now has a typed tool and
// still reaches the rest.
func TestGenericRedirectsToTypedTools(t *testing.T) {
	cat := schemas.Load()
	for call, want := range map[[2]string]string{
		{"pdns", "add_dns"}:    "pdns_add_dns",
		{"vm", "get_snapshot"}: "vm_get_snapshot",
	} {
		_, _, err := tools.GenericRequest(cat, map[string]any{"module": call[0], "action": call[1]})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("invapi_call %s/%s: err = %v, want a pointer to %s", call[0], call[1], err, want)
		}
	}
	if _, a, err := tools.GenericRequest(cat, map[string]any{"module": "pdns", "action": "view"}); err != nil || a.Class != schemas.Read {
		t.Errorf("pdns/view (a grant the docs list as undocumented): %v %v", a, err)
	}
	if _, _, err := tools.GenericRequest(cat, map[string]any{"module": "foreman", "action": "get_os"}); err != nil {
		t.Errorf("foreman/get_os: %v", err)
	}
}
