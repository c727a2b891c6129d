package schemas_test

import (
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// mustBeConsequential are the leaf names that decide what runs on a server or who can
// reach it. Wherever one of them is an input of an action that changes state, the
// confirmation must show it first and in full, so the catalog must mark it.
var mustBeConsequential = []string{
	"ssh_key", "post_install_script", "post_install_callback", "cloud_init_script",
	"root_pass", "os_id", "os_name", "own_os", "hostname", "custom_domain", "ip", "vlan",
	"white_ip", "fix_ip", "ptr", "media", "boot_mode", "email", "deploy_notify",
	"login_notify_address", "admin_user", "admin_pass", "new_pin", "username",
	"no_pin_req", // turns the PIN check off: who can act on the account
}

func TestConsequentialParamsAreMarked(t *testing.T) {
	want := map[string]bool{}
	for _, n := range mustBeConsequential {
		want[n] = true
	}
	seen := map[string]bool{}
	for _, a := range schemas.Load().Actions {
		if a.Class == schemas.Read {
			continue
		}
		for _, p := range a.Params {
			leaf := p.Path[len(p.Path)-1]
			if !want[leaf] {
				continue
			}
			seen[leaf] = true
			if !p.Consequential {
				t.Errorf("%s/%s: %s is not marked consequential (add it to the Constraints cell in schemas/tables and run make gen)", a.Module, a.Action, p.Wire)
			}
		}
	}
	for _, n := range mustBeConsequential {
		if !seen[n] {
			t.Errorf("no action that changes state has a %q parameter: the list is out of date", n)
		}
	}
	// The PXE install, the worst case, shows everything that lands on the machine.
	a, ok := schemas.Load().Lookup("eq", "create_pxe")
	if !ok {
		t.Fatal("no eq/create_pxe")
	}
	for _, n := range []string{"ssh_key", "post_install_script", "root_pass", "os_id", "hostname"} {
		found := false
		for _, p := range a.Params {
			if p.Wire == n && p.Consequential {
				found = true
			}
		}
		if !found {
			t.Errorf("eq/create_pxe: %s not consequential", n)
		}
	}
}
