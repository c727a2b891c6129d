package sim

import (
	"sort"
	"strconv"
	"strings"
)

func init() {
	register(eqList, "eq/list")
	register(eqSearch, "eq/search")
	register(eqUnifiedSearch, "eq/unified_server_search")
	register(eqShow, "eq/show")
	register(eqStatus, "eq/status")
	register(eqUpdateServers, "eq/update_servers")
	register(eqPower, "eq/on", "eq/off", "eq/hard_off", "eq/reboot")
	register(eqSuspend, "eq/suspend", "eq/unsuspend")
	register(eqSetPIN, "eq/set_pin")
	register(eqCheckPIN, "eq/check_pin")
}

// sessionServersList returns the servers the session may see, in ID order.
func (s *Server) sessionServerList(c *call) []*server {
	var out []*server
	for _, sv := range s.st.visibleServers() {
		if c.sess.servers[sv.ID] {
			out = append(out, sv)
		}
	}
	return out
}

func summary(sv *server) obj {
	tags := obj{}
	for _, t := range sv.Tags {
		tags[t.Tag] = t.Value
	}
	ips := []string{}
	for _, ip := range sv.IPs {
		ips = append(ips, ip.IP)
	}
	return obj{
		"id": sv.ID, "name": sv.Hostname, "hostname": sv.Hostname, "location": sv.Location, "status": sv.Status,
		"Condition_Component": sv.Condition, "ip": sv.mainIP(), "ips": ips, "type": sv.Type, "preset": sv.Preset,
		"os": sv.OSName, "tags": tags,
	}
}

// matches applies eq/list and eq/search filters; empty filters match everything.
func matches(sv *server, f map[string][]string) bool {
	anyOf := func(vals []string, pred func(string) bool) bool {
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if pred(v) {
				return true
			}
		}
		return false
	}
	return anyOf(f["location"], func(v string) bool { return strings.EqualFold(v, sv.Location) }) &&
		anyOf(f["status"], func(v string) bool {
			return strings.EqualFold(v, sv.Status) || strings.EqualFold(v, sv.Condition)
		}) &&
		anyOf(f["ip"], func(v string) bool {
			for _, ip := range sv.IPs {
				if ip.IP == v {
					return true
				}
			}
			return false
		}) &&
		anyOf(f["mac"], func(v string) bool {
			for _, ip := range sv.IPs {
				if strings.EqualFold(ip.MAC, v) {
					return true
				}
			}
			return false
		}) &&
		anyOf(f["id"], func(v string) bool { return v == strconv.FormatInt(sv.ID, 10) }) &&
		anyOf(f["group"], func(v string) bool {
			for _, g := range sv.Groups {
				if strings.EqualFold(g, v) {
					return true
				}
			}
			return false
		}) &&
		anyOf(f["type"], func(v string) bool {
			return strings.EqualFold(v, sv.Type) || (strings.EqualFold(v, "server") && sv.Type == "BM")
		})
}

func eqList(s *Server, c *call) resp {
	f := map[string][]string{}
	for _, k := range []string{"location", "status", "ip", "mac", "id", "group", "type"} {
		f[k] = c.a.values(k)
	}
	// 001 also takes group names as bare flags (Mini=, VPS=, 1CPU= ...).
	for _, g := range []string{"Mini", "Storage", "Nodes", "Micro", "VPS", "1CPU", "2CPU", "Dell", "Gpu", "Instances", "AMD"} {
		if _, ok := c.a.raw[g]; ok {
			f["group"] = append(f["group"], g)
		}
	}
	full := c.a.get("full") == "1" || c.a.get("full") == "true"
	ids := []int64{}
	rows := []any{}
	for _, sv := range s.sessionServerList(c) {
		if matches(sv, f) {
			ids = append(ids, sv.ID)
			rows = append(rows, summary(sv))
		}
	}
	if full {
		return ok(obj{"result": "OK", "servers": rows})
	}
	return ok(obj{"result": "OK", "servers": ids})
}

func eqSearch(s *Server, c *call) resp {
	f := map[string][]string{}
	for _, k := range []string{"location", "status", "ip", "mac", "id", "group", "type"} {
		f[k] = c.a.values("params[" + k + "]")
	}
	rows := []any{}
	for _, sv := range s.sessionServerList(c) {
		if matches(sv, f) {
			rows = append(rows, summary(sv))
		}
	}
	return ok(obj{"result": "OK", "servers": rows})
}

func eqUnifiedSearch(s *Server, c *call) resp {
	q := strings.ToLower(strings.TrimSpace(c.a.get("query")))
	if q == "" {
		return fail(-1, c.tag()+": query required")
	}
	rows := []any{}
	for _, sv := range s.sessionServerList(c) {
		hit := strconv.FormatInt(sv.ID, 10) == q || strings.Contains(strings.ToLower(sv.Hostname), q)
		for _, ip := range sv.IPs {
			hit = hit || ip.IP == q
		}
		for _, t := range sv.Tags {
			hit = hit || strings.Contains(strings.ToLower(t.Value), q)
		}
		if hit {
			rows = append(rows, obj{"id": sv.ID, "name": sv.Hostname, "owner": s.fx.account.Email, "status": sv.Status, "billing": "en", "type": "server"})
		}
	}
	return ok(obj{"result": "OK", "results": obj{"servers": rows}, "limited": obj{"servers": false}, "category": "servers"})
}

func (s *Server) showServer(sv *server) obj {
	groups := []any{}
	for i, g := range sv.Groups {
		groups = append(groups, obj{"ID": strconv.Itoa(30 + i), "Code": g, "Name": g, "active": 1})
	}
	ips := []any{}
	ifaces := []any{}
	seenPort := map[string]bool{}
	for _, ip := range sv.IPs {
		st := "enable"
		if sv.portsDown[ip.Port] {
			st = "disable"
		}
		ips = append(ips, obj{
			"port": ip.Port, "MAC": ip.MAC, "IP": ip.IP, "status": st, "main_ip": ip.Main, "locked": 0, "date_block": nil,
			"main_int": 1, "vlan": ip.VLAN, "updated": 0, "white_ddos": 0, "description": "", "ptr": ip.PTR,
		})
		if !seenPort[ip.Port] {
			seenPort[ip.Port] = true
			model := "virtual"
			if sv.Type == "BM" {
				model = "switch"
			}
			ifaces = append(ifaces, obj{"id": 120000 + len(ifaces) + int(sv.ID%1000)*10, "type": ip.Port, "mac": ip.MAC,
				"upstream_id": nil, "IsMain": 1, "IsVirt": 0, "Status": st, "switch_owner": "", "switch_model": model})
		}
	}
	ipmiIfaces := []any{}
	if sv.IPMI.IP != "" {
		ipmiIfaces = append(ipmiIfaces, obj{"IP": sv.IPMI.IP, "MAC": sv.IPMI.MAC})
	}
	tags := tagList(sv, "Component1")
	reinstall := ""
	if sv.inst != nil {
		reinstall = sv.inst.key
	}
	var osv any
	if sv.OSID != 0 {
		osv = obj{"id": sv.OSID, "name": sv.OSName}
	}
	return obj{
		"result": "OK",
		"server_data": obj{
			"id": sv.ID, "ref_tableName": sv.RefTable, "Condition_Component": sv.Condition, "account_id": sv.AccountID,
			"type_billing": s.fx.account.WhmcsLocation, "is_owner": "Rent", "cost_trafficIN": 0, "limit_trafficIN": 999,
			"cost_traffic": sv.CostTraffic, "limit_traffic": sv.LimitTraffic, "new_limit_traffic": 0, "limit_bands": sv.LimitBands,
			"trafficPeriodOut": 0, "trafficPeriodIn": 0, "IsShape": 1, "hwconfig": sv.HWConfig, "status": sv.Status,
			"type": sv.Type, "days_left": sv.DaysLeft, "due_date": sv.DueDate, "hostname": sv.Hostname,
		},
		"hardware":           deepCopy(sv.Hardware),
		"groups":             groups,
		"licenses":           []any{},
		"location":           obj{"dc_location": sv.Location, "location_id": sv.LocationID},
		"OS":                 osv,
		"IP":                 ips,
		"interfaces":         ifaces,
		"IPMI":               obj{"model": sv.IPMI.Model, "interfaces": ipmiIfaces},
		"tags":               tags,
		"preset":             sv.Preset,
		"preset_description": sv.PresetDescription,
		"reinstall":          reinstall,
		"commitment":         "",
	}
}

func eqShow(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	return ok(s.showServer(sv))
}

func eqStatus(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	return ok(s.asyncEnvelope(c, "Chassis Power is "+sv.Power, nil))
}

// billingServers lists orders not yet delivered, as update_servers shows them.
func (s *Server) billingServers() []any {
	out := []any{}
	for _, sv := range s.sortedServers() {
		if sv.visible || sv.inst == nil || sv.inst.kind != "order" {
			continue
		}
		st := "Pending"
		if sv.inst.state == "waiting_payment" {
			st = "Pending payment"
		}
		out = append(out, obj{"id": sv.inst.invoice, "config": sv.HWConfig, "status": st, "regdate": sv.inst.start.Format("2006-01-02"),
			"name": sv.Preset + " " + sv.Location, "recurring": 1, "nextduedate": sv.DueDate, "billingcycle": "Monthly"})
	}
	return out
}

func (s *Server) sortedServers() []*server {
	out := make([]*server, 0, len(s.st.servers))
	for _, sv := range s.st.servers {
		out = append(out, sv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// deployKeys maps invoice ID (and server ID) to the callback key of running orders and
// reinstalls; PHP sends an empty map as [].
func (s *Server) deployKeys(se *session) any {
	m := obj{}
	for _, sv := range s.sortedServers() {
		if sv.inst == nil || (sv.inst.kind == "pxe") {
			continue
		}
		if sv.inst.kind == "order" {
			if se.serverID != 0 {
				continue
			}
			m[strconv.FormatInt(sv.inst.invoice, 10)] = sv.inst.key
		} else if !se.servers[sv.ID] {
			continue
		}
		m[strconv.FormatInt(sv.ID, 10)] = sv.inst.key
	}
	if len(m) == 0 {
		return []any{}
	}
	return m
}

// eqUpdateServers refreshes the session's server list from the account (servers
// delivered after login appear only after this call, as 001 says).
func eqUpdateServers(s *Server, c *call) resp {
	se := c.sess
	se.servers = map[int64]bool{}
	for _, sv := range s.st.visibleServers() {
		if se.serverID == 0 || sv.ID == se.serverID {
			se.servers[sv.ID] = true
		}
	}
	return ok(obj{"result": "OK", "servers": s.sessionServers(se), "billing_servers": s.billingServers(), "deploy_keys": s.deployKeys(se)})
}

var powerFail = map[string]string{
	"on": "Power on request failed", "off": "Power off request failed", "hard_off": "Stop request failed", "reboot": "Reboot request failed",
}

func eqPower(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	msg := powerFail[c.action]
	if sv.Condition == "power_off" {
		return fail(-1, msg+": server is suspended")
	}
	if sv.installing() {
		return fail(-1, msg+": server "+strconv.FormatInt(sv.ID, 10)+" is being reinstalled")
	}
	var scope string
	switch c.action {
	case "on":
		scope = "Chassis Power Control: Up/On"
		if sv.Power != "on" {
			sv.Power = "on"
			s.bootServer(sv, c.now)
		}
	case "off", "hard_off":
		scope = "Chassis Power Control: Down/Off"
		sv.Power = "off"
	case "reboot":
		if sv.Power != "on" {
			return fail(-1, msg+": server is powered off")
		}
		scope = "Chassis Power Control: Reset"
		s.bootServer(sv, c.now)
	}
	return ok(s.asyncEnvelope(c, scope, nil))
}

func eqSuspend(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if c.action == "suspend" {
		if sv.installing() {
			return fail(-1, "Suspend request failed: server is being reinstalled")
		}
		sv.Condition = "power_off"
		sv.Power = "off"
	} else {
		if sv.Condition != "power_off" {
			return fail(-1, "Unsuspend request failed: server is not suspended")
		}
		sv.Condition = "rent"
	}
	return ok(s.asyncEnvelope(c, "OK", nil))
}

func pinEnvelope(action, scope, debug string) obj {
	return obj{"result": "OK", "scope": scope, "context": obj{"action": action, "id": "0"}, "debug": debug, "key": newKey()}
}

// eqCheckPIN answers in 001's shape: result "OK" with scope "Invalid pin code" for a wrong
// PIN, and debug "Blocked For Security Purposes" (slowly) while locked.
func eqCheckPIN(s *Server, c *call) resp {
	pin := c.a.get("pin")
	if pin == "" {
		pin = c.a.get("old_pin")
	}
	if s.locked(c.now) {
		return resp{body: pinEnvelope("check_pin", "Invalid pin code", "Blocked For Security Purposes"), delay: s.opts.PINFailDelay}
	}
	if pin == "" {
		return fail(-1, "EQ/check_pin: pin required")
	}
	if s.st.pin == "" || pin != s.st.pin {
		s.pinFailed(c.now)
		return ok(pinEnvelope("check_pin", "Invalid pin code", ""))
	}
	s.st.pinFails = 0
	return ok(pinEnvelope("check_pin", "Pin code is valid", ""))
}

func eqSetPIN(s *Server, c *call) resp {
	np := c.a.get("new_pin")
	if np == "" {
		return fail(-1, "EQ/set_pin: new_pin required")
	}
	if s.st.pin != "" {
		if r, bad := s.checkPIN(c.a.get("old_pin"), c.now); bad {
			if m, ok := r.body.(obj); ok && m["error"] == "PIN code required" {
				r.body = obj{"result": -1, "error": "old_pin required to change the PIN code"}
			}
			return r
		}
	}
	if len(np) < 4 || len(np) > 10 {
		return failResult("new_pin must be 4-10 characters")
	}
	s.st.pin = np
	return ok(pinEnvelope("set_pin", "PIN code set", ""))
}
