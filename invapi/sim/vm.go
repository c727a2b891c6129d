package sim

import "strings"

// VM snapshots and statistics (vm.php). Snapshots exist only on virtual servers; removing
// one needs the VM powered off (the vendor's client says so).

func init() {
	register(vmGetSnapshot, "vm/get_snapshot")
	register(vmGetEngine, "vm/get_engine")
	register(vmLoadStats, "vm/load_stats")
	register(vmCreateSnapshot, "vm/create_snapshot")
	register(vmRemoveSnapshot, "vm/remove_snapshot")
	register(vmRestoreSnapshot, "vm/restore_snapshot")
}

type snapshot struct {
	ID       string `json:"snapshot_id"`
	Name     string `json:"name"`
	Date     string `json:"date"`
	Restored string `json:"restored,omitempty"` // when the VM was last rolled back to it
}

// vmServer is the session's server named by id, which must be a virtual machine.
func (s *Server) vmServer(c *call) (*server, resp, bool) {
	sv, r, bad := s.needServer(c)
	if bad {
		return nil, r, true
	}
	if !s.isVM(sv) {
		return nil, fail(-1, c.tag()+": server "+c.a.get("id")+" is not a virtual machine"), true
	}
	return sv, resp{}, false
}

func (s *Server) isVM(sv *server) bool {
	if p := s.findPreset(sv.Preset); p != nil {
		return p.kind() == "vm" || p.kind() == "vgpu"
	}
	return strings.HasPrefix(strings.ToLower(sv.Preset), "vm")
}

func (s *Server) snapshots(id int64) []*snapshot {
	if s.st.mod.snaps == nil {
		s.st.mod.snaps = map[int64][]*snapshot{}
	}
	return s.st.mod.snaps[id]
}

func snapshotNamed(list []*snapshot, name string) (int, *snapshot) {
	for i, sn := range list {
		if sn.Name == name {
			return i, sn
		}
	}
	return -1, nil
}

func vmGetSnapshot(s *Server, c *call) resp {
	sv, r, bad := s.vmServer(c)
	if bad {
		return r
	}
	out := []any{}
	for _, sn := range s.snapshots(sv.ID) {
		out = append(out, *sn)
	}
	return ok(obj{"result": "OK", "snapshots": out})
}

func vmGetEngine(s *Server, c *call) resp {
	return ok(obj{"result": "OK", "engine": "ovirt", "version": "4.5"})
}

func vmLoadStats(s *Server, c *call) resp {
	sv, r, bad := s.vmServer(c)
	if bad {
		return r
	}
	return ok(obj{"result": "OK", "stats": obj{"cpu_percent": 7, "memory_percent": 41, "disk_read_bps": 2048, "disk_write_bps": 8192, "power": sv.Power}})
}

func vmCreateSnapshot(s *Server, c *call) resp {
	sv, r, bad := s.vmServer(c)
	if bad {
		return r
	}
	if r, bad := need(c, "name"); bad {
		return r
	}
	name := c.a.get("name")
	if _, dup := snapshotNamed(s.snapshots(sv.ID), name); dup != nil {
		return fail(-1, c.tag()+": snapshot "+name+" already exists")
	}
	sn := &snapshot{ID: newKey()[:12], Name: name, Date: stamp(c.now)}
	s.st.mod.snaps[sv.ID] = append(s.snapshots(sv.ID), sn)
	return ok(s.asyncEnvelope(c, "snapshot "+name+" created", obj{"snapshot_id": sn.ID}))
}

func vmRemoveSnapshot(s *Server, c *call) resp {
	sv, r, bad := s.vmServer(c)
	if bad {
		return r
	}
	if r, bad := need(c, "name"); bad {
		return r
	}
	i, sn := snapshotNamed(s.snapshots(sv.ID), c.a.get("name"))
	if sn == nil {
		return fail(-1, c.tag()+": snapshot "+c.a.get("name")+" not found")
	}
	if sv.Power != "off" {
		return fail(-1, c.tag()+": power the VM off before removing a snapshot")
	}
	list := s.snapshots(sv.ID)
	s.st.mod.snaps[sv.ID] = append(list[:i], list[i+1:]...)
	return ok(obj{"result": "OK"})
}

func vmRestoreSnapshot(s *Server, c *call) resp {
	sv, r, bad := s.vmServer(c)
	if bad {
		return r
	}
	if r, bad := need(c, "name"); bad {
		return r
	}
	_, sn := snapshotNamed(s.snapshots(sv.ID), c.a.get("name"))
	if sn == nil {
		return fail(-1, c.tag()+": snapshot "+c.a.get("name")+" not found")
	}
	sn.Restored = stamp(c.now)
	return ok(s.asyncEnvelope(c, "restored from snapshot "+sn.Name, obj{"snapshot_id": sn.ID}))
}
