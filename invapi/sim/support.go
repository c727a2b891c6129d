package sim

import "strings"

// Remote hands (rhr.php requests with a chat; jira.php tickets to the data-centre shift and
// to sales) and the account's SSH keys (ssh_keys.php).

func init() {
	register(rhrList, "rhr/list")
	register(rhrAdd, "rhr/add")
	register(rhrChat, "rhr/chat")
	register(rhrDiscard, "rhr/discard")
	register(jiraRequest, "jira/request_pon", "jira/request_poff", "jira/request_reboot", "jira/request_PXEboot",
		"jira/request_kvm", "jira/request_check", "jira/request_assistance")
	register(sshKeysList, "ssh_keys/list")
	register(sshKeysAdd, "ssh_keys/add")
	register(sshKeysDelete, "ssh_keys/delete")
}

type supportState struct {
	requests []*rhRequest
}

// rhRequest is a remote-hands request (rhr) or a ticket (jira, Kind "jira/<action>").
type rhRequest struct {
	ID       int64    `json:"id"`
	Kind     string   `json:"type"`
	ServerID int64    `json:"server_id,omitempty"`
	Location string   `json:"location,omitempty"`
	Comment  string   `json:"comment"`
	Status   string   `json:"status"` // open, discarded
	Created  string   `json:"created"`
	Messages []string `json:"messages"`
}

func (s *Server) support() *supportState {
	if s.st.mod.support == nil {
		s.st.mod.support = &supportState{}
	}
	return s.st.mod.support
}

func rhrList(s *Server, c *call) resp {
	loc, status := strings.ToUpper(c.a.get("location")), c.a.get("status")
	out := []any{}
	for _, r := range s.support().requests {
		if (loc != "" && r.Location != loc) || (status != "" && r.Status != status) {
			continue
		}
		if c.sess != nil && r.ServerID != 0 && !c.sess.servers[r.ServerID] {
			continue
		}
		out = append(out, *r)
	}
	return ok(obj{"result": "OK", "requests": out})
}

func (s *Server) newRequest(c *call, sv *server, kind, comment string) *rhRequest {
	r := &rhRequest{ID: s.st.mod.id(), Kind: kind, Comment: comment, Status: "open", Created: stamp(c.now), Messages: []string{}}
	if sv != nil {
		r.ServerID, r.Location = sv.ID, sv.Location
	}
	s.support().requests = append(s.support().requests, r)
	return r
}

func rhrAdd(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if r, bad := need(c, "comment"); bad {
		return r
	}
	kind := c.a.get("request_type")
	if kind == "" {
		kind = "remote_hands"
	}
	req := s.newRequest(c, sv, kind, c.a.get("comment"))
	return ok(obj{"result": "OK", "id": req.ID, "status": req.Status})
}

func (s *Server) requestFor(c *call) (*rhRequest, resp, bool) {
	id := atoi(c.a.get("id"))
	for _, r := range s.support().requests {
		if r.ID == id && (c.sess == nil || r.ServerID == 0 || c.sess.servers[r.ServerID]) {
			return r, resp{}, false
		}
	}
	return nil, fail(-1, c.tag()+": request "+c.a.get("id")+" not found"), true
}

func rhrChat(s *Server, c *call) resp {
	req, r, bad := s.requestFor(c)
	if bad {
		return r
	}
	if r, bad := need(c, "message"); bad {
		return r
	}
	req.Messages = append(req.Messages, c.a.get("message"))
	return ok(obj{"result": "OK", "id": req.ID, "messages": len(req.Messages)})
}

func rhrDiscard(s *Server, c *call) resp {
	req, r, bad := s.requestFor(c)
	if bad {
		return r
	}
	if req.Status == "discarded" {
		return fail(-1, c.tag()+": request already discarded")
	}
	req.Status = "discarded"
	return ok(obj{"result": "OK", "id": req.ID, "status": req.Status})
}

// jiraRequest opens a ticket; rhr/list shows it with type jira/<action>.
func jiraRequest(s *Server, c *call) resp {
	var sv *server
	if c.action != "request_assistance" || c.a.get("id") != "" {
		var r resp
		var bad bool
		if sv, r, bad = s.needServer(c); bad {
			return r
		}
	}
	comment := c.a.get("message")
	if c.action == "request_assistance" {
		if r, bad := need(c, "message"); bad {
			return r
		}
		if subj := c.a.get("subject"); subj != "" {
			comment = subj + ": " + comment
		}
	}
	req := s.newRequest(c, sv, "jira/"+c.action, comment)
	return ok(obj{"result": "OK", "ticket": req.ID, "message": "ticket opened; updates go to the account email"})
}

// --- SSH keys ----------------------------------------------------------------------------

type sshKey struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Key     string `json:"key"`
	Default int64  `json:"default"`
	Created string `json:"created"`
}

func sshKeysList(s *Server, c *call) resp {
	out := []any{}
	for _, k := range s.st.mod.ssh {
		out = append(out, *k)
	}
	return ok(obj{"result": "OK", "module": "ssh_keys", "action": "list", "sshkeys": out})
}

func sshKeysAdd(s *Server, c *call) resp {
	if r, bad := need(c, "name", "key"); bad {
		return r
	}
	pub := strings.TrimSpace(c.a.get("key"))
	if !strings.HasPrefix(pub, "ssh-") && !strings.HasPrefix(pub, "ecdsa-") {
		return fail(-1, c.tag()+": key is not an OpenSSH public key")
	}
	k := &sshKey{ID: s.st.mod.id(), Name: c.a.get("name"), Key: pub, Default: atoi(c.a.get("default")), Created: stamp(c.now)}
	s.st.mod.ssh = append(s.st.mod.ssh, k)
	return ok(obj{"result": "OK", "module": "ssh_keys", "action": "add", "sshkey": *k})
}

func sshKeysDelete(s *Server, c *call) resp {
	id := atoi(c.a.get("id"))
	for i, k := range s.st.mod.ssh {
		if k.ID == id {
			s.st.mod.ssh = append(s.st.mod.ssh[:i], s.st.mod.ssh[i+1:]...)
			return ok(obj{"result": "OK"})
		}
	}
	return fail(-1, c.tag()+": key not found")
}
