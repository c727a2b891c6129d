package sim

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// DNS hosting (pdns.php): zones with their records, the domain table and subdomains.
// Parameters are read flat or as params[...] (both public clients' shapes).

func init() {
	register(pdnsListZones, "pdns/list_zones")
	register(pdnsViewZone, "pdns/view_zone", "pdns/get_zone", "pdns/view")
	register(pdnsListDomains, "pdns/list_domains", "pdns/get_domains")
	register(pdnsListSubdomains, "pdns/list_subdomains", "pdns/get_subdomains")
	register(pdnsAddDomain, "pdns/add_domain")
	register(pdnsDeleteDomain, "pdns/delete_domain")
	register(pdnsAddSubdomain, "pdns/add_subdomain")
	register(pdnsEditSubdomain, "pdns/edit_subdomain")
	register(pdnsDeleteSubdomain, "pdns/delete_subdomain")
	register(pdnsAddZone, "pdns/add_zone", "pdns/create_zone")
	register(pdnsDeleteZone, "pdns/delete_zone")
	register(pdnsAddDNS, "pdns/add_dns", "pdns/create_dns")
	register(pdnsDeleteDNS, "pdns/delete_dns")
}

type dnsState struct {
	zones      map[string]*dnsZone // by name
	domains    map[int64]*dnsDomain
	subdomains map[int64]*dnsSubdomain
}

type dnsZone struct {
	ID          int64
	Name        string
	Kind        string
	Nameservers []string
	Records     []*dnsRecord
}

type dnsRecord struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Content  string `json:"content"`
	TTL      int64  `json:"ttl"`
	Priority int64  `json:"priority"`
}

type dnsDomain struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	ServerID int64  `json:"server_id"`
}

type dnsSubdomain struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	DomainID int64  `json:"domain_id"`
	ServerID int64  `json:"server_id"`
}

func (s *Server) dns() *dnsState {
	if s.st.mod.dns == nil {
		s.st.mod.dns = &dnsState{zones: map[string]*dnsZone{}, domains: map[int64]*dnsDomain{}, subdomains: map[int64]*dnsSubdomain{}}
	}
	return s.st.mod.dns
}

func zoneName(v string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), ".") }

func (s *Server) newZone(name, kind string, ns []string) *dnsZone {
	if kind == "" {
		kind = "Master"
	}
	if len(ns) == 0 {
		ns = []string{"ns1.hostkey.com", "ns2.hostkey.com"}
	}
	z := &dnsZone{ID: s.st.mod.id(), Name: name, Kind: kind, Nameservers: ns}
	for _, n := range ns {
		z.Records = append(z.Records, &dnsRecord{ID: s.st.mod.id(), Name: "@", Type: "NS", Content: n, TTL: 3600})
	}
	s.dns().zones[name] = z
	return z
}

func (s *Server) zoneFor(c *call) (*dnsZone, resp, bool) {
	if r, bad := need(c, "zone"); bad {
		return nil, r, true
	}
	z := s.dns().zones[zoneName(c.a.get("zone"))]
	if z == nil {
		return nil, fail(-1, c.tag()+": zone "+c.a.get("zone")+" not found"), true
	}
	return z, resp{}, false
}

func zoneView(z *dnsZone) obj {
	recs := make([]any, 0, len(z.Records))
	for _, r := range z.Records {
		recs = append(recs, *r)
	}
	return obj{"id": z.ID, "name": z.Name, "kind": z.Kind, "records": recs}
}

func pdnsListZones(s *Server, c *call) resp {
	out := []any{}
	for _, n := range slices.Sorted(maps.Keys(s.dns().zones)) {
		z := s.dns().zones[n]
		out = append(out, obj{"id": z.ID, "name": z.Name, "kind": z.Kind})
	}
	return okData(c, out)
}

func pdnsViewZone(s *Server, c *call) resp {
	z, r, bad := s.zoneFor(c)
	if bad {
		return r
	}
	return okData(c, zoneView(z))
}

func pdnsListDomains(s *Server, c *call) resp {
	out := []any{}
	for _, d := range sortedByID(s.dns().domains) {
		out = append(out, *d)
	}
	return okData(c, out)
}

func pdnsListSubdomains(s *Server, c *call) resp {
	sv, r, bad := s.sessionServer(c, "server_id")
	if bad {
		return r
	}
	out := []any{}
	for _, d := range sortedByID(s.dns().subdomains) {
		if d.ServerID == sv.ID {
			out = append(out, *d)
		}
	}
	return okData(c, out)
}

func pdnsAddDomain(s *Server, c *call) resp {
	if r, bad := need(c, "name"); bad {
		return r
	}
	name := zoneName(c.a.get("name"))
	var serverID int64
	if c.a.get("server_id") != "" {
		sv, r, bad := s.serverFor(c, "server_id")
		if bad {
			return r
		}
		serverID = sv.ID
	}
	for _, d := range s.dns().domains {
		if d.Name == name {
			return fail(-1, c.tag()+": domain "+name+" already exists")
		}
	}
	if s.dns().zones[name] == nil {
		s.newZone(name, "", nil)
	}
	d := &dnsDomain{ID: s.st.mod.id(), Name: name, ServerID: serverID}
	s.dns().domains[d.ID] = d
	return okData(c, obj{"id": d.ID, "name": d.Name})
}

func pdnsDeleteDomain(s *Server, c *call) resp {
	id := atoi(c.a.get("id"))
	if id == 0 {
		id = atoi(c.a.get("domain_id")) // the vendor's MCP server's name
	}
	d := s.dns().domains[id]
	if d == nil {
		return fail(-1, c.tag()+": domain not found")
	}
	delete(s.dns().domains, id)
	delete(s.dns().zones, d.Name)
	for sid, sd := range s.dns().subdomains {
		if sd.DomainID == id {
			delete(s.dns().subdomains, sid)
		}
	}
	return okData(c, obj{"id": id})
}

func pdnsAddSubdomain(s *Server, c *call) resp {
	if r, bad := need(c, "domain_id", "name"); bad {
		return r
	}
	sv, r, bad := s.sessionServer(c, "server_id")
	if bad {
		return r
	}
	if s.dns().domains[atoi(c.a.get("domain_id"))] == nil {
		return fail(-1, c.tag()+": domain not found")
	}
	d := &dnsSubdomain{ID: s.st.mod.id(), Name: strings.ToLower(c.a.get("name")), DomainID: atoi(c.a.get("domain_id")), ServerID: sv.ID}
	s.dns().subdomains[d.ID] = d
	return okData(c, *d)
}

func (s *Server) subdomainFor(c *call) (*dnsSubdomain, resp, bool) {
	if r, bad := need(c, "id"); bad {
		return nil, r, true
	}
	d := s.dns().subdomains[atoi(c.a.get("id"))]
	if d == nil || (c.sess != nil && !c.sess.servers[d.ServerID]) {
		return nil, fail(-1, c.tag()+": subdomain not found"), true
	}
	return d, resp{}, false
}

func pdnsEditSubdomain(s *Server, c *call) resp {
	d, r, bad := s.subdomainFor(c)
	if bad {
		return r
	}
	if c.a.get("server_id") != "" {
		sv, r, bad := s.serverFor(c, "server_id")
		if bad {
			return r
		}
		d.ServerID = sv.ID
	}
	if n := c.a.get("name"); n != "" {
		d.Name = strings.ToLower(n)
	}
	return okData(c, *d)
}

func pdnsDeleteSubdomain(s *Server, c *call) resp {
	d, r, bad := s.subdomainFor(c)
	if bad {
		return r
	}
	delete(s.dns().subdomains, d.ID)
	return okData(c, obj{"id": d.ID})
}

func pdnsAddZone(s *Server, c *call) resp {
	if r, bad := need(c, "name"); bad {
		return r
	}
	name := zoneName(c.a.get("name"))
	if s.dns().zones[name] != nil {
		return fail(-1, c.tag()+": zone "+name+" already exists")
	}
	kind := c.a.get("kind")
	if kind != "" && kind != "Master" && kind != "Slave" {
		return fail(-1, c.tag()+": invalid kind")
	}
	z := s.newZone(name, kind, c.a.values("nameservers[]"))
	return okData(c, zoneView(z))
}

func pdnsDeleteZone(s *Server, c *call) resp {
	z, r, bad := s.zoneFor(c)
	if bad {
		return r
	}
	delete(s.dns().zones, z.Name)
	return okData(c, obj{"name": z.Name})
}

var recordTypes = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "MX": true, "TXT": true, "NS": true, "SRV": true, "CAA": true, "PTR": true}

// recordName is the record's name relative to the zone ("@" for the apex).
func recordName(v string, z *dnsZone) string {
	v = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), ".")
	v = strings.TrimSuffix(strings.TrimSuffix(v, z.Name), ".")
	if v == "" {
		return "@"
	}
	return v
}

// pdnsAddDNS replaces the record set (name, type) with the given contents, as PowerDNS's
// RRset API does. content is a list (params[content][]) or one value (content).
func pdnsAddDNS(s *Server, c *call) resp {
	z, r, bad := s.zoneFor(c)
	if bad {
		return r
	}
	typ := strings.ToUpper(c.a.get("type"))
	if !recordTypes[typ] {
		return fail(-1, c.tag()+": invalid type "+c.a.get("type"))
	}
	contents := rawValues(c, "content")
	if len(contents) == 0 {
		return fail(-1, c.tag()+": content required")
	}
	name := recordName(c.a.get("name"), z)
	if old := c.a.get("old_name"); old != "" {
		z.Records = dropRecords(z.Records, recordName(old, z), typ, nil)
	}
	z.Records = dropRecords(z.Records, name, typ, nil)
	ttl, prio := atoi(c.a.get("ttl")), atoi(c.a.get("priority"))
	if ttl == 0 {
		ttl = 3600
	}
	for _, v := range contents {
		z.Records = append(z.Records, &dnsRecord{ID: s.st.mod.id(), Name: name, Type: typ, Content: v, TTL: ttl, Priority: prio})
	}
	return okData(c, zoneView(z))
}

func pdnsDeleteDNS(s *Server, c *call) resp {
	z, r, bad := s.zoneFor(c)
	if bad {
		return r
	}
	if r, bad := need(c, "type"); bad {
		return r
	}
	name, typ := recordName(c.a.get("name"), z), strings.ToUpper(c.a.get("type"))
	before := len(z.Records)
	z.Records = dropRecords(z.Records, name, typ, rawValues(c, "content"))
	if len(z.Records) == before {
		return fail(-1, c.tag()+": no "+typ+" record "+name+" in "+z.Name)
	}
	return okData(c, zoneView(z))
}

// dropRecords removes the records of name and type; with contents, only those values.
func dropRecords(recs []*dnsRecord, name, typ string, contents []string) []*dnsRecord {
	out := recs[:0]
	for _, r := range recs {
		match := r.Name == name && r.Type == typ
		if match && len(contents) > 0 {
			match = false
			for _, v := range contents {
				if v == r.Content {
					match = true
				}
			}
		}
		if !match {
			out = append(out, r)
		}
	}
	return out
}

func sortedByID[T any](m map[int64]*T) []*T {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]*T, 0, len(ids))
	for _, id := range ids {
		out = append(out, m[id])
	}
	return out
}
