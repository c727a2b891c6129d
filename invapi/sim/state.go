package sim

import (
	"sort"
	"time"
)

type session struct {
	token    string
	keyID    int64 // 0 for whmcslogin
	serverID int64 // non-zero: a per-server key's session
	servers  map[int64]bool
	expires  time.Time
	created  time.Time
}

func (se *session) valid(now time.Time) bool { return now.Before(se.expires) }

type pxeConfig struct {
	osID        int64
	osName      string
	hostname    string
	callbackURL string
	key         string // install key used by the next install from this config
	used        bool   // an install from this config has completed
}

// install is one OS installation (order, reinstall via order_instance, or PXE).
type install struct {
	key         string
	serverID    int64
	kind        string // order, reinstall, pxe
	ctxAction   string // context.action in eq_callback/check
	state       string // created, pxe_ready, waiting_payment, running, done, cancelled
	start       time.Time
	end         time.Time
	osID        int64
	osName      string
	softID      int64
	hostname    string
	callbackURL string
	invoice     int64
	gen         int
}

// stage is the 1..5 stage of a running install at now.
func (in *install) stage(now time.Time, sd time.Duration) int {
	if in.state != "running" {
		return 0
	}
	st := 1 + int(now.Sub(in.start)/sd)
	if st < 1 {
		st = 1
	}
	if st > 5 {
		st = 5
	}
	return st
}

type natRule struct {
	natIP   string
	expires time.Time
}

type server struct {
	serverFix
	visible   bool // delivered to the account (ordered servers become visible when done)
	bootDev   string
	pxe       *pxeConfig
	inst      *install // pending or running install, nil otherwise
	lastKey   string
	installs  int
	surprise  int
	callbacks []CallbackCall
	portsDown map[string]bool
	nat       *natRule
	cancelReq *cancellation
}

type cancellation struct {
	typ    int
	reason string
	date   time.Time
}

func (sv *server) mainIP() string {
	for _, ip := range sv.IPs {
		if ip.Main == 1 {
			return ip.IP
		}
	}
	if len(sv.IPs) > 0 {
		return sv.IPs[0].IP
	}
	return ""
}

func (sv *server) setTag(name, value string, id int64) {
	for i := range sv.Tags {
		if sv.Tags[i].Tag == name {
			sv.Tags[i].Value = value
			return
		}
	}
	sv.Tags = append(sv.Tags, tagFix{ID: id, Tag: name, Value: value})
}

func (sv *server) removeTag(name string) bool {
	for i := range sv.Tags {
		if sv.Tags[i].Tag == name {
			sv.Tags = append(sv.Tags[:i], sv.Tags[i+1:]...)
			return true
		}
	}
	return false
}

func (sv *server) installing() bool { return sv.inst != nil && sv.inst.state == "running" }

func (sv *server) snapshot(now time.Time, sd time.Duration) ServerState {
	st := ServerState{
		ID: sv.ID, Hostname: sv.Hostname, Location: sv.Location, Status: sv.Status, Condition: sv.Condition,
		Power: sv.Power, OSID: sv.OSID, OSName: sv.OSName, BootDev: sv.bootDev, PXE: sv.pxe != nil,
		Installs: sv.installs, Surprise: sv.surprise, PTR: map[string]string{}, Tags: map[string]string{},
		InstallKey: sv.lastKey,
	}
	for _, ip := range sv.IPs {
		st.IPs = append(st.IPs, ip.IP)
		st.PTR[ip.IP] = ip.PTR
	}
	for _, t := range sv.Tags {
		st.Tags[t.Tag] = t.Value
	}
	if sv.inst != nil {
		st.InstallKey = sv.inst.key
		st.Installing = sv.inst.state == "running"
		st.Stage = sv.inst.stage(now, sd)
	}
	st.Callbacks = append([]CallbackCall(nil), sv.callbacks...)
	for p := range sv.portsDown {
		st.PortsDown = append(st.PortsDown, p)
	}
	sort.Strings(st.PortsDown)
	return st
}

// job is something eq_callback/check or nat_callback/check can look up by key.
type job struct {
	key      string
	endpoint string // eq_callback or nat_callback
	inst     *install
	envelope map[string]any // finished answer of a plain async action
	readyAt  time.Time      // NAT jobs: "Not ready" before this
	pending  map[string]any // NAT jobs: answer before readyAt
}

type state struct {
	pin         string
	pinFails    int
	lockedUntil time.Time

	credit   float64
	keys     []*apiKey
	nextKey  int64
	sessions map[string]*session
	servers  map[int64]*server
	nextSrv  int64
	invoices []map[string]any
	nextInv  int64
	jobs     map[string]*job
	natPool  []string
	freeIPs  map[string][]string
	nextTag  int64
	mod      modState // DNS, ISO, snapshots, S3, support, IP blocks, SSH keys (modstate.go)
}

func newState(fx *fixtures) *state {
	st := &state{
		pin:      fx.account.PIN,
		sessions: map[string]*session{},
		servers:  map[int64]*server{},
		jobs:     map[string]*job{},
		nextSrv:  fx.locations.NextServerID,
		nextInv:  fx.nextInv,
		natPool:  append([]string(nil), fx.locations.NATPool...),
		freeIPs:  map[string][]string{},
		nextTag:  900000,
	}
	st.credit = parseMoney(fx.account.Credit)
	for _, k := range fx.account.APIKeys {
		c := *k
		st.keys = append(st.keys, &c)
		if c.ID >= st.nextKey {
			st.nextKey = c.ID + 1
		}
	}
	for _, f := range fx.servers {
		sv := &server{serverFix: f, visible: true, bootDev: "disk", portsDown: map[string]bool{}}
		sv.IPs = append([]ipFix(nil), f.IPs...)
		sv.Tags = append([]tagFix(nil), f.Tags...)
		sv.Hardware = deepCopy(f.Hardware).(map[string]any)
		st.servers[f.ID] = sv
		if f.ID >= st.nextSrv {
			st.nextSrv = f.ID + 1
		}
	}
	for _, inv := range fx.invoices {
		st.invoices = append(st.invoices, deepCopy(inv).(map[string]any))
	}
	for _, l := range fx.locations.Locations {
		st.freeIPs[l.Code] = append([]string(nil), l.FreeIPs...)
	}
	return st
}

// visibleServers lists the account's delivered servers in ID order.
func (st *state) visibleServers() []*server {
	var out []*server
	for _, sv := range st.servers {
		if sv.visible {
			out = append(out, sv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
