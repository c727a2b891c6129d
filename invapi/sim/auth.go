package sim

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(authLogin, "auth/login")
	register(authWhmcsLogin, "auth/whmcslogin")
	register(authLogout, "auth/logout")
	register(authInfo, "auth/info")
}

// authLogin trades an API key for a session token. A second login with the same key
// while its token is valid returns that token (001: "If the token is requested again
// within this time, a valid token will be returned"), its expiry moved to now+ttl when
// that is later.
func authLogin(s *Server, c *call) resp {
	key := c.a.get("key")
	if key == "" {
		return fail(-1, "AUTH/login: key required")
	}
	var k *apiKey
	for _, x := range s.st.keys {
		if x.Key == key {
			k = x
			break
		}
	}
	if k == nil {
		return fail(-2, "Authentication failed: invalid API key")
	}
	if k.Active != 1 {
		return fail(-2, "Authentication failed: API key is disabled")
	}
	for _, se := range s.st.sessions {
		if se.keyID == k.ID && se.valid(c.now) {
			if exp := c.now.Add(s.ttl(c)); exp.After(se.expires) {
				se.expires = exp
			}
			return ok(s.loginResult(c, se))
		}
	}
	servers := map[int64]bool{}
	if k.ServerID != 0 {
		if sv, ok := s.st.servers[k.ServerID]; ok && sv.visible {
			servers[k.ServerID] = true
		}
	} else {
		for _, sv := range s.st.visibleServers() {
			servers[sv.ID] = true
		}
	}
	if len(servers) == 0 {
		return ok(obj{"result": -1, "error": "No appropriate servers found", "code": "NO_APPROPRIATE_SERVERS"})
	}
	se := &session{token: newKey(), keyID: k.ID, serverID: k.ServerID, servers: servers, created: c.now, expires: c.now.Add(s.ttl(c))}
	s.st.sessions[se.token] = se
	return ok(s.loginResult(c, se))
}

func (s *Server) ttl(c *call) time.Duration {
	ttl := s.opts.TokenTTL
	if n, ok := c.a.int("ttl"); ok && n > 0 && time.Duration(n)*time.Second < ttl {
		ttl = time.Duration(n) * time.Second
	}
	return ttl
}

func authWhmcsLogin(s *Server, c *call) resp {
	user := c.a.get("user")
	if user == "" {
		user = c.a.get("login")
	}
	pass := c.a.get("password")
	if user == "" || pass == "" {
		return fail(-1, "AUTH/whmcslogin: user and password required")
	}
	if !strings.EqualFold(user, s.fx.account.Email) || pass != s.fx.account.Password {
		return fail(-2, "Authentication failed: invalid user or password")
	}
	servers := map[int64]bool{}
	for _, sv := range s.st.visibleServers() {
		servers[sv.ID] = true
	}
	se := &session{token: newKey(), servers: servers, created: c.now, expires: c.now.Add(s.ttl(c))}
	s.st.sessions[se.token] = se
	r := s.loginResult(c, se)
	r["result"].(obj)["whmcs_token"] = nil
	return ok(r)
}

func authLogout(s *Server, c *call) resp {
	delete(s.st.sessions, c.token)
	return ok(obj{"result": "OK"})
}

func (s *Server) sessionServers(se *session) []int64 {
	ids := make([]int64, 0, len(se.servers))
	for id := range se.servers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// permissions is the session's permission list: the fixture's list (from 001) plus every
// action the simulator or the catalog knows, less what a per-server key may not call.
func (s *Server) permissions(se *session) []string {
	set := map[string]bool{}
	for _, p := range s.fx.account.Permissions {
		set[p] = true
	}
	for k := range handlers {
		set[k] = true
	}
	for _, a := range s.catalog.Actions {
		set[a.Module+"/"+a.Action] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		if se.serverID != 0 && s.deniedPerServer(p) {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (s *Server) billingOptions(c *call) obj {
	var bo obj
	_ = json.Unmarshal(s.fx.account.BillingOptions, &bo)
	if bo == nil {
		bo = obj{}
	}
	// Never point a client at a real vendor host from the sandbox.
	bo["native_endpoint"] = c.host
	return bo
}

func (s *Server) loginResult(c *call, se *session) obj {
	a := s.fx.account
	return obj{"result": obj{
		"token":           se.token,
		"role":            a.Role,
		"role_type":       a.RoleType,
		"whmcs_id":        a.WhmcsID,
		"whmcs_location":  a.WhmcsLocation,
		"servers":         s.sessionServers(se),
		"customer_id":     a.CustomerID,
		"permissions":     s.permissions(se),
		"corporate":       0,
		"verified":        nil,
		"token_expire":    se.expires.Unix(),
		"new":             0,
		"billing_options": s.billingOptions(c),
	}}
}

func authInfo(s *Server, c *call) resp {
	a := s.fx.account
	se := c.sess
	servers := obj{}
	for _, id := range s.sessionServers(se) {
		v := strconv.FormatInt(id, 10)
		servers[v] = v
	}
	full := 1
	if se.serverID != 0 {
		full = 0
	}
	var tags any
	_ = json.Unmarshal(a.Tags, &tags)
	return ok(obj{"result": obj{
		"servers":         servers,
		"show_products":   full,
		"manage_products": full,
		"show_invoices":   full,
		"manage_orders":   full,
		"email":           a.Email,
		"token_expire":    se.expires.Unix(),
		"whmcs_id":        strconv.FormatInt(a.WhmcsID, 10),
		"whmcs_location":  a.WhmcsLocation,
		"billing_servers": s.billingServers(),
		"deploy_keys":     s.deployKeys(se),
		"permissions":     s.permissions(se),
		"role_type":       a.RoleType,
		"role_name":       a.Role,
		"verified":        nil,
		"corporate":       0,
		"tags":            tags,
		"billing_options": s.billingOptions(c),
		"client_ip":       c.remote,
	}})
}
