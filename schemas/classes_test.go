package schemas_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// The "classes by consequence" rule of README.md, as a test over every action of the
// catalog, documented or not: an action that grants access, exposes a credential, costs
// money or loses data (or interrupts service) is destructive, so a human confirms it and
// whatever it returns (IPMI passwords, console URLs, download links) is seen only after
// that. A new table that classifies such an action as read or write fails here.

// consequence is one pattern over "module/action" that forces destructive.
type consequence struct {
	why string
	re  *regexp.Regexp
}

var consequences = []consequence{
	{"grants access: IPMI users and admins", regexp.MustCompile(`ipmi_(user|admin)`)},
	{"grants access: consoles", regexp.MustCompile(`novnc|vnc|console|spice`)},
	{"grants access: IPMI exposed on a public IP", regexp.MustCompile(`static_nat`)},
	{"exposes a credential: backup download links", regexp.MustCompile(`backup_link|download_link`)},
	{"grants access: API keys", regexp.MustCompile(`^api_keys/(add|edit|delete|update)$`)},
	{"grants access: SSH keys", regexp.MustCompile(`^ssh_keys/(add|edit|delete|update)$`)},
	{"grants access: access control lists", regexp.MustCompile(`(^|_|/)(update|set|edit)_acl$`)},
	{"exposes a credential: sessions, 2FA, identity tokens", regexp.MustCompile(`^auth/(login|whmcslogin|2fa_check)$|get_token$`)},
	{"guards everything: the PIN", regexp.MustCompile(`(^|_|/)(set|change|reset)_pin$`)},
	{"exposes a credential: passwords", regexp.MustCompile(`password`)},
	{"costs money: orders, deploys, payments, invoices", regexp.MustCompile(`(^|_|/)(order|order_instance|deploy|pay|mass_pay|apply_credit|traffic_add|subscription|generate_due_invoice|add_os_addon|update_product)(_|$)|^(paypal|yookassa)/`)},
	{"loses data or interrupts service", regexp.MustCompile(`(^|_|/)(delete|remove|clear|cancel|cancellation|reinstall|restore|abort|suspend|reset|block|terminate|destroy|wipe|format)(_|$)`)},
	{"interrupts service: power and boot", regexp.MustCompile(`^eq/(on|off|reboot|hard_off|unit_reset|boot_dev|create_pxe)$|(^|_|/)port_off$`)},
	{"changes what a server boots or runs", regexp.MustCompile(`(^|_|/)(mount_iso|unmount_iso|restore_snapshot)$|^jenkins/call$`)},
	{"changes where traffic goes: main IP, announcements, DNS edits", regexp.MustCompile(`^ip/set_main$|^eq/announceip$|^pdns/edit`)},
}

// explicitDestructive are actions no name pattern catches, each with its reason.
var explicitDestructive = map[string]string{
	"whmcs/update_client":  "changes the billing account (and its single sign-on)",
	"whmcs/update_contact": "sets a contact's password and SMS 2FA phone",
	"whmcs/verify_address": "changes billing verification state",
	"whmcs/verify_email":   "sends mail on the account's behalf",
	"auth/sms_send":        "sends an SMS (2FA)",
	"auth/flip_tag":        "changes account flags",
	"customers/update_acl": "changes access control",
	"net/ip_settings":      "may change IP settings",
	"net/nmap":             "scans a network from Hostkey's infrastructure",
	"eq/appraise":          "meaning unknown: kept destructive",
	"tag/add":              "tags decide the --server-tags allowlist",
}

// notConsequential are names a pattern matches that do nothing of the kind, with why.
// Keep this list short: every entry is a place where the rule is weaker.
var notConsequential = map[string]string{
	"paypal/check_order":              "only reads an order's state",
	"paypal/check_subscription":       "only reads a subscription's state",
	"yookassa/check_payment":          "only reads a payment's state",
	"whmcs/get_cancellation_requests": "only lists cancellation requests",
	"eq/stop_novnc":                   "closes a console: takes access away, grants none",
}

type classified struct {
	name, description string
	class             schemas.Class
}

func everyAction(cat *schemas.Catalog) []classified {
	var out []classified
	for _, a := range cat.Actions {
		out = append(out, classified{a.Module + "/" + a.Action, a.Description, a.Class})
	}
	for _, u := range cat.Undocumented {
		out = append(out, classified{u.Module + "/" + u.Action, u.Note, u.Class})
	}
	return out
}

// mustBeDestructive returns why the rule makes name destructive ("" when it does not).
func mustBeDestructive(name, description string) string {
	if why, ok := explicitDestructive[name]; ok {
		return why
	}
	if _, ok := notConsequential[name]; ok {
		return ""
	}
	for _, c := range consequences {
		if c.re.MatchString(name) {
			return c.why
		}
	}
	// Descriptions catch what names hide: an action that returns or sets a credential.
	if credentialText.MatchString(strings.ToLower(description)) {
		return "its description says it hands out or sets a credential"
	}
	return ""
}

var credentialText = regexp.MustCompile(`returns? (the )?(login and )?password|session token|download link|console (access|session)|api key itself`)

func TestClassesByConsequence(t *testing.T) {
	cat := schemas.Load()
	actions := everyAction(cat)
	if len(actions) < 150 {
		t.Fatalf("only %d actions: the rule must run over the whole catalog", len(actions))
	}
	forced := 0
	for _, a := range actions {
		why := mustBeDestructive(a.name, a.description)
		if why == "" {
			continue
		}
		forced++
		if a.class != schemas.Destructive {
			t.Errorf("%s is %s but %s: classes by consequence (schemas/README.md) make it destructive", a.name, a.class, why)
		}
	}
	if forced < 60 {
		t.Errorf("the rule forced only %d actions: a pattern broke", forced)
	}
	// The exception lists must name real actions, or they hide nothing and rot.
	known := map[string]bool{}
	for _, a := range actions {
		known[a.name] = true
	}
	for _, list := range []map[string]string{explicitDestructive, notConsequential} {
		for name := range list {
			if !known[name] {
				t.Errorf("exception %s names no action of the catalog", name)
			}
		}
	}
	for name := range notConsequential {
		matched := false
		for _, c := range consequences {
			matched = matched || c.re.MatchString(name)
		}
		if !matched {
			t.Errorf("exception %s: no pattern matches it, drop it", name)
		}
	}
}

// The rule's own test: the holes of issue 12 item 4, and actions it must leave alone.
func TestClassRuleCatchesAccessGrants(t *testing.T) {
	for _, name := range []string{
		"eq/add_ipmi_user", "eq/add_ipmi_admin", "eq/novnc", "eq/ovirt_novnc", "eq/recreate_novnc",
		"eq/console", "eq/request_backup_link", "auth/login", "auth/whmcslogin", "api_keys/add",
		"api_keys/edit", "ssh_keys/add", "eq/set_pin", "eq/order_instance", "whmcs/mass_pay",
		"eq/reinstall", "eq/reboot", "nat/add_static_nat", "vm/remove_snapshot", "pdns/delete_zone",
	} {
		if mustBeDestructive(name, "") == "" {
			t.Errorf("the rule does not make %s destructive", name)
		}
	}
	for _, name := range []string{"eq/show", "eq/list", "api_keys/list", "whmcs/get_invoices", "ip/update_ptr", "net/port_on", "eq/unsuspend", "eq/stop_novnc"} {
		if why := mustBeDestructive(name, ""); why != "" {
			t.Errorf("the rule makes %s destructive (%s)", name, why)
		}
	}
}

// pinLike matches parameter leaf names that carry a PIN.
var pinLike = regexp.MustCompile(`(^|_)pin(code)?$|^pincode$|^pin_`)

// No model-facing parameter anywhere looks like a PIN, except new_pin of eq_set_pin,
// which is destructive: a model that can fill a PIN can guess it (eq/check_pin was an
// oracle). The policy supplies pin and old_pin from the configured PIN source.
func TestNoPINInputFromTheModel(t *testing.T) {
	cat := schemas.Load()
	for _, a := range cat.Actions {
		for _, leaf := range schemaLeaves(t, a.InputSchema) {
			if !pinLike.MatchString(strings.ToLower(leaf)) {
				continue
			}
			if a.Tool == "eq_set_pin" && leaf == "new_pin" {
				if a.Class != schemas.Destructive || !a.PIN || a.PINWire() != "old_pin" {
					t.Errorf("eq_set_pin: class %s, pin %v via %s; want destructive, the current PIN supplied by the policy as old_pin", a.Class, a.PIN, a.PINWire())
				}
				continue
			}
			t.Errorf("%s: parameter %q looks like a PIN and is model-facing", a.Tool, leaf)
		}
	}
	chk, _ := cat.Tool("eq_check_pin")
	if chk == nil || !chk.PIN {
		t.Fatal("eq_check_pin must take the PIN from the policy")
	}
}

// schemaLeaves returns every property name at any depth of a JSON Schema.
func schemaLeaves(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if props, ok := x["properties"].(map[string]any); ok {
				for k := range props {
					out = append(out, k)
				}
			}
			for _, v := range x {
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(doc)
	sort.Strings(out)
	return out
}
