package sim

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

func init() {
	register(eqOrderInstance, "eq/order_instance")
	register(eqReinstall, "eq/reinstall")
	register(eqCreatePXE, "eq/create_pxe")
	register(eqBootDev, "eq/boot_dev")
	register(eqClearPXE, "eq/clear_pxe")
	register(eqAbortReinstall, "eq/abort_reinstall")
	register(callbackCheck, "eq_callback/check")
}

var stageText = [...]string{
	"",
	" (1/5) OS installation started",
	" (2/5) Base OS installed, running post-install tasks",
	" (3/5) Post-install tasks completed, running final tasks",
	" (4/5) Installation completed, restarting the server",
	" (5/5) The server is online",
}

var periodMonths = map[string]int{"monthly": 1, "quarterly": 3, "semi-annually": 6, "annually": 12, "hourly": 1}

func notFinished(id int64) resp {
	return failResult(fmt.Sprintf("reinstall: previous reinstall of server %d is not finished yet", id))
}

func findByID(list []*catalogFix, id int64) *catalogFix {
	for _, x := range list {
		if x.ID == id {
			return x
		}
	}
	return nil
}

func (s *Server) findPreset(ref string) *presetFix {
	ref = strings.TrimSpace(ref)
	for _, p := range s.fx.presets {
		if strconv.FormatInt(p.ID, 10) == ref || strings.EqualFold(p.Name, ref) {
			return p
		}
	}
	return nil
}

// serverKind is the hardware kind of an existing server for OS compatibility.
func (s *Server) serverKind(sv *server) string {
	if p := s.findPreset(strconv.FormatInt(sv.PresetID, 10)); p != nil {
		return p.kind()
	}
	if sv.Type == "VPS" {
		return "vm"
	}
	return "bm"
}

// checkOSSoft validates an OS and an optional extra software for a kind of hardware.
func (s *Server) checkOSSoft(prefix string, kind string, osID, softID int64, ownOS bool) (*catalogFix, *catalogFix, string) {
	var o *catalogFix
	if !ownOS || osID != 0 {
		o = findByID(s.fx.oses, osID)
		if o == nil || o.Active != 1 {
			return nil, nil, fmt.Sprintf("%s: unknown OS #%d", prefix, osID)
		}
		if !kindsOf(o.Tags)[kind] {
			return nil, nil, fmt.Sprintf("%s: OS %s (#%d) is not available for %s servers", prefix, o.Name, o.ID, kind)
		}
	}
	var sw *catalogFix
	if softID != 0 {
		sw = findByID(s.fx.softs, softID)
		if sw == nil || sw.Active != 1 {
			return nil, nil, fmt.Sprintf("%s: unknown extra software #%d", prefix, softID)
		}
		if o == nil {
			return nil, nil, fmt.Sprintf("%s: extra software %s (#%d) needs an OS", prefix, sw.Name, sw.ID)
		}
		okOS := false
		for _, id := range sw.osIDs() {
			if strings.TrimSpace(id) == strconv.FormatInt(o.ID, 10) {
				okOS = true
			}
		}
		if !okOS {
			return nil, nil, fmt.Sprintf("%s: extra software %s (#%d) is not compatible with %s", prefix, sw.Name, sw.ID, o.Name)
		}
	}
	return o, sw, ""
}

func checkRootPass(p string) string {
	if p == "" {
		return "root_pass required"
	}
	if len(p) < 8 || strings.ContainsAny(p, "@#") {
		return "root_pass must be at least 8 characters long and must not contain @ or #"
	}
	return ""
}

func eqOrderInstance(s *Server, c *call) resp {
	if c.a.get("id") != "" {
		return s.orderReinstall(c)
	}
	return s.orderNew(c)
}

func (s *Server) orderReinstall(c *call) resp {
	sv := c.srv
	if sv == nil {
		var r resp
		var bad bool
		if sv, r, bad = s.needServer(c); bad {
			return r
		}
	}
	if sv.inst != nil {
		return notFinished(sv.ID)
	}
	if msg := checkRootPass(c.a.get("root_pass")); msg != "" {
		return failResult("reinstall: " + msg)
	}
	ownOS := c.a.get("own_os") == "1"
	osID, _ := c.a.int("os_id")
	softID, _ := c.a.int("soft_id")
	if !ownOS && osID == 0 {
		return failResult("reinstall: os_id required")
	}
	o, sw, msg := s.checkOSSoft("reinstall", s.serverKind(sv), osID, softID, ownOS)
	if msg != "" {
		return failResult(msg)
	}
	// 003: location_name is mandatory on reinstall; without it (or with another location)
	// invapi reports an OS compatibility error.
	if loc := c.a.get("location_name"); !strings.EqualFold(loc, sv.Location) {
		name, id := "no OS", int64(0)
		if o != nil {
			name, id = o.Name, o.ID
		}
		return failResult(fmt.Sprintf("reinstall: OS %s (#%d) is not compatible with location '%s' (location_name must be the server's location)", name, id, loc))
	}
	in := &install{key: newKey(), serverID: sv.ID, kind: "reinstall", ctxAction: "reinstall", hostname: c.a.get("hostname"),
		callbackURL: c.a.get("post_install_callback"), softID: softID}
	if o != nil {
		in.osID, in.osName = o.ID, o.Name
	}
	sv.inst = in
	s.st.jobs[in.key] = &job{key: in.key, endpoint: "eq_callback", inst: in}
	sv.setTag("reinstall_start", c.now.UTC().Format(time.RFC3339), s.tagID())
	s.startInstall(sv, in, c.now)
	out := obj{"result": "OK", "action": "order_instance", "id": sv.ID, "invoice": 0, "callback": in.key,
		"status": "reinstall", "deploy_status": "reinstall_start", "os_name": in.osName, "soft_name": ""}
	if sw != nil {
		out["soft_name"] = sw.Name
	}
	return ok(out)
}

func (s *Server) tagID() int64 {
	s.st.nextTag++
	return s.st.nextTag
}

func (s *Server) orderNew(c *call) resp {
	if c.sess.serverID != 0 {
		return fail(-1, c.tag()+": access denied for a server API key")
	}
	p := s.findPreset(c.a.get("preset"))
	if p == nil {
		if c.a.get("preset") == "" {
			return fail(-1, "EQ/order_instance: preset required (or id to reinstall)")
		}
		return failResult("order: unknown preset " + c.a.get("preset"))
	}
	loc := strings.ToUpper(c.a.get("location_name"))
	if loc == "" {
		return fail(-1, "EQ/order_instance: location_name required")
	}
	if !p.inLocation(loc) {
		return failResult(fmt.Sprintf("order: preset %s is not available in location %s", p.Name, loc))
	}
	if p.Available <= 0 {
		return failResult(fmt.Sprintf("order: preset %s is out of stock", p.Name))
	}
	if msg := checkRootPass(c.a.get("root_pass")); msg != "" {
		return failResult("order: " + msg)
	}
	period := c.a.get("deploy_period")
	if period == "" {
		period = "monthly"
	}
	months, okp := periodMonths[strings.ToLower(period)]
	if !okp {
		return failResult("order: invalid deploy_period " + period)
	}
	ownOS := c.a.get("own_os") == "1"
	osID, _ := c.a.int("os_id")
	softID, _ := c.a.int("soft_id")
	if !ownOS && osID == 0 {
		return failResult("order: os_id required")
	}
	o, sw, msg := s.checkOSSoft("reinstall", p.kind(), osID, softID, ownOS)
	if msg != "" {
		return failResult(msg)
	}
	planID, _ := c.a.int("traffic_plan")
	var plan *planFix
	for _, tp := range s.fx.plans {
		if tp.ID == planID {
			plan = tp
		}
	}
	if plan == nil {
		return failResult(fmt.Sprintf("order: unknown traffic_plan %q", c.a.get("traffic_plan")))
	}
	kind := "bm"
	if p.Virtual == 1 {
		kind = "vm"
	}
	if !inCSV(plan.Locations, loc) || !kindsOf(plan.Tags)[kind] {
		return failResult(fmt.Sprintf("order: traffic plan %s (#%d) is not available for %s in %s", plan.Name, plan.ID, p.Name, loc))
	}
	pool := s.st.freeIPs[loc]
	if len(pool) == 0 {
		return failResult("order: no free IPv4 addresses in location " + loc)
	}
	ip := pool[0]
	s.st.freeIPs[loc] = pool[1:]
	p.Available--

	id := s.st.nextSrv
	s.st.nextSrv++
	hostname := c.a.get("hostname")
	if hostname == "" {
		hostname = strconv.FormatInt(id, 10)
	}
	var locID int
	for _, l := range s.fx.locations.Locations {
		if l.Code == loc {
			locID = l.LocationID
		}
	}
	typ, ref, ipmi := "BM", "Server", ipmiFix{Model: "supermicro", IP: fmt.Sprintf("10.99.%d.%d", id/250%250, id%250), MAC: "0c:c4:7a:99:00:01"}
	if p.Virtual == 1 {
		typ, ref, ipmi = "VPS", "VPS", ipmiFix{Model: "ovirt"}
	}
	desc, _ := p.raw["description"].(string)
	cpu, ram, hdd := num(p.raw["cpu"]), num(p.raw["ram"]), num(p.raw["hdd"])
	hw := fmt.Sprintf("%d cores/%dGb/%dGb SSD", cpu, ram, hdd)
	sv := &server{serverFix: serverFix{
		ID: id, Hostname: hostname, Location: loc, LocationID: locID, Type: typ, RefTable: ref, Preset: p.Name, PresetID: p.ID,
		PresetDescription: desc, HWConfig: hw, Status: "prepare", Condition: "presale", Power: "off", AccountID: 9000 + id%1000,
		DueDate: c.now.AddDate(0, months, 0).Format("2006-01-02"), DaysLeft: 30 * months, TrafficPlan: plan.ID,
		LimitTraffic: int(num(plan.raw["limit_out"])), CostTraffic: int(num(plan.raw["rate_out"])), LimitBands: int(num(plan.raw["bandwidth"])),
		IPs:      []ipFix{{IP: ip, MAC: fmt.Sprintf("56:6f:ff:%02x:%02x:01", id/256%256, id%256), Port: "eth0", Main: 1, VLAN: 400, PTR: ""}},
		IPMI:     ipmi,
		Tags:     []tagFix{{ID: s.tagID(), Tag: "hostname", Value: hostname}, {ID: s.tagID(), Tag: "order_origin", Value: "invapi"}, {ID: s.tagID(), Tag: "user_name", Value: "root"}},
		Groups:   []string{"Instances"},
		Hardware: map[string]any{"config": hw, "cpu_count": cpu, "ram": ram, "hdd": hdd, "vm": p.Virtual, "components": []any{}},
	}, bootDev: "disk", portsDown: map[string]bool{}}
	s.st.servers[id] = sv

	price := p.MonthlyCom * float64(months)
	invID := s.newInvoice(price, "Unpaid", id, fmt.Sprintf("Instant server %s %s (%s)", loc, p.Name, hostname), c.now)
	in := &install{key: newKey(), serverID: id, kind: "order", ctxAction: "deploy", hostname: hostname,
		callbackURL: c.a.get("post_install_callback"), softID: softID, invoice: invID, state: "waiting_payment", start: c.now}
	if o != nil {
		in.osID, in.osName = o.ID, o.Name
	}
	sv.inst = in
	s.st.jobs[in.key] = &job{key: in.key, endpoint: "eq_callback", inst: in}
	status, dstatus := "Unpaid", "waiting_payment"
	if s.st.credit+1e-9 >= price {
		s.payInvoice(invID, price, c.now)
		status, dstatus = "Paid", "deploy_start"
	}
	out := obj{"result": "OK", "action": "order_instance", "id": 0, "invoice": invID, "callback": in.key,
		"status": status, "deploy_status": dstatus, "os_name": in.osName, "soft_name": ""}
	if sw != nil {
		out["soft_name"] = sw.Name
	}
	return ok(out)
}

// startInstall moves an install to running and schedules its completion.
func (s *Server) startInstall(sv *server, in *install, now time.Time) {
	in.state = "running"
	in.start = now
	in.gen++
	gen := in.gen
	sv.Power = "on"
	s.schedule(now.Add(5*s.opts.StageDuration), func(at time.Time) []func() {
		return s.completeInstall(sv, in, gen, at)
	})
}

// completeInstall finishes an install at sim time at. Callers hold s.mu.
func (s *Server) completeInstall(sv *server, in *install, gen int, at time.Time) []func() {
	if in.state != "running" || in.gen != gen || sv.inst != in {
		return nil
	}
	in.state = "done"
	in.end = at
	sv.inst = nil
	sv.lastKey = in.key
	sv.installs++
	sv.Power = "on"
	if in.osID != 0 {
		sv.OSID, sv.OSName = in.osID, in.osName
		sv.setTag("OS", in.osName, s.tagID())
	} else {
		sv.OSID, sv.OSName = 0, ""
	}
	if in.hostname != "" {
		sv.Hostname = in.hostname
		sv.setTag("hostname", in.hostname, s.tagID())
	}
	sv.removeTag("reinstall_start")
	switch in.kind {
	case "order":
		sv.visible = true
		sv.Status, sv.Condition = "rent", "rent"
		sv.bootDev = "disk"
	case "reinstall":
		sv.bootDev = "disk"
		sv.pxe = nil
	case "pxe":
		if sv.pxe != nil {
			sv.pxe.used = true
		}
	}
	u := in.callbackURL
	if u == "" {
		return nil
	}
	id := sv.ID
	return []func(){func() { s.callCallback(id, u, at) }}
}

// callCallback GETs a post_install_callback URL like a fresh server would, and records
// the outcome. It runs without s.mu.
func (s *Server) callCallback(id int64, u string, at time.Time) {
	rec := CallbackCall{Time: at, URL: u}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		rec.Err = "invalid callback URL"
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("User-Agent", "curl/7.81.0")
		res, err := s.opts.CallbackClient.Do(req)
		if err != nil {
			rec.Err = err.Error()
		} else {
			rec.Status = res.StatusCode
			_ = res.Body.Close()
		}
		cancel()
	}
	s.log.Info("post_install_callback", zap.Int64("server", id), zap.String("host", hostOf(u)), zap.Int("status", rec.Status), zap.Bool("ok", rec.Err == ""))
	s.mu.Lock()
	if sv, ok := s.st.servers[id]; ok {
		sv.callbacks = append(sv.callbacks, rec)
	}
	s.mu.Unlock()
}

func hostOf(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return pu.Host
}

// bootServer is a power-up or reset: with boot_dev pxe and a PXE config the server boots
// the installer — also when the config was used already and clear_pxe was forgotten.
func (s *Server) bootServer(sv *server, now time.Time) {
	if sv.bootDev != "pxe" || sv.pxe == nil || sv.installing() {
		return
	}
	px := sv.pxe
	in := sv.inst
	if in == nil || in.state != "pxe_ready" {
		// A reboot with a PXE config left over from a finished install: surprise.
		in = &install{key: newKey(), serverID: sv.ID, kind: "pxe", ctxAction: "reinstall"}
		sv.surprise++
		sv.inst = in
		s.st.jobs[in.key] = &job{key: in.key, endpoint: "eq_callback", inst: in}
		px.key = in.key
	}
	in.osID, in.osName, in.hostname, in.callbackURL = px.osID, px.osName, px.hostname, px.callbackURL
	s.startInstall(sv, in, now)
}

func (s *Server) installView(in *install) obj {
	loc := ""
	if sv, ok := s.st.servers[in.serverID]; ok {
		loc = sv.Location
	}
	ctx := obj{"action": in.ctxAction, "id": strconv.FormatInt(in.serverID, 10), "location": loc}
	out := obj{"result": "Not ready", "scope": "", "context": ctx, "debug": "", "key": in.key}
	switch in.state {
	case "created":
		out["scope"] = "reinstall key created, waiting for create_pxe"
	case "pxe_ready":
		out["scope"] = "PXE config created, waiting for the server to boot from PXE"
	case "waiting_payment":
		out["scope"] = fmt.Sprintf("waiting for payment of invoice %d", in.invoice)
	case "running":
		out["result"] = "Stage"
		out["scope"] = stageText[in.stage(s.now(), s.opts.StageDuration)]
	case "done":
		out["result"] = "OK"
		out["scope"] = "deploy_done"
		out["debug"] = "autodeploy completed"
		if sv, ok := s.st.servers[in.serverID]; ok {
			ctx["ip"] = sv.mainIP()
		}
		if in.kind != "order" {
			ctx["reinstall"] = 1
		}
	case "cancelled":
		out["result"] = "Error"
		out["scope"] = "cancelled"
		out["debug"] = "aborted by eq/abort_reinstall"
	}
	return out
}

// callbackCheck is eq_callback/check. A finished or cancelled install's key is removed
// once its final answer has been read (001: "After we will retrieve this value, reinstall
// key will be removed from database").
func callbackCheck(s *Server, c *call) resp {
	key := c.a.get("key")
	if key == "" {
		key = c.a.get("reinstall_key")
	}
	if key == "" {
		return fail(-1, "EQ_CALLBACK/check: key required")
	}
	j, okj := s.st.jobs[key]
	if !okj || j.endpoint != "eq_callback" {
		return fail(-1, "AsyncKey "+key+" not found")
	}
	if j.inst == nil {
		return ok(deepCopy(j.envelope).(map[string]any))
	}
	out := s.installView(j.inst)
	if j.inst.state == "done" || j.inst.state == "cancelled" {
		delete(s.st.jobs, key)
	}
	return ok(out)
}

func eqReinstall(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if sv.inst != nil {
		return notFinished(sv.ID)
	}
	in := &install{key: newKey(), serverID: sv.ID, kind: "pxe", ctxAction: "reinstall", state: "created", start: c.now}
	sv.inst = in
	s.st.jobs[in.key] = &job{key: in.key, endpoint: "eq_callback", inst: in}
	sv.setTag("reinstall_start", c.now.UTC().Format(time.RFC3339), s.tagID())
	return ok(obj{"result": "OK", "scope": "reinstall key created, next stage: create_pxe",
		"context": obj{"action": "reinstall", "id": strconv.FormatInt(sv.ID, 10), "location": sv.Location}, "debug": "", "key": in.key})
}

func eqCreatePXE(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	const msg = "Create PXE config request failed: "
	if sv.installing() || (sv.inst != nil && sv.inst.kind != "pxe") {
		return notFinished(sv.ID)
	}
	if m := checkRootPass(c.a.get("root_pass")); m != "" {
		return fail(-1, msg+m)
	}
	osID, okid := c.a.int("os_id")
	if !okid {
		return fail(-1, msg+"os_id required")
	}
	o, _, m := s.checkOSSoft("create_pxe", s.serverKind(sv), osID, 0, false)
	if m != "" {
		return fail(-1, msg+strings.TrimPrefix(m, "create_pxe: "))
	}
	in := sv.inst
	if rk := c.a.get("reinstall_key"); rk != "" {
		if in == nil || in.key != rk {
			return fail(-1, msg+"invalid reinstall_key")
		}
	}
	if in == nil {
		in = &install{key: newKey(), serverID: sv.ID, kind: "pxe", ctxAction: "reinstall", start: c.now}
		sv.inst = in
		s.st.jobs[in.key] = &job{key: in.key, endpoint: "eq_callback", inst: in}
	}
	in.state = "pxe_ready"
	hostname := c.a.get("hostname")
	if hostname == "" {
		hostname = sv.Hostname
	}
	sv.pxe = &pxeConfig{osID: o.ID, osName: o.Name, hostname: hostname, callbackURL: c.a.get("post_install_callback"), key: in.key}
	in.osID, in.osName, in.hostname, in.callbackURL = o.ID, o.Name, hostname, sv.pxe.callbackURL
	return ok(obj{"result": "OK", "scope": "PXE config created for " + hostname,
		"context": obj{"action": "create_pxe", "id": strconv.FormatInt(sv.ID, 10), "location": sv.Location, "os": o.Name}, "debug": "", "key": in.key})
}

func eqBootDev(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	media := strings.ToLower(c.a.get("media"))
	switch media {
	case "pxe", "disk", "cd":
	default:
		return fail(-1, "Bootable media change request failed: invalid media '"+c.a.get("media")+"' (pxe, disk or cd)")
	}
	if bm := c.a.get("boot_mode"); bm != "" && bm != "auto" && bm != "uefi" && bm != "legacy" {
		return fail(-1, "Bootable media change request failed: invalid boot_mode '"+bm+"'")
	}
	sv.bootDev = media
	return ok(s.asyncEnvelope(c, "Set Boot Device to "+media, nil))
}

func eqClearPXE(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	sv.pxe = nil
	if sv.inst != nil && sv.inst.state == "pxe_ready" {
		sv.inst.state = "created"
	}
	return ok(s.asyncEnvelope(c, "PXE config removed", nil))
}

func eqAbortReinstall(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	in := sv.inst
	if in == nil {
		return fail(-1, fmt.Sprintf("EQ/abort_reinstall: no reinstall in progress for server %d", sv.ID))
	}
	in.state = "cancelled"
	in.gen++
	sv.inst = nil
	sv.lastKey = in.key
	sv.pxe = nil
	sv.bootDev = "disk"
	for _, t := range []string{"reinstall_start", "autodeploy_start", "autodeploy_timeout"} {
		sv.removeTag(t)
	}
	if in.kind == "order" {
		sv.Status, sv.Condition = "cancelled", "cancelled"
	}
	return ok(obj{"result": "OK", "module": "eq", "action": "abort_reinstall", "id": sv.ID, "message": "reinstall aborted"})
}
