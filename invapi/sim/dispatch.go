package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// call is one request on its way through dispatch.
type call struct {
	module, action, token, method, remote, host string
	a                                           *args
	sess                                        *session
	cat                                         *schemas.Action
	srv                                         *server // the server named by id, when checked
	now                                         time.Time
}

func (c *call) key() string { return c.module + "/" + c.action }

// tag is the module as invapi spells it in messages ("EQ/groups: invalid server id").
func (c *call) tag() string { return strings.ToUpper(c.module) + "/" + c.action }

type resp struct {
	status int
	body   any
	html   string
	delay  time.Duration
}

func (r resp) outcome() string {
	switch b := r.body.(type) {
	case map[string]any:
		if v, ok := b["code"]; ok {
			return fmt.Sprint("code ", v)
		}
		if v, ok := b["result"]; ok {
			return fmt.Sprint("result ", v)
		}
	}
	if r.html != "" {
		return "html"
	}
	return "ok"
}

type obj = map[string]any

func ok(body obj) resp { return resp{body: body} }

func errCode(code int, msg string) obj { return obj{"code": code, "message": msg} }

func fail(code int, msg string) resp { return resp{body: errCode(code, msg)} }

func failResult(msg string) resp { return resp{body: obj{"result": -1, "error": msg}} }

type handler func(s *Server, c *call) resp

// handlers are the actions with their own behaviour; every other known action goes to
// the generic, catalog-driven handler.
var handlers = map[string]handler{}

func register(h handler, keys ...string) {
	for _, k := range keys {
		handlers[k] = h
	}
}

// noAuth actions answer without a session token (catalog "auth: none" adds to these).
var noAuth = map[string]bool{
	"auth/login": true, "auth/whmcslogin": true,
	"presets/list": true, "presets/info": true, "presets/search": true,
	"os/list": true, "software/list": true, "soft/list": true, "traffic_plans/list": true,
	"stocks/list": true, "stocks/show": true, "jenkins/get_tasks": true, "jenkins/list": true,
	"eq_callback/check": true, "nat_callback/check": true,
}

// pinFallback lists the actions that want the PIN when the catalog does not (yet) know
// them: 001 lists pin as required on these.
var pinFallback = map[string]bool{
	"eq/on": true, "eq/off": true, "eq/reboot": true, "eq/hard_off": true,
	"eq/order_instance": true, "eq/create_pxe": true, "eq/boot_dev": true, "eq/unit_reset": true,
	"eq/console": true, "nat/add_static_nat": true,
	"net/get_status": true, "net/port_off": true, "net/port_on": true, "net/show_cacti": true,
}

// pinSelf are PIN actions that check the PIN themselves with their own answer shapes.
var pinSelf = map[string]bool{"eq/check_pin": true, "eq/set_pin": true}

// serverModules are modules whose "id" parameter is a server ID.
var serverModules = map[string]bool{
	"eq": true, "net": true, "nat": true, "ip": true, "vm": true, "iso": true, "tags": true, "tag": true, "whmcs": true,
}

// idNotServer are actions of those modules whose id is a filter or another kind of ID.
var idNotServer = map[string]bool{
	"eq/list": true, "eq/search": true, "ip/list_free_ip": true, "eq/unified_server_search": true, "eq/update_servers": true,
}

func (s *Server) lookupCatalog(module, action string) *schemas.Action {
	if a, ok := s.catalog.Lookup(module, action); ok {
		return a
	}
	return s.byEP[module+"/"+action]
}

func (s *Server) undocumented(module, action string) bool {
	for _, u := range s.catalog.Undocumented {
		if u.Module == module && u.Action == action {
			return true
		}
	}
	return false
}

func (s *Server) knownModule(m string) bool { return s.modules[m] }

// moduleSet lists every module the simulator answers: its handlers, the catalog (modules
// and endpoints), the canned answers and the permission list.
func (s *Server) moduleSet() map[string]bool {
	set := map[string]bool{}
	add := func(key string) {
		if i := strings.IndexByte(key, '/'); i > 0 {
			set[key[:i]] = true
		}
	}
	for k := range handlers {
		add(k)
	}
	for k := range s.byEP {
		add(k)
	}
	for _, u := range s.catalog.Undocumented {
		set[u.Module] = true
	}
	for k := range s.fx.canned {
		add(k)
	}
	for _, p := range s.fx.account.Permissions {
		add(p)
	}
	return set
}

func (s *Server) needsPIN(c *call) bool {
	if pinSelf[c.key()] {
		return false
	}
	if c.cat != nil {
		return c.cat.PIN
	}
	return pinFallback[c.key()]
}

// deniedPerServer reports whether a per-server key's session may not call key.
func (s *Server) deniedPerServer(key string) bool {
	for _, d := range s.fx.account.PerServerDenied {
		if d == key || (strings.HasSuffix(d, "/*") && strings.HasPrefix(key, strings.TrimSuffix(d, "*"))) {
			return true
		}
	}
	return false
}

// dispatch answers a request. Callers hold s.mu.
func (s *Server) dispatch(c *call) resp {
	c.now = s.now()
	if !s.knownModule(c.module) {
		return resp{status: 404, html: notFoundHTML}
	}
	mtag := strings.ToUpper(c.module)
	if c.action == "" {
		return fail(-2, mtag+": action required")
	}
	h := handlers[c.key()]
	c.cat = s.lookupCatalog(c.module, c.action)
	_, canned := s.fx.canned[c.key()]
	if h == nil && c.cat == nil && !canned && !s.undocumented(c.module, c.action) {
		return fail(-1, mtag+": invalid action "+c.action)
	}

	// Session.
	open := noAuth[c.key()] || (c.cat != nil && c.cat.NoAuth)
	if c.token != "" {
		if se, ok := s.st.sessions[c.token]; ok && se.valid(c.now) {
			c.sess = se
		}
	}
	if c.sess == nil && !open {
		return fail(-2, "Authentication required")
	}
	if c.sess != nil && c.sess.serverID != 0 && s.deniedPerServer(c.key()) {
		return fail(-1, c.tag()+": access denied for a server API key")
	}

	// A locked account fails every PIN action at once, slowly.
	pin := s.needsPIN(c)
	if pin && s.locked(c.now) {
		return s.blocked()
	}

	if r, bad := s.validate(c); bad {
		return r
	}

	// Servers named by the request must be ones this session may see.
	if r, bad := s.checkServerParams(c); bad {
		return r
	}

	if pin {
		if r, bad := s.checkPIN(c.a.get("pin"), c.now); bad {
			return r
		}
	}
	if h != nil {
		return h(s, c)
	}
	return s.generic(c)
}

// checkServerParams resolves the parameters that name a server (the catalog's server_id
// flags; without a catalog entry, "id" in modules whose id is a server) against the
// session's servers. Filters (eq/list id, eq/search params[id][]) are left alone.
func (s *Server) checkServerParams(c *call) (resp, bool) {
	if c.sess == nil || idNotServer[c.key()] {
		return resp{}, false
	}
	var wires []string
	if c.cat != nil {
		for _, p := range c.cat.Params {
			if p.ServerID && !p.Array && !strings.HasSuffix(p.Wire, "[]") {
				wires = append(wires, p.Wire)
			}
		}
	} else if serverModules[c.module] {
		wires = []string{"id"}
	}
	for _, w := range wires {
		v := c.a.get(w)
		if v == "" || (v == "0" && w != "id") {
			continue
		}
		sv, r, bad := s.serverFor(c, w)
		if bad {
			return r, true
		}
		if w == "id" {
			c.srv = sv
		}
	}
	return resp{}, false
}

// answersItself are required parameters whose absence invapi reports in its own words,
// which the handler reproduces: without location_name a reinstall fails with an
// OS-compatibility error (003), not "required".
var answersItself = map[string]bool{"eq/order_instance location_name": true}

// validate checks the catalog's required parameters and simple types.
func (s *Server) validate(c *call) (resp, bool) {
	if c.cat == nil {
		return resp{}, false
	}
	for _, p := range c.cat.Params {
		name := strings.TrimSuffix(p.Wire, "[]")
		if name == "action" || name == "token" || name == "pin" {
			continue
		}
		if p.Required && !hasEither(c.a, p.Wire) && !answersItself[c.key()+" "+p.Wire] {
			return fail(-1, c.tag()+": "+p.Wire+" required"), true
		}
		if !c.a.has(p.Wire) {
			continue
		}
		vals := c.a.values(p.Wire)
		if !p.Array && !strings.Contains(p.Wire, "[") {
			vals = []string{c.a.get(p.Wire)}
		}
		for _, v := range vals {
			switch p.Type {
			case "integer":
				if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil && v != "" {
					return fail(-1, c.tag()+": invalid "+p.Wire), true
				}
			case "number":
				if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil && v != "" {
					return fail(-1, c.tag()+": invalid "+p.Wire), true
				}
			}
			if len(p.Enum) > 0 && v != "" && !containsFold(p.Enum, v) {
				return fail(-1, c.tag()+": invalid "+p.Wire), true
			}
		}
	}
	return resp{}, false
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// serverFor resolves a server ID parameter against the session's servers.
func (s *Server) serverFor(c *call, param string) (*server, resp, bool) {
	raw := c.a.get(param)
	id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	notFound := func() (*server, resp, bool) {
		if c.key() == "eq/show" {
			return nil, fail(-1, "Nothing found for "+raw), true
		}
		return nil, fail(-1, c.tag()+": invalid server id"), true
	}
	if err != nil || id <= 0 {
		return notFound()
	}
	sv, ok := s.st.servers[id]
	if !ok || !sv.visible || c.sess == nil || !c.sess.servers[id] {
		return notFound()
	}
	return sv, resp{}, false
}

// needServer returns c.srv or resolves id (handlers that require a server).
func (s *Server) needServer(c *call) (*server, resp, bool) {
	if c.srv != nil {
		return c.srv, resp{}, false
	}
	if c.a.get("id") == "" {
		return nil, fail(-1, c.tag()+": id required"), true
	}
	return s.serverFor(c, "id")
}

// --- PIN ---------------------------------------------------------------------------

const (
	pinMaxFails = 3
	pinLockFor  = 15 * time.Minute
)

func (s *Server) locked(now time.Time) bool { return now.Before(s.st.lockedUntil) }

func (s *Server) blocked() resp {
	return resp{body: obj{"result": -1, "error": "Blocked For Security Purposes"}, delay: s.opts.PINFailDelay}
}

// checkPIN verifies pin; a wrong PIN counts towards the lockout.
func (s *Server) checkPIN(pin string, now time.Time) (resp, bool) {
	if s.locked(now) {
		return s.blocked(), true
	}
	if s.st.pin == "" {
		return failResult("PIN code is not set: set it with eq/set_pin"), true
	}
	if pin == "" {
		return failResult("PIN code required"), true
	}
	if pin != s.st.pin {
		s.pinFailed(now)
		return failResult("Invalid pin code"), true
	}
	s.st.pinFails = 0
	return resp{}, false
}

func (s *Server) pinFailed(now time.Time) {
	s.st.pinFails++
	if s.st.pinFails >= pinMaxFails {
		s.st.lockedUntil = now.Add(pinLockFor)
		s.st.pinFails = 0
	}
}

// --- generic -------------------------------------------------------------------------

// generic answers any catalog action without its own handler: a canned answer from
// responses.json when there is one, an async envelope for async actions, else
// {"result":"OK","module":...,"action":...}.
func (s *Server) generic(c *call) resp {
	async := c.cat != nil && c.cat.Async
	canned, has := s.fx.canned[c.key()]
	if has {
		body := s.render(canned, c)
		if bm, isMap := body.(map[string]any); isMap && (async || bm["result"] == nil && bm["scope"] != nil) {
			env := s.asyncEnvelope(c, "OK", nil)
			for k, v := range bm {
				if k == "context" {
					if cm, isMap := v.(map[string]any); isMap {
						ctx := env["context"].(obj)
						for ck, cv := range cm {
							ctx[ck] = cv
						}
						continue
					}
				}
				env[k] = v
			}
			s.rememberJob(c, env)
			return ok(env)
		}
		return resp{body: body}
	}
	if async {
		return ok(s.asyncEnvelope(c, "OK", nil))
	}
	return ok(obj{"result": "OK", "module": c.module, "action": c.action})
}

// asyncEnvelope builds the docs' asynchronous answer and remembers its key for
// eq_callback/check (nat_callback/check for the nat module).
func (s *Server) asyncEnvelope(c *call, scope string, extra obj) obj {
	id := c.a.get("id")
	if id == "" {
		id = "0"
	}
	ctx := obj{"action": c.action, "id": id}
	if c.srv != nil {
		ctx["location"] = c.srv.Location
	}
	for k, v := range extra {
		ctx[k] = v
	}
	env := obj{"result": "OK", "scope": scope, "context": ctx, "debug": "", "key": newKey()}
	s.rememberJob(c, env)
	return env
}

// rememberJob stores a finished async answer under its key.
func (s *Server) rememberJob(c *call, env obj) {
	key, _ := env["key"].(string)
	if key == "" {
		return
	}
	ep := "eq_callback"
	if c.module == "nat" {
		ep = "nat_callback"
	}
	s.st.jobs[key] = &job{key: key, endpoint: ep, envelope: deepCopy(map[string]any(env)).(map[string]any)}
}

// render fills the placeholders of a canned answer.
func (s *Server) render(tpl any, c *call) any {
	vals := map[string]string{
		"id": c.a.get("id"), "email": s.fx.account.Email, "client_ip": c.remote,
		"whmcs_id":    strconv.FormatInt(s.fx.account.WhmcsID, 10),
		"customer_id": strconv.FormatInt(s.fx.account.CustomerID, 10),
		"now":         c.now.UTC().Format(time.RFC3339), "date": c.now.UTC().Format("2006-01-02"),
		"credit": fmt.Sprintf("%.2f", s.st.credit),
	}
	if c.srv != nil {
		vals["location"] = c.srv.Location
		vals["hostname"] = c.srv.Hostname
		vals["main_ip"] = c.srv.mainIP()
		vals["ipmi_ip"] = c.srv.IPMI.IP
		vals["ipmi_model"] = c.srv.IPMI.Model
	}
	var walk func(x any) any
	walk = func(x any) any {
		switch v := x.(type) {
		case map[string]any:
			m := make(map[string]any, len(v))
			for k, e := range v {
				m[k] = walk(e)
			}
			return m
		case []any:
			a := make([]any, len(v))
			for i, e := range v {
				a[i] = walk(e)
			}
			return a
		case string:
			if strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}") && strings.Count(v, "{{") == 1 {
				name := v[2 : len(v)-2]
				if name == "id" || name == "whmcs_id" || name == "customer_id" {
					if n, err := strconv.ParseInt(vals[name], 10, 64); err == nil {
						return n
					}
				}
			}
			for k, val := range vals {
				v = strings.ReplaceAll(v, "{{"+k+"}}", val)
			}
			return v
		}
		return x
	}
	return walk(tpl)
}
