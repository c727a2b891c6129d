package sim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(whmcsGetInvoices, "whmcs/get_invoices")
	register(whmcsGetInvoice, "whmcs/get_invoice")
	register(whmcsRelatedInvoices, "whmcs/get_related_invoices")
	register(whmcsApplyCredit, "whmcs/apply_credit")
	register(whmcsCreateAddfunds, "whmcs/create_addfunds")
	register(whmcsMassPay, "whmcs/mass_pay")
	register(whmcsRequestCancellation, "whmcs/request_cancellation")
	register(whmcsDeleteCancellation, "whmcs/delete_cancellation_request")
	register(whmcsGetCancellations, "whmcs/get_cancellation_requests")

	register(apiKeysList, "api_keys/list", "api_keys/list_for_server")
	register(apiKeysView, "api_keys/view")
	register(apiKeysAdd, "api_keys/add")
	register(apiKeysEdit, "api_keys/edit")
	register(apiKeysDelete, "api_keys/delete")

	register(ipGetPTR, "ip/get_ptr")
	register(ipUpdatePTR, "ip/update_ptr")
	register(ipSetMain, "ip/set_main")
	register(ipListFree, "ip/list_free_ip")
	register(ipGetIP, "ip/get_ip")

	register(tagsList, "tags/list", "tag/list")
	register(tagsAdd, "tags/add", "tag/add")
	register(tagsRemove, "tags/remove", "tag/remove")
	register(tagsClear, "tags/clear", "tag/clear")

	register(natAdd, "nat/add_static_nat")
	register(natRemove, "nat/remove_static_nat")
	register(natCheck, "nat_callback/check")

	register(netStatus, "net/get_status")
	register(netPort, "net/port_off", "net/port_on")
}

// --- whmcs ---------------------------------------------------------------------------

func parseMoney(s string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f
}

func money(f float64) string { return fmt.Sprintf("%.2f", f) }

func (s *Server) invoice(id int64) map[string]any {
	for _, inv := range s.st.invoices {
		if num(inv["id"]) == id {
			return inv
		}
	}
	return nil
}

func (s *Server) newInvoice(amount float64, status string, serverID int64, desc string, now time.Time) int64 {
	id := s.st.nextInv
	s.st.nextInv++
	d := now.UTC().Format("2006-01-02")
	inv := map[string]any{
		"id": id, "userid": s.fx.account.WhmcsID, "firstname": "Sandbox", "lastname": "User", "companyname": "", "invoicenum": "",
		"date": d, "duedate": d, "datepaid": "0000-00-00 00:00:00", "last_capture_attempt": "0000-00-00 00:00:00",
		"date_refunded": "0000-00-00 00:00:00", "date_cancelled": "0000-00-00 00:00:00",
		"subtotal": money(amount), "credit": "0.00", "tax": "0.00", "tax2": "0.00", "total": money(amount),
		"taxrate": "0.00", "taxrate2": "0.00", "status": status, "paymentmethod": "paypal", "paymethodid": nil, "notes": "",
		"created_at": now.UTC().Format("2006-01-02 15:04:05"), "updated_at": now.UTC().Format("2006-01-02 15:04:05"),
		"currencycode": "EUR", "currencyprefix": "", "currencysuffix": "EUR", "server_id": serverID,
		"items": []any{map[string]any{"id": id*10 + 1, "type": "Hosting", "relid": serverID, "description": desc, "amount": money(amount), "taxed": 0}},
	}
	s.st.invoices = append([]map[string]any{inv}, s.st.invoices...)
	return id
}

// payInvoice pays an invoice from the credit balance and starts a deploy waiting on it.
func (s *Server) payInvoice(id int64, amount float64, now time.Time) {
	inv := s.invoice(id)
	if inv == nil {
		return
	}
	s.st.credit -= amount
	inv["status"] = "Paid"
	inv["credit"] = money(parseMoney(fmt.Sprint(inv["credit"])) + amount)
	inv["total"] = "0.00"
	inv["datepaid"] = now.UTC().Format("2006-01-02 15:04:05")
	inv["updated_at"] = inv["datepaid"]
	for _, sv := range s.sortedServers() {
		if sv.inst != nil && sv.inst.kind == "order" && sv.inst.invoice == id && sv.inst.state == "waiting_payment" {
			s.startInstall(sv, sv.inst, now)
		}
	}
}

func publicInvoice(inv map[string]any) map[string]any {
	m := deepCopy(inv).(map[string]any)
	delete(m, "server_id")
	delete(m, "items")
	return m
}

func whmcsGetInvoices(s *Server, c *call) resp {
	status := c.a.get("status")
	list := []any{}
	for _, inv := range s.st.invoices {
		if status != "" && !strings.EqualFold(status, fmt.Sprint(inv["status"])) {
			continue
		}
		list = append(list, publicInvoice(inv))
	}
	return ok(obj{"result": "success", "totalresults": len(list), "numreturned": len(list), "invoices": obj{"invoice": list}})
}

func whmcsGetInvoice(s *Server, c *call) resp {
	id, _ := c.a.int("invoice_id")
	inv := s.invoice(id)
	if inv == nil {
		return ok(obj{"result": "error", "message": "Invoice ID Not Found"})
	}
	out := publicInvoice(inv)
	delete(out, "id")
	out["invoiceid"] = id
	out["result"] = "success"
	out["balance"] = inv["total"]
	out["ccgateway"] = false
	out["items"] = obj{"item": deepCopy(inv["items"])}
	out["transactions"] = ""
	return ok(out)
}

func whmcsRelatedInvoices(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	list := []any{}
	for _, inv := range s.st.invoices {
		if num(inv["server_id"]) == sv.ID {
			list = append(list, publicInvoice(inv))
		}
	}
	return ok(obj{"result": "success", "invoices": list})
}

func whmcsApplyCredit(s *Server, c *call) resp {
	id, _ := c.a.int("invoice_id")
	inv := s.invoice(id)
	if inv == nil {
		return ok(obj{"result": "error", "message": "Invoice ID Not Found"})
	}
	if inv["status"] != "Unpaid" {
		return ok(obj{"result": "error", "message": "Invoice is not unpaid"})
	}
	amount := parseMoney(c.a.get("amount"))
	due := parseMoney(fmt.Sprint(inv["total"]))
	if amount <= 0 {
		return ok(obj{"result": "error", "message": "Invalid amount"})
	}
	if amount > s.st.credit+1e-9 {
		return ok(obj{"result": "error", "message": "Insufficient credit balance"})
	}
	if amount > due {
		amount = due
	}
	if amount+1e-9 >= due {
		s.payInvoice(id, amount, c.now)
	} else {
		s.st.credit -= amount
		inv["credit"] = money(parseMoney(fmt.Sprint(inv["credit"])) + amount)
		inv["total"] = money(due - amount)
	}
	return ok(obj{"result": "success", "invoiceid": id, "amount": money(amount), "invoicepaid": fmt.Sprint(inv["status"] == "Paid")})
}

func whmcsCreateAddfunds(s *Server, c *call) resp {
	amount := parseMoney(c.a.get("amount"))
	if amount <= 0 {
		return ok(obj{"result": "error", "message": "Invalid amount"})
	}
	id := s.newInvoice(amount, "Unpaid", 0, "Add Funds", c.now)
	return ok(obj{"result": "success", "invoiceid": id})
}

func whmcsMassPay(s *Server, c *call) resp {
	ids := c.a.values("invoices[]")
	if len(ids) == 0 {
		return ok(obj{"result": "error", "message": "No invoices given"})
	}
	var total float64
	for _, x := range ids {
		id, _ := strconv.ParseInt(x, 10, 64)
		inv := s.invoice(id)
		if inv == nil || inv["status"] != "Unpaid" {
			return ok(obj{"result": "error", "message": "Invoice " + x + " is not an unpaid invoice of this account"})
		}
		total += parseMoney(fmt.Sprint(inv["total"]))
	}
	id := s.newInvoice(total, "Unpaid", 0, "Mass payment of invoices "+strings.Join(ids, ", "), c.now)
	return ok(obj{"result": "success", "invoiceid": id})
}

func whmcsRequestCancellation(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if sv.cancelReq != nil {
		return ok(obj{"result": "error", "message": "A cancellation request for this service already exists"})
	}
	typ, okt := c.a.int("cancellation_type")
	if !okt || (typ != 0 && typ != 1) {
		return ok(obj{"result": "error", "message": "cancellation_type must be 0 or 1"})
	}
	sv.cancelReq = &cancellation{typ: int(typ), reason: c.a.get("terminate_reason_custom"), date: c.now}
	if typ == 1 {
		req := sv.cancelReq
		s.schedule(c.now.Add(s.opts.StageDuration), func(time.Time) []func() {
			if sv.cancelReq == req {
				sv.Status, sv.Condition, sv.Power = "cancelled", "power_off", "off"
			}
			return nil
		})
	}
	return ok(obj{"result": "success", "message": "Cancellation request submitted", "id": sv.ID})
}

func whmcsDeleteCancellation(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if sv.cancelReq == nil || sv.Status == "cancelled" {
		return ok(obj{"result": "error", "message": "No pending cancellation request for this service"})
	}
	sv.cancelReq = nil
	return ok(obj{"result": "success"})
}

func whmcsGetCancellations(s *Server, c *call) resp {
	id, _ := c.a.int("id")
	list := []any{}
	for _, sv := range s.sessionServerList(c) {
		if sv.cancelReq == nil || (id != 0 && sv.ID != id) {
			continue
		}
		typ := "End of Billing Period"
		if sv.cancelReq.typ == 1 {
			typ = "Immediate"
		}
		list = append(list, obj{"id": sv.ID, "type": typ, "reason": sv.cancelReq.reason, "date": sv.cancelReq.date.UTC().Format("2006-01-02 15:04:05"), "status": sv.Status})
	}
	return ok(obj{"result": "success", "requests": list})
}

// --- api_keys --------------------------------------------------------------------------

func keyData(c *call, data any) resp {
	return ok(obj{"result": "OK", "module": "api_keys", "action": c.action, "data": data})
}

func (s *Server) findKey(c *call) (*apiKey, resp, bool) {
	id, _ := c.a.int("id")
	for _, k := range s.st.keys {
		if k.ID == id && (c.sess.serverID == 0 || k.ServerID == c.sess.serverID) {
			return k, resp{}, false
		}
	}
	return nil, fail(-1, "API_KEYS/"+c.action+": api key "+c.a.get("id")+" not found"), true
}

func apiKeysList(s *Server, c *call) resp {
	var want int64 = -1
	if c.action == "list_for_server" {
		sv, r, bad := s.serverFor(c, "server_id")
		if bad {
			return r
		}
		want = sv.ID
	}
	list := []any{}
	for _, k := range s.st.keys {
		if want >= 0 && k.ServerID != want {
			continue
		}
		if c.sess.serverID != 0 && k.ServerID != c.sess.serverID {
			continue
		}
		list = append(list, k.view())
	}
	return keyData(c, list)
}

func apiKeysView(s *Server, c *call) resp {
	k, r, bad := s.findKey(c)
	if bad {
		return r
	}
	return keyData(c, k.view())
}

func validNotify(m string) bool { return m == "none" || m == "email" || m == "webhook" }

func apiKeysAdd(s *Server, c *call) resp {
	name := c.a.get("name")
	if name == "" {
		return fail(-1, "API_KEYS/add: name required")
	}
	method := c.a.get("login_notify_method")
	if method == "" {
		method = "none"
	}
	if !validNotify(method) {
		return fail(-1, "API_KEYS/add: invalid login_notify_method")
	}
	var sid int64
	if c.a.get("server_id") != "" && c.a.get("server_id") != "0" {
		sv, r, bad := s.serverFor(c, "server_id")
		if bad {
			return r
		}
		sid = sv.ID
	}
	active := 1
	if c.a.get("active") == "0" {
		active = 0
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	k := &apiKey{ID: s.st.nextKey, Name: name, Key: h[:16] + "-" + h[16:], ServerID: sid, Active: active, IP: c.a.get("ip"), LoginNotifyMethod: method}
	if addr := c.a.get("login_notify_address"); addr != "" {
		k.LoginNotifyAddress = &addr
	}
	s.st.nextKey++
	s.st.keys = append(s.st.keys, k)
	v := k.view()
	v["api_key"] = k.Key
	return keyData(c, v)
}

func apiKeysEdit(s *Server, c *call) resp {
	k, r, bad := s.findKey(c)
	if bad {
		return r
	}
	if v := c.a.get("name"); v != "" {
		k.Name = v
	}
	if c.a.has("ip") {
		k.IP = c.a.get("ip")
	}
	if v := c.a.get("login_notify_method"); v != "" {
		if !validNotify(v) {
			return fail(-1, "API_KEYS/edit: invalid login_notify_method")
		}
		k.LoginNotifyMethod = v
	}
	if v := c.a.get("login_notify_address"); v != "" {
		k.LoginNotifyAddress = &v
	}
	if v := c.a.get("active"); v == "0" || v == "1" {
		k.Active, _ = strconv.Atoi(v)
		if k.Active == 0 {
			s.dropKeySessions(k.ID)
		}
	}
	return keyData(c, k.view())
}

func (s *Server) dropKeySessions(keyID int64) {
	for t, se := range s.st.sessions {
		if se.keyID == keyID {
			delete(s.st.sessions, t)
		}
	}
}

func apiKeysDelete(s *Server, c *call) resp {
	k, r, bad := s.findKey(c)
	if bad {
		return r
	}
	for i, x := range s.st.keys {
		if x == k {
			s.st.keys = append(s.st.keys[:i], s.st.keys[i+1:]...)
			break
		}
	}
	s.dropKeySessions(k.ID)
	return keyData(c, obj{"id": k.ID})
}

// --- ip --------------------------------------------------------------------------------

// ipOwner finds the session-visible server holding ip.
func (s *Server) ipOwner(c *call, ip string) (*server, int) {
	for _, sv := range s.sessionServerList(c) {
		for i := range sv.IPs {
			if sv.IPs[i].IP == ip {
				return sv, i
			}
		}
	}
	return nil, -1
}

func ipGetPTR(s *Server, c *call) resp {
	ip := c.a.get("ip")
	sv, i := s.ipOwner(c, ip)
	if sv == nil || (c.srv != nil && c.srv != sv) {
		return fail(-1, "IP/get_ptr: invalid request")
	}
	return ok(obj{"result": "OK", "message": sv.IPs[i].PTR})
}

func ipUpdatePTR(s *Server, c *call) resp {
	ip := c.a.get("ip")
	sv, i := s.ipOwner(c, ip)
	if sv == nil || c.srv == nil || c.srv != sv {
		return fail(-1, fmt.Sprintf("IP %s is not assigned for server %s", ip, c.a.get("id")))
	}
	ptr := strings.TrimSuffix(strings.TrimSpace(c.a.get("ptr")), ".")
	if ptr == "" || strings.ContainsAny(ptr, " /@") {
		return fail(-1, "IP/update_ptr: invalid ptr")
	}
	sv.IPs[i].PTR = ptr
	return ok(obj{"result": "OK", "message": ""})
}

func ipSetMain(s *Server, c *call) resp {
	ip := c.a.get("ip")
	sv, i := s.ipOwner(c, ip)
	if sv == nil || c.srv == nil || c.srv != sv {
		return fail(-1, "invalid request (ID or IP mismatch)")
	}
	for j := range sv.IPs {
		sv.IPs[j].Main = 0
	}
	sv.IPs[i].Main = 1
	return ok(obj{"result": "OK", "message": "Data returned from ipv4_set_main function"})
}

func ipListFree(s *Server, c *call) resp {
	loc := strings.ToUpper(c.a.get("location"))
	var locs []string
	for l := range s.st.freeIPs {
		if loc == "" || l == loc {
			locs = append(locs, l)
		}
	}
	if loc != "" && len(locs) == 0 {
		return fail(-1, "illegal IP subnet")
	}
	sort.Strings(locs)
	list := []string{}
	for _, l := range locs {
		for _, ip := range s.st.freeIPs[l] {
			list = append(list, ip+" "+l)
		}
	}
	return ok(obj{"result": "OK", "ip": list})
}

func ipGetIP(s *Server, c *call) resp {
	ip := net.ParseIP(c.a.get("ip")).To4()
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		return fail(-1, "malformed IP="+c.a.get("ip"))
	}
	n := ip.Mask(net.CIDRMask(24, 32))
	gw := net.IPv4(n[0], n[1], n[2], 1)
	bc := net.IPv4(n[0], n[1], n[2], 255)
	return ok(obj{"result": "OK", "module": "ip", "action": "get_ip", "data": obj{
		"network": n.String(), "netmask": "255.255.255.0", "gateway": gw.String(), "broadcast": bc.String()}})
}

// --- tags (undocumented in the seeds; shapes follow the public clients) -----------------

func tagsList(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	return ok(obj{"result": "OK", "tags": tagList(sv, "eq")})
}

// tagList is the server's tags as invapi lists them; component is what the calling
// action names the owner (tags/list says "eq", eq/show "Component1"). A tag without an
// ID gets a stable one from the server's.
func tagList(sv *server, component string) []any {
	list := []any{}
	for i, t := range sv.Tags {
		id := t.ID
		if id == 0 {
			id = sv.ID*100 + int64(i)
		}
		list = append(list, obj{"id": id, "component": component, "component_id": sv.ID, "tag": t.Tag, "value": t.Value, "extra": t.Extra, "internal": 0})
	}
	return list
}

func tagName(c *call) string {
	if t := c.a.get("tag"); t != "" {
		return t
	}
	return c.a.get("name")
}

// tagTarget reads the server and the tag name of a tag call.
func (s *Server) tagTarget(c *call) (sv *server, t string, r resp, bad bool) {
	if sv, r, bad = s.needServer(c); bad {
		return
	}
	if t = tagName(c); t == "" {
		return nil, "", fail(-1, c.tag()+": tag required"), true
	}
	return sv, t, resp{}, false
}

func tagsAdd(s *Server, c *call) resp {
	sv, t, r, bad := s.tagTarget(c)
	if bad {
		return r
	}
	id := s.tagID()
	sv.setTag(t, c.a.get("value"), id)
	if t == "hostname" && c.a.get("value") != "" {
		sv.Hostname = c.a.get("value")
	}
	return ok(obj{"result": "OK", "id": id})
}

func tagsRemove(s *Server, c *call) resp {
	sv, t, r, bad := s.tagTarget(c)
	if bad {
		return r
	}
	if !sv.removeTag(t) {
		return fail(-1, c.tag()+": tag "+t+" not found")
	}
	return ok(obj{"result": "OK"})
}

func tagsClear(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	keep := sv.Tags[:0]
	for _, t := range sv.Tags {
		if t.Tag == "hostname" || t.Tag == "OS" || t.Tag == "user_name" {
			keep = append(keep, t)
		}
	}
	sv.Tags = keep
	return ok(obj{"result": "OK"})
}

// --- nat -------------------------------------------------------------------------------

// natDelay is how long (sim time) a NAT job stays "Not ready".
const natDelay = time.Minute

func natAdd(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if sv.IPMI.IP == "" {
		return fail(-1, "NAT/add_static_nat: server has no IPMI interface")
	}
	natIP := sv.IPMI.IP
	if len(s.st.natPool) > 0 {
		natIP = s.st.natPool[int(sv.ID)%len(s.st.natPool)]
	}
	sv.nat = &natRule{natIP: natIP, expires: c.now.Add(2 * time.Hour)}
	ctx := obj{"action": "add_static_nat", "id": strconv.FormatInt(sv.ID, 10), "location": sv.Location}
	key := newKey()
	done := obj{"result": "OK", "scope": fmt.Sprintf("Static NAT %s -> %s created, valid for 2 hours", natIP, sv.IPMI.IP),
		"context": obj{"action": "add_static_nat", "id": strconv.FormatInt(sv.ID, 10), "location": sv.Location,
			"nat_ip": natIP, "ipmi_ip": sv.IPMI.IP, "expire": sv.nat.expires.Unix()}, "debug": "", "key": key}
	pending := obj{"result": "Not ready", "scope": "", "context": ctx, "debug": "", "key": key}
	s.st.jobs[key] = &job{key: key, endpoint: "nat_callback", envelope: done, pending: pending, readyAt: c.now.Add(natDelay)}
	return ok(obj{"result": "OK", "scope": "NAT request queued", "context": deepCopy(ctx), "debug": "", "key": key})
}

func natRemove(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	sv.nat = nil
	return ok(s.asyncEnvelope(c, "Static NAT removed", nil))
}

func natCheck(s *Server, c *call) resp {
	key := c.a.get("key")
	if key == "" {
		return fail(-1, "NAT_CALLBACK/check: key required")
	}
	j, okj := s.st.jobs[key]
	if !okj || j.endpoint != "nat_callback" {
		return fail(-1, "AsyncKey "+key+" not found")
	}
	if j.pending != nil && c.now.Before(j.readyAt) {
		return ok(deepCopy(j.pending).(map[string]any))
	}
	return ok(deepCopy(j.envelope).(map[string]any))
}

// --- net -------------------------------------------------------------------------------

func netStatus(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	port := c.a.get("port")
	if port == "" && len(sv.IPs) > 0 {
		port = sv.IPs[0].Port
	}
	st := "connected"
	if sv.portsDown[port] {
		st = "disabled"
	}
	var macs []string
	vlan := 0
	for _, ip := range sv.IPs {
		if ip.Port == port {
			macs = append(macs, ip.MAC)
			vlan = ip.VLAN
		}
	}
	sw := "virtual"
	if sv.Type == "BM" {
		sw = "sw-" + strings.ToLower(sv.Location) + "-01.sandbox.example"
	}
	scope := fmt.Sprintf(`{"switch":%q,"port":%q,"vlan":"v%d","speed":"1000","status":%q,"mac":[%q],"port_security":"","shape":"","interface":%q}`,
		sw, port, vlan, st, strings.Join(macs, `","`), port)
	return ok(s.asyncEnvelope(c, scope, obj{"ip_ipmi": sv.IPMI.IP, "interface_id": port, "port": port}))
}

func netPort(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	port := c.a.get("port")
	if port == "" {
		return fail(-1, c.tag()+": port required")
	}
	found := false
	for _, ip := range sv.IPs {
		found = found || ip.Port == port
	}
	if !found {
		return fail(-1, c.tag()+": unknown port "+port)
	}
	if c.action == "port_off" {
		sv.portsDown[port] = true
		return ok(s.asyncEnvelope(c, "Port "+port+" disabled", nil))
	}
	delete(sv.portsDown, port)
	return ok(s.asyncEnvelope(c, "Port "+port+" enabled", nil))
}
