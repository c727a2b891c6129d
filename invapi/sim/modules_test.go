package sim

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func dataOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %v", m)
	}
	return d
}

// records lists "name type content" of a zone view.
func records(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range dataOf(t, m)["records"].([]any) {
		rec := r.(map[string]any)
		out = append(out, rec["name"].(string)+" "+rec["type"].(string)+" "+rec["content"].(string))
	}
	return out
}

func TestDNSWriteAndReadBack(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	// The Terraform provider's shape (params[...]).
	m := e.call("pdns", "action", "add_domain", "params[name]", "example.com", "params[server_id]", "40101", "token", tok)
	domainID := dataOf(t, m)["id"].(float64)
	// The vendor's MCP server's flat shape reaches the same state.
	m = e.call("pdns", "action", "add_dns", "zone", "example.com", "name", "www", "type", "A", "content", "10.0.0.5", "ttl", "300", "token", tok)
	wantKV(t, m, "result", "OK")
	e.call("pdns", "action", "add_dns", "params[zone]", "example.com", "params[name]", "@", "params[type]", "TXT",
		"params[content][]", "v=spf1 a,mx -all", "token", tok)
	got := records(t, e.call("pdns", "action", "view_zone", "params[zone]", "example.com", "token", tok))
	for _, want := range []string{"www A 10.0.0.5", "@ TXT v=spf1 a,mx -all", "@ NS ns1.hostkey.com"} {
		if !contains(got, want) {
			t.Errorf("zone lacks %q: %v", want, got)
		}
	}
	// add_dns replaces the record set; delete_dns removes one value.
	e.call("pdns", "action", "add_dns", "params[zone]", "example.com", "params[name]", "www", "params[type]", "A",
		"params[content][]", "10.0.0.6", "params[content][]", "10.0.0.7", "token", tok)
	e.call("pdns", "action", "delete_dns", "params[zone]", "example.com", "params[name]", "www", "params[type]", "A",
		"params[content][]", "10.0.0.6", "token", tok)
	got = records(t, e.call("pdns", "action", "view_zone", "params[zone]", "example.com", "token", tok))
	if contains(got, "www A 10.0.0.5") || contains(got, "www A 10.0.0.6") || !contains(got, "www A 10.0.0.7") {
		t.Errorf("after replace and delete: %v", got)
	}
	// Subdomains hang off a domain and a server.
	m = e.call("pdns", "action", "add_subdomain", "params[server_id]", "40101", "params[domain_id]", ftoa(domainID), "params[name]", "api", "token", tok)
	subID := dataOf(t, m)["id"].(float64)
	m = e.call("pdns", "action", "list_subdomains", "params[server_id]", "40101", "token", tok)
	if subs := m["data"].([]any); len(subs) != 1 || subs[0].(map[string]any)["name"] != "api" {
		t.Errorf("subdomains %v", subs)
	}
	e.call("pdns", "action", "delete_subdomain", "params[server_id]", "40101", "params[id]", ftoa(subID), "token", tok)
	if subs := e.call("pdns", "action", "list_subdomains", "params[server_id]", "40101", "token", tok)["data"].([]any); len(subs) != 0 {
		t.Errorf("subdomain not deleted: %v", subs)
	}
	// A zone without a domain row; then deleting the domain removes its zone.
	e.call("pdns", "action", "add_zone", "params[name]", "other.org", "params[nameservers][]", "ns1.example.net", "token", tok)
	zones := e.call("pdns", "action", "list_zones", "token", tok)["data"].([]any)
	if len(zones) != 2 {
		t.Errorf("zones %v", zones)
	}
	e.call("pdns", "action", "delete_domain", "params[id]", ftoa(domainID), "params[zone]", "example.com", "token", tok)
	wantErr(t, e.call("pdns", "action", "view_zone", "params[zone]", "example.com", "token", tok), -1, "not found")
	if d := e.call("pdns", "action", "list_domains", "token", tok)["data"].([]any); len(d) != 0 {
		t.Errorf("domains %v", d)
	}
	// Someone else's server is refused.
	wantErr(t, e.call("pdns", "action", "list_subdomains", "params[server_id]", "99999", "token", tok), -1, "invalid server id")
}

func TestTagsSearchReadsBackAnAddedTag(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	e.call("tags", "action", "add", "id", "40102", "tag", "billing_ref", "value", "ACME-42", "token", tok)
	m := e.call("tags", "action", "user_search", "value", "acme", "token", tok)
	hits := m["servers"].([]any)
	if len(hits) != 1 || hits[0].(map[string]any)["id"].(float64) != 40102 {
		t.Fatalf("search: %v", m)
	}
	e.call("tags", "action", "remove", "id", "40102", "tag", "billing_ref", "token", tok)
	if hits := e.call("tags", "action", "user_search", "value", "acme", "token", tok)["servers"].([]any); len(hits) != 0 {
		t.Errorf("removed tag still found: %v", hits)
	}
}

func TestISOMountState(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	m := e.call("iso", "action", "upload", "url", "https://example.com/images/rescue.iso", "token", tok)
	id := ftoa(m["id"].(float64))
	up := e.call("iso", "action", "uploaded", "token", tok)["images"].([]any)
	if len(up) != 1 || up[0].(map[string]any)["name"] != "rescue.iso" {
		t.Fatalf("uploaded %v", up)
	}
	m = e.call("iso", "action", "mount_iso", "id", "40101", "iso_id", id, "token", tok)
	if m["key"] == nil {
		t.Errorf("mount is async: %v", m)
	}
	if got := e.call("iso", "action", "list_iso", "server_id", "40101", "token", tok)["mounted"]; ftoa(got.(float64)) != id {
		t.Errorf("mounted = %v, want %s", got, id)
	}
	e.call("iso", "action", "unmount_iso", "id", "40101", "token", tok)
	if got := e.call("iso", "action", "list_iso", "server_id", "40101", "token", tok)["mounted"]; got.(float64) != 0 {
		t.Errorf("still mounted: %v", got)
	}
	wantErr(t, e.call("iso", "action", "unmount_iso", "id", "40101", "token", tok), -1, "no image mounted")
	wantErr(t, e.call("iso", "action", "mount_iso", "id", "40101", "iso_id", "424242", "token", tok), -1, "image not found")
}

func TestVMSnapshots(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	m := e.call("vm", "action", "create_snapshot", "id", "40102", "name", "before-upgrade", "token", tok)
	if m["key"] == nil {
		t.Errorf("create_snapshot is async: %v", m)
	}
	snaps := e.call("vm", "action", "get_snapshot", "id", "40102", "token", tok)["snapshots"].([]any)
	if len(snaps) != 1 || snaps[0].(map[string]any)["name"] != "before-upgrade" {
		t.Fatalf("snapshots %v", snaps)
	}
	e.call("vm", "action", "restore_snapshot", "id", "40102", "name", "before-upgrade", "token", tok)
	snaps = e.call("vm", "action", "get_snapshot", "id", "40102", "token", tok)["snapshots"].([]any)
	if snaps[0].(map[string]any)["restored"] == nil {
		t.Errorf("restore not recorded: %v", snaps)
	}
	// Removing needs the VM off.
	wantErr(t, e.call("vm", "action", "remove_snapshot", "id", "40102", "name", "before-upgrade", "token", tok), -1, "power the VM off")
	e.call("eq", "action", "off", "id", "40102", "pin", e.sim.PIN(), "token", tok)
	wantKV(t, e.call("vm", "action", "remove_snapshot", "id", "40102", "name", "before-upgrade", "token", tok), "result", "OK")
	if snaps := e.call("vm", "action", "get_snapshot", "id", "40102", "token", tok)["snapshots"].([]any); len(snaps) != 0 {
		t.Errorf("snapshot not removed: %v", snaps)
	}
	// Bare metal has no snapshots.
	wantErr(t, e.call("vm", "action", "get_snapshot", "id", "40101", "token", tok), -1, "not a virtual machine")
}

func TestS3BucketsAndKeys(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	wantErr(t, e.call("s3", "action", "get_buckets", "token", tok), -1, "no S3 account")
	m := e.call("s3", "action", "create_account", "plan_id", "1", "location", "NL", "bucket", "first", "token", tok)
	acct := ftoa(m["account_id"].(float64))
	wantKV(t, e.call("s3", "action", "create_bucket", "bucket", "backups-2031", "account_id", acct, "token", tok), "result", "OK")
	wantErr(t, e.call("s3", "action", "create_bucket", "bucket", "Bad_Name", "token", tok), -1, "invalid bucket name")
	var names []string
	for _, b := range e.call("s3", "action", "get_buckets", "account_id", acct, "token", tok)["buckets"].([]any) {
		names = append(names, b.(map[string]any)["name"].(string))
	}
	if !reflect.DeepEqual(names, []string{"backups-2031", "first"}) {
		t.Errorf("buckets %v", names)
	}
	if !e.sim.PutS3Object("backups-2031", "db/2031-01-02.sql.gz", 1024) {
		t.Fatal("PutS3Object")
	}
	files := e.call("s3", "action", "get_files", "bucket", "backups-2031", "search", "db/", "token", tok)["files"].([]any)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	e.call("s3", "action", "delete_file", "bucket", "backups-2031", "file", "db/2031-01-02.sql.gz", "token", tok)
	if files := e.call("s3", "action", "get_files", "bucket", "backups-2031", "token", tok)["files"].([]any); len(files) != 0 {
		t.Errorf("file not deleted: %v", files)
	}
	// The plain listing carries no keys; the queue listing and show_key do.
	if m := e.call("s3", "action", "get_buckets", "token", tok); m["secret_key"] != nil {
		t.Errorf("get_buckets exposes keys: %v", m)
	}
	secret := e.call("s3", "action", "show_key", "key_type", "secret_key", "token", tok)["key"]
	if rmq := e.call("s3", "action", "get_buckets_rmq", "token", tok); secret == nil || rmq["secret_key"] != secret {
		t.Errorf("show_key %v, rmq %v", secret, rmq["secret_key"])
	}
	e.call("s3", "action", "delete_payment_account", "token", tok)
	if u := e.call("s3", "action", "get_users", "token", tok)["users"].([]any); u[0].(map[string]any)["status"] != "cancelling" {
		t.Errorf("users %v", u)
	}
	e.call("s3", "action", "cancel_payment_account_deletion", "token", tok)
	e.call("s3", "action", "delete_bucket", "bucket", "first", "token", tok)
	if b := e.call("s3", "action", "get_buckets", "token", tok)["buckets"].([]any); len(b) != 1 {
		t.Errorf("buckets after delete %v", b)
	}
}

func TestRemoteHandsRequests(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	m := e.call("rhr", "action", "add", "id", "40101", "comment", "Replace the failed disk in bay 2", "token", tok)
	id := ftoa(m["id"].(float64))
	e.call("rhr", "action", "chat", "id", id, "message", "The server may be powered off", "token", tok)
	e.call("jira", "action", "request_kvm", "id", "40101", "token", tok)
	reqs := e.call("rhr", "action", "list", "token", tok)["requests"].([]any)
	if len(reqs) != 2 {
		t.Fatalf("requests %v", reqs)
	}
	first := reqs[0].(map[string]any)
	if first["comment"] != "Replace the failed disk in bay 2" || len(first["messages"].([]any)) != 1 || reqs[1].(map[string]any)["type"] != "jira/request_kvm" {
		t.Errorf("requests %v", reqs)
	}
	e.call("rhr", "action", "discard", "id", id, "token", tok)
	if open := e.call("rhr", "action", "list", "status", "open", "token", tok)["requests"].([]any); len(open) != 1 {
		t.Errorf("open requests %v", open)
	}
	wantErr(t, e.call("rhr", "action", "discard", "id", id, "token", tok), -1, "already discarded")
}

func TestNetBlockState(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	e.call("net", "action", "block_ip", "id", "40101", "ip", "203.0.113.9", "description", "ssh brute force", "token", tok)
	if got := e.sim.BlockedIPs(40101); !reflect.DeepEqual(got, []string{"203.0.113.9"}) {
		t.Errorf("blocked %v", got)
	}
	wantErr(t, e.call("net", "action", "block_ip", "id", "40101", "ip", "203.0.113.9", "description", "again", "token", tok), -1, "already blocked")
	e.call("net", "action", "unblock_ip", "id", "40101", "ip", "203.0.113.9", "token", tok)
	if got := e.sim.BlockedIPs(40101); len(got) != 0 {
		t.Errorf("still blocked %v", got)
	}
	wantErr(t, e.call("net", "action", "unblock_ip", "id", "40101", "ip", "203.0.113.9", "token", tok), -1, "not blocked")
	wantErr(t, e.call("net", "action", "block_ip", "id", "40101", "ip", "not-an-ip", "description", "x", "token", tok), -1, "ip must be")
}

func TestSSHKeys(t *testing.T) {
	e := newEnv(t)
	tok := e.accountToken()
	m := e.call("ssh_keys", "action", "add", "params[name]", "laptop", "params[key]", "ssh-ed25519 AAAAC3Nza laptop", "params[default]", "1", "token", tok)
	id := ftoa(m["sshkey"].(map[string]any)["id"].(float64))
	keys := e.call("ssh_keys", "action", "list", "token", tok)["sshkeys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["name"] != "laptop" {
		t.Fatalf("keys %v", keys)
	}
	e.call("ssh_keys", "action", "delete", "id", id, "token", tok)
	if keys := e.call("ssh_keys", "action", "list", "token", tok)["sshkeys"].([]any); len(keys) != 0 {
		t.Errorf("key not deleted: %v", keys)
	}
}

func TestPresetsPricesGroupsShow(t *testing.T) {
	e := newEnv(t)
	m := e.call("presets", "action", "info", "currencies", "EUR")
	ps := m["presets"].([]any)
	if len(ps) == 0 {
		t.Fatalf("info %v", m)
	}
	for _, p := range ps {
		for _, cur := range p.(map[string]any)["price"].(map[string]any) {
			if _, usd := cur.(map[string]any)["USD"]; usd {
				t.Errorf("USD price returned for currencies=EUR: %v", p)
			}
		}
	}
	if g := e.call("presets", "action", "groups")["groups"].([]any); len(g) == 0 {
		t.Error("no preset groups")
	}
	tok := e.accountToken()
	if p := e.call("presets", "action", "show", "id", "108", "token", tok); p["preset"] == nil && !strings.Contains(p["message"].(string), "not found") {
		t.Errorf("show %v", p)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ftoa(f float64) string { return strconv.FormatInt(int64(f), 10) }
