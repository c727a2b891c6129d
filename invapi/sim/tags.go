package sim

import "strings"

// tags/user_search: the session's servers whose tag names or values contain a text
// (tags/list, add, remove and clear live in account.go).

func init() {
	register(tagsUserSearch, "tags/user_search", "tag/user_search")
}

func tagsUserSearch(s *Server, c *call) resp {
	q := strings.ToLower(strings.TrimSpace(c.a.get("value")))
	if q == "" {
		return fail(-1, c.tag()+": value required")
	}
	out := []any{}
	for _, sv := range s.st.visibleServers() {
		if c.sess != nil && !c.sess.servers[sv.ID] {
			continue
		}
		for _, t := range sv.Tags {
			if strings.Contains(strings.ToLower(t.Tag), q) || strings.Contains(strings.ToLower(t.Value), q) {
				out = append(out, obj{"id": sv.ID, "tag": t.Tag, "value": t.Value})
			}
		}
	}
	return ok(obj{"result": "OK", "servers": out})
}
