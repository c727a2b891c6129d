package sim

import (
	"net/netip"
	"sort"
	"strings"
)

// IP blocks at the network edge (net/block_ip, net/unblock_ip), per server.

func init() {
	register(netBlockIP, "net/block_ip")
	register(netUnblockIP, "net/unblock_ip")
}

func (s *Server) blockList(id int64) map[string]string {
	if s.st.mod.blocks == nil {
		s.st.mod.blocks = map[int64]map[string]string{}
	}
	if s.st.mod.blocks[id] == nil {
		s.st.mod.blocks[id] = map[string]string{}
	}
	return s.st.mod.blocks[id]
}

func blockedIP(c *call) (string, resp, bool) {
	ip, err := netip.ParseAddr(strings.TrimSpace(c.a.get("ip")))
	if err != nil {
		return "", fail(-1, c.tag()+": ip must be an IPv4 or IPv6 address"), true
	}
	return ip.String(), resp{}, false
}

// blockTarget reads the server and the address of a block or unblock call.
func (s *Server) blockTarget(c *call) (sv *server, ip string, list map[string]string, r resp, bad bool) {
	if sv, r, bad = s.needServer(c); bad {
		return
	}
	if ip, r, bad = blockedIP(c); bad {
		return
	}
	return sv, ip, s.blockList(sv.ID), resp{}, false
}

func netBlockIP(s *Server, c *call) resp {
	sv, ip, list, r, bad := s.blockTarget(c)
	if bad {
		return r
	}
	if _, dup := list[ip]; dup {
		return fail(-1, c.tag()+": "+ip+" is already blocked")
	}
	reason := c.a.get("description")
	if c.a.get("four_hours") == "1" {
		reason += " (lifted after 4 hours)"
	}
	list[ip] = reason
	return ok(obj{"result": "OK", "id": sv.ID, "ip": ip, "blocked": true})
}

func netUnblockIP(s *Server, c *call) resp {
	sv, ip, list, r, bad := s.blockTarget(c)
	if bad {
		return r
	}
	if _, ok := list[ip]; !ok {
		return fail(-1, c.tag()+": "+ip+" is not blocked")
	}
	delete(list, ip)
	return ok(obj{"result": "OK", "id": sv.ID, "ip": ip, "blocked": false})
}

// BlockedIPs lists the IPs blocked for a server, sorted.
func (s *Server) BlockedIPs(id int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for ip := range s.blockList(id) {
		out = append(out, ip)
	}
	sort.Strings(out)
	return out
}
