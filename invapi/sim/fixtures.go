package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

type apiKey struct {
	ID                 int64   `json:"id"`
	Name               string  `json:"name"`
	Key                string  `json:"key"`
	ServerID           int64   `json:"server_id"`
	Active             int     `json:"active"`
	IP                 string  `json:"ip"`
	LoginNotifyMethod  string  `json:"login_notify_method"`
	LoginNotifyAddress *string `json:"login_notify_address"`
}

// view is the key as api_keys/* shows it: the secret only as its first four characters.
func (k *apiKey) view() map[string]any {
	tv := k.Key
	if len(tv) > 4 {
		tv = tv[:4]
	}
	return map[string]any{
		"id": k.ID, "name": k.Name, "active": k.Active, "ip": k.IP, "server_id": k.ServerID,
		"token_view": tv, "login_notify_method": k.LoginNotifyMethod, "login_notify_address": k.LoginNotifyAddress,
	}
}

type accountFix struct {
	CustomerID      int64           `json:"customer_id"`
	WhmcsID         int64           `json:"whmcs_id"`
	WhmcsLocation   string          `json:"whmcs_location"`
	Email           string          `json:"email"`
	Password        string          `json:"password"`
	Role            string          `json:"role"`
	RoleType        string          `json:"role_type"`
	PIN             string          `json:"pin"`
	Credit          string          `json:"credit"`
	Currency        string          `json:"currency"`
	ClientIP        string          `json:"client_ip"`
	BillingOptions  json.RawMessage `json:"billing_options"`
	Tags            json.RawMessage `json:"tags"`
	APIKeys         []*apiKey       `json:"api_keys"`
	Permissions     []string        `json:"permissions"`
	PerServerDenied []string        `json:"per_server_denied"`
}

type ipFix struct {
	IP   string `json:"ip"`
	MAC  string `json:"mac"`
	Port string `json:"port"`
	Main int    `json:"main"`
	VLAN int    `json:"vlan"`
	PTR  string `json:"ptr"`
}

type ipmiFix struct {
	Model string `json:"model"`
	IP    string `json:"ip"`
	MAC   string `json:"mac"`
}

type tagFix struct {
	ID    int64  `json:"id,omitempty"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
	Extra string `json:"extra,omitempty"`
}

type serverFix struct {
	ID                int64          `json:"id"`
	Hostname          string         `json:"hostname"`
	Location          string         `json:"location"`
	LocationID        int            `json:"location_id"`
	Type              string         `json:"type"` // BM or VPS
	RefTable          string         `json:"ref_tableName"`
	Preset            string         `json:"preset"`
	PresetID          int64          `json:"preset_id"`
	PresetDescription string         `json:"preset_description"`
	HWConfig          string         `json:"hwconfig"`
	Status            string         `json:"status"`
	Condition         string         `json:"condition"` // Condition_Component: rent, power_off (suspended)
	Power             string         `json:"power"`     // on, off
	OSID              int64          `json:"os_id"`
	OSName            string         `json:"os_name"`
	AccountID         int64          `json:"account_id"`
	DueDate           string         `json:"due_date"`
	DaysLeft          int            `json:"days_left"`
	TrafficPlan       int64          `json:"traffic_plan"`
	LimitTraffic      int            `json:"limit_traffic"`
	CostTraffic       int            `json:"cost_traffic"`
	LimitBands        int            `json:"limit_bands"`
	IPs               []ipFix        `json:"ips"`
	IPMI              ipmiFix        `json:"ipmi"`
	Tags              []tagFix       `json:"tags"`
	Groups            []string       `json:"groups"`
	Hardware          map[string]any `json:"hardware"`
}

type fixTag struct {
	Tag   string          `json:"tag"`
	Value json.RawMessage `json:"value"`
	Extra string          `json:"extra"`
}

func (t fixTag) str() string {
	var s string
	if json.Unmarshal(t.Value, &s) == nil {
		return s
	}
	return strings.Trim(string(t.Value), `"`)
}

func (t fixTag) list() []string {
	var l []string
	if json.Unmarshal(t.Value, &l) == nil {
		return l
	}
	if s := t.str(); s != "" {
		return strings.Split(s, ",")
	}
	return nil
}

// kinds are the hardware kinds a catalog item is tagged for: bm, vm, gpu, vgpu.
func kindsOf(tags []fixTag) map[string]bool {
	out := map[string]bool{}
	for _, t := range tags {
		switch t.Tag {
		case "bm", "vm", "gpu", "vgpu":
			v := t.str()
			if v != "" && v != "0" && v != "false" {
				out[t.Tag] = true
			}
		}
	}
	return out
}

type presetFix struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	Active     int      `json:"active"`
	MonthlyCom float64  `json:"monthly_com"`
	Locations  string   `json:"locations"`
	Virtual    int      `json:"virtual"`
	Available  int      `json:"available"`
	Tags       []fixTag `json:"tags"`
	raw        map[string]any
}

func (p *presetFix) inLocation(loc string) bool { return inCSV(p.Locations, loc) }

// kind is the single hardware kind of the preset used for OS compatibility.
func (p *presetFix) kind() string {
	k := kindsOf(p.Tags)
	switch {
	case k["vgpu"]:
		return "vgpu"
	case k["gpu"]:
		return "gpu"
	case k["vm"] || p.Virtual == 1:
		return "vm"
	default:
		return "bm"
	}
}

// catalogFix is an os/list or a software/list entry: the two lists have one shape.
type catalogFix struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Active int      `json:"active"`
	Tags   []fixTag `json:"tags"`
	raw    map[string]any
}

// osIDs is a software entry's "os" tag: the OSes it installs on.
func (s *catalogFix) osIDs() []string {
	for _, t := range s.Tags {
		if t.Tag == "os" {
			return t.list()
		}
	}
	return nil
}

type planFix struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Locations string   `json:"locations"`
	Tags      []fixTag `json:"tags"`
	raw       map[string]any
}

type locationFix struct {
	Code       string   `json:"code"`
	LocationID int      `json:"location_id"`
	Name       string   `json:"name"`
	FreeIPs    []string `json:"free_ips"`
}

type locationsFix struct {
	Locations    []*locationFix `json:"locations"`
	NextServerID int64          `json:"next_server_id"`
	NATPool      []string       `json:"nat_pool"`
}

type fixtures struct {
	account   accountFix
	servers   []serverFix
	presets   []*presetFix
	oses      []*catalogFix
	softs     []*catalogFix
	plans     []*planFix
	locations locationsFix
	invoices  []map[string]any
	nextInv   int64
	jenkins   map[string]any
	stocks    map[string]any
	canned    map[string]any
}

func inCSV(csv, v string) bool {
	if v == "" {
		return false
	}
	for _, p := range strings.Split(csv, ",") {
		if strings.EqualFold(strings.TrimSpace(p), v) {
			return true
		}
	}
	return false
}

func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// loadFixtures reads the sandbox JSON files. fsys may hold them at its root or under
// sandbox/ (testdata.Sandbox as embedded).
func loadFixtures(fsys fs.FS) (*fixtures, error) {
	if _, err := fs.Stat(fsys, "account.json"); err != nil {
		if sub, err2 := fs.Sub(fsys, "sandbox"); err2 == nil {
			if _, err3 := fs.Stat(sub, "account.json"); err3 == nil {
				fsys = sub
			}
		}
	}
	read := func(name string, typed any, raw any) error {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("sim: fixture %s: %w", name, err)
		}
		if typed != nil {
			if err := json.Unmarshal(b, typed); err != nil {
				return fmt.Errorf("sim: fixture %s: %w", name, err)
			}
		}
		if raw != nil {
			if err := decodeJSON(b, raw); err != nil {
				return fmt.Errorf("sim: fixture %s: %w", name, err)
			}
		}
		return nil
	}
	f := &fixtures{}
	if err := read("account.json", &f.account, nil); err != nil {
		return nil, err
	}
	var sv struct {
		Servers []serverFix `json:"servers"`
	}
	if err := read("servers.json", &sv, nil); err != nil {
		return nil, err
	}
	f.servers = sv.Servers
	// Hardware keeps json.Number from a second, raw decode.
	var svRaw struct {
		Servers []struct {
			Hardware map[string]any `json:"hardware"`
		} `json:"servers"`
	}
	if err := read("servers.json", nil, &svRaw); err != nil {
		return nil, err
	}
	for i := range f.servers {
		if i < len(svRaw.Servers) {
			f.servers[i].Hardware = svRaw.Servers[i].Hardware
		}
	}
	if err := read("locations.json", &f.locations, nil); err != nil {
		return nil, err
	}

	loadList := func(name, field string, typed any) ([]map[string]any, error) {
		var rawDoc map[string]any
		if err := read(name, nil, &rawDoc); err != nil {
			return nil, err
		}
		b, _ := fs.ReadFile(fsys, name)
		var typedDoc map[string]json.RawMessage
		if err := json.Unmarshal(b, &typedDoc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(typedDoc[field], typed); err != nil {
			return nil, fmt.Errorf("sim: fixture %s: %w", name, err)
		}
		arr, _ := rawDoc[field].([]any)
		out := make([]map[string]any, 0, len(arr))
		for _, x := range arr {
			m, _ := x.(map[string]any)
			out = append(out, m)
		}
		return out, nil
	}
	raws, err := loadList("presets.json", "presets", &f.presets)
	if err != nil {
		return nil, err
	}
	for i, p := range f.presets {
		p.raw = raws[i]
	}
	if raws, err = loadList("os.json", "os_list", &f.oses); err != nil {
		return nil, err
	}
	for i, o := range f.oses {
		o.raw = raws[i]
	}
	if raws, err = loadList("software.json", "software", &f.softs); err != nil {
		return nil, err
	}
	for i, s := range f.softs {
		s.raw = raws[i]
	}
	if raws, err = loadList("traffic_plans.json", "traffic_plans", &f.plans); err != nil {
		return nil, err
	}
	for i, p := range f.plans {
		p.raw = raws[i]
	}
	var invDoc map[string]any
	if err := read("invoices.json", nil, &invDoc); err != nil {
		return nil, err
	}
	if arr, ok := invDoc["invoices"].([]any); ok {
		for _, x := range arr {
			if m, ok := x.(map[string]any); ok {
				f.invoices = append(f.invoices, m)
			}
		}
	}
	f.nextInv = num(invDoc["next_invoice_id"])
	if err := read("jenkins_tasks.json", nil, &f.jenkins); err != nil {
		return nil, err
	}
	if err := read("stocks.json", nil, &f.stocks); err != nil {
		return nil, err
	}
	if err := read("responses.json", nil, &f.canned); err != nil {
		return nil, err
	}
	return f, nil
}

// num reads an integer out of a decoded JSON value (json.Number, float64, string).
func num(x any) int64 {
	switch v := x.(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			f, _ := v.Float64()
			return int64(f)
		}
		return n
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

// deepCopy copies decoded JSON so that handlers can edit answers freely.
func deepCopy(x any) any {
	switch v := x.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = deepCopy(e)
		}
		return a
	}
	return x
}
