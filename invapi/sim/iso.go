package sim

import "strings"

// ISO images (iso.php): a public library, the customer's uploads, and one image mounted
// per server.

func init() {
	register(isoList, "iso/list_iso")
	register(isoUploaded, "iso/uploaded")
	register(isoUpload, "iso/upload", "iso/add")
	register(isoMount, "iso/mount_iso")
	register(isoUnmount, "iso/unmount_iso")
	register(isoDelete, "iso/delete")
}

type isoState struct {
	images  []*isoImage
	mounted map[int64]int64 // server ID → image ID
}

type isoImage struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	URL      string `json:"url,omitempty"`
	Uploaded bool   `json:"uploaded"`
}

func (s *Server) iso() *isoState {
	if s.st.mod.iso == nil {
		st := &isoState{mounted: map[int64]int64{}}
		for i, n := range []string{"ubuntu-24.04-live-server-amd64.iso", "debian-12-netinst-amd64.iso", "systemrescue-11.iso", "windows-server-2022-eval.iso"} {
			st.images = append(st.images, &isoImage{ID: int64(101 + i), Name: n})
		}
		s.st.mod.iso = st
	}
	return s.st.mod.iso
}

func (s *Server) findISO(c *call) *isoImage {
	id, name := atoi(c.a.get("iso_id")), c.a.get("name")
	for _, im := range s.iso().images {
		if (id != 0 && im.ID == id) || (id == 0 && name != "" && im.Name == name) {
			return im
		}
	}
	return nil
}

func isoList(s *Server, c *call) resp {
	out := []any{}
	for _, im := range s.iso().images {
		out = append(out, *im)
	}
	m := obj{"result": "OK", "images": out}
	if c.a.get("server_id") != "" {
		sv, r, bad := s.serverFor(c, "server_id")
		if bad {
			return r
		}
		m["mounted"] = s.iso().mounted[sv.ID] // 0: nothing mounted
	}
	return ok(m)
}

func isoUploaded(s *Server, c *call) resp {
	out := []any{}
	for _, im := range s.iso().images {
		if im.Uploaded {
			out = append(out, *im)
		}
	}
	return ok(obj{"result": "OK", "images": out})
}

// isoUpload serves upload (url, optional name) and add (name, optional url): both add an
// image, or update the one with that name.
func isoUpload(s *Server, c *call) resp {
	u, name := strings.TrimSpace(c.a.get("url")), strings.TrimSpace(c.a.get("name"))
	if c.action == "upload" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fail(-1, c.tag()+": url must be an http or https URL")
		}
		if name == "" {
			name = u[strings.LastIndex(u, "/")+1:]
		}
	} else if name == "" {
		return fail(-1, c.tag()+": name required")
	}
	for _, im := range s.iso().images {
		if im.Name == name {
			im.URL = u
			return ok(obj{"result": "OK", "id": im.ID})
		}
	}
	im := &isoImage{ID: s.st.mod.id(), Name: name, URL: u, Uploaded: c.action == "upload"}
	s.iso().images = append(s.iso().images, im)
	return ok(obj{"result": "OK", "id": im.ID})
}

func isoMount(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	im := s.findISO(c)
	if im == nil {
		return fail(-1, c.tag()+": image not found (iso_id or name from iso/list_iso)")
	}
	s.iso().mounted[sv.ID] = im.ID
	return ok(s.asyncEnvelope(c, "ISO "+im.Name+" mounted", obj{"iso_id": im.ID}))
}

func isoUnmount(s *Server, c *call) resp {
	sv, r, bad := s.needServer(c)
	if bad {
		return r
	}
	if s.iso().mounted[sv.ID] == 0 {
		return fail(-1, c.tag()+": no image mounted")
	}
	delete(s.iso().mounted, sv.ID)
	return ok(s.asyncEnvelope(c, "ISO unmounted", nil))
}

func isoDelete(s *Server, c *call) resp {
	id := atoi(c.a.get("id"))
	st := s.iso()
	for i, im := range st.images {
		if im.ID == id {
			st.images = append(st.images[:i], st.images[i+1:]...)
			for srv, m := range st.mounted {
				if m == id {
					delete(st.mounted, srv)
				}
			}
			return ok(obj{"result": "OK"})
		}
	}
	return fail(-1, c.tag()+": image not found")
}
