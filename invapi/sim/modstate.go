package sim

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// modState is the state of the modules the vendor's public clients reach (DNS, ISO, VM
// snapshots, S3, remote hands, IP blocks, SSH keys). Each part is created on first use.
type modState struct {
	nextID  int64
	dns     *dnsState
	iso     *isoState
	snaps   map[int64][]*snapshot       // by server ID
	s3      *s3State                    // nil until first use
	support *supportState               // remote-hands requests and tickets
	blocks  map[int64]map[string]string // server ID → blocked IP → reason
	ssh     []*sshKey
}

// id hands out IDs for every module's new records.
func (m *modState) id() int64 {
	if m.nextID == 0 {
		m.nextID = 7000
	}
	m.nextID++
	return m.nextID
}

// okData is the envelope the Terraform provider decodes for pdns and friends.
func okData(c *call, data any) resp {
	return ok(obj{"result": "OK", "module": c.module, "action": c.action, "data": data})
}

// need returns the first missing parameter among names, for invapi's "<x> required".
func need(c *call, names ...string) (resp, bool) {
	for _, n := range names {
		if strings.TrimSpace(c.a.get(n)) == "" {
			return fail(-1, c.tag()+": "+n+" required"), true
		}
	}
	return resp{}, false
}

// sessionServer resolves a server-ID parameter (server_id, or id) against the session.
func (s *Server) sessionServer(c *call, param string) (*server, resp, bool) {
	if c.a.get(param) == "" {
		return nil, fail(-1, c.tag()+": "+param+" required"), true
	}
	return s.serverFor(c, param)
}

func atoi(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// rawValues returns every value of a list parameter as sent (name, name[], params[name],
// params[name][] and indexed forms), without splitting on commas: TXT records have them.
func rawValues(c *call, base string) []string {
	var out []string
	for _, cand := range []string{base, "params[" + base + "]"} {
		for _, k := range slices.Sorted(maps.Keys(c.a.raw)) {
			if k == cand || k == cand+"[]" || (strings.HasPrefix(k, cand+"[") && strings.HasSuffix(k, "]")) {
				for _, v := range c.a.raw[k] {
					if v = strings.TrimSpace(v); v != "" {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

// hasEither is args.has that also accepts the flat spelling of a params[...] name
// (params[content][] → content[] or content): the vendor's MCP server sends pdns fields
// flat, the Terraform provider wraps them (schemas rule 14).
func hasEither(a *args, wire string) bool {
	if a.has(wire) {
		return true
	}
	if !strings.HasPrefix(wire, "params[") {
		return false
	}
	inner, rest, _ := strings.Cut(strings.TrimPrefix(wire, "params["), "]")
	return a.has(inner+rest) || (strings.HasSuffix(rest, "[]") && a.has(inner))
}
