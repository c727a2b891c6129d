package sim

import (
	"strconv"
	"strings"
)

// Public lists: presets, OS, software, traffic plans, Jenkins tasks, stock servers. They
// answer with or without a session token.

func init() {
	register(presetsList, "presets/list", "presets/search")
	register(presetsInfo, "presets/info")
	register(osList, "os/list")
	register(softwareList, "software/list", "soft/list")
	register(trafficPlansList, "traffic_plans/list")
	register(jenkinsTasks, "jenkins/get_tasks", "jenkins/list")
	register(stocksList, "stocks/list")
	register(stocksShow, "stocks/show")
}

// instancePreset resolves instance_id (or preset) to a preset; ok is false when one was
// given but is unknown.
func (s *Server) instancePreset(c *call) (*presetFix, bool) {
	ref := c.a.get("instance_id")
	if ref == "" {
		ref = c.a.get("preset")
	}
	if ref == "" {
		return nil, true
	}
	p := s.findPreset(ref)
	return p, p != nil
}

func presetsList(s *Server, c *call) resp {
	loc := strings.ToUpper(c.a.get("location"))
	out := []any{}
	for _, p := range s.fx.presets {
		if loc != "" && !p.inLocation(loc) {
			continue
		}
		m := deepCopy(p.raw).(map[string]any)
		m["available"] = p.Available
		out = append(out, m)
	}
	return ok(obj{"result": "OK", "action": "list", "presets": out})
}

func presetsInfo(s *Server, c *call) resp {
	ref := c.a.get("id")
	if ref == "" {
		ref = c.a.get("preset")
	}
	if ref == "" {
		ref = c.a.get("instance_id")
	}
	if ref == "" {
		// Without a preset, the price list in the asked currencies (the vendor's client
		// calls it so, with currencies=EUR,USD).
		return ok(obj{"result": "OK", "action": "info", "presets": s.presetPrices(c.a.get("currencies"))})
	}
	p := s.findPreset(ref)
	if p == nil {
		return fail(-1, "PRESETS/info: preset "+ref+" not found")
	}
	m := deepCopy(p.raw).(map[string]any)
	m["available"] = p.Available
	return ok(obj{"result": "OK", "action": "info", "preset": m})
}

func osList(s *Server, c *call) resp {
	p, okp := s.instancePreset(c)
	if !okp {
		return fail(-1, "OS/list: invalid instance_id")
	}
	return ok(obj{"result": "OK", "action": "list", "os_list": forPreset(s.fx.oses, p)})
}

func softwareList(s *Server, c *call) resp {
	p, okp := s.instancePreset(c)
	if !okp {
		return fail(-1, "SOFTWARE/list: invalid instance_id")
	}
	return ok(obj{"result": "OK", "action": "list", "software": forPreset(s.fx.softs, p)})
}

// forPreset is the list's entries for the preset's kind of hardware (all with no preset).
func forPreset(list []*catalogFix, p *presetFix) []any {
	out := []any{}
	for _, x := range list {
		if p != nil && !kindsOf(x.Tags)[p.kind()] {
			continue
		}
		out = append(out, deepCopy(x.raw))
	}
	return out
}

func trafficPlansList(s *Server, c *call) resp {
	loc := strings.ToUpper(c.a.get("location"))
	p, okp := s.instancePreset(c)
	if !okp {
		return fail(-1, "TRAFFIC_PLANS/list: invalid instance_id")
	}
	out := []any{}
	for _, tp := range s.fx.plans {
		if loc != "" && !inCSV(tp.Locations, loc) {
			continue
		}
		if p != nil {
			kind := "bm"
			if p.Virtual == 1 {
				kind = "vm"
			}
			if !kindsOf(tp.Tags)[kind] {
				continue
			}
		}
		out = append(out, deepCopy(tp.raw))
	}
	return ok(obj{"result": "OK", "action": "list", "traffic_plans": out})
}

func jenkinsTasks(s *Server, c *call) resp {
	return ok(deepCopy(s.fx.jenkins).(map[string]any))
}

func stockServers(s *Server) []map[string]any {
	arr, _ := s.fx.stocks["servers"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, x := range arr {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func stocksList(s *Server, c *call) resp {
	loc := strings.ToUpper(c.a.get("location"))
	group := strings.ToUpper(c.a.get("group"))
	out := []any{}
	for _, m := range stockServers(s) {
		if loc != "" && !strings.EqualFold(loc, m["location"].(string)) {
			continue
		}
		hw, _ := m["hardware"].(map[string]any)
		ctype, _ := hw["cpu_type"].(string)
		cnt := num(hw["cpu_count"])
		gpus := num(hw["gpu_count"])
		switch group {
		case "", "ALL":
		case "1CPU":
			if cnt != 1 || gpus > 0 {
				continue
			}
		case "2CPU":
			if cnt != 2 || gpus > 0 {
				continue
			}
		case "GPU":
			if gpus == 0 {
				continue
			}
		case "AMD":
			if !strings.HasPrefix(ctype, "AMD") || gpus > 0 {
				continue
			}
		default:
			if !strings.EqualFold(ctype, group) || gpus > 0 {
				continue
			}
		}
		out = append(out, deepCopy(m))
	}
	return ok(obj{"result": "OK", "action": "list", "servers": out})
}

func stocksShow(s *Server, c *call) resp {
	id := c.a.get("id")
	for _, m := range stockServers(s) {
		if strconv.FormatInt(num(m["id"]), 10) == id {
			d := deepCopy(m).(map[string]any)
			loc, _ := d["location"].(string)
			var locID int
			for _, l := range s.fx.locations.Locations {
				if l.Code == loc {
					locID = l.LocationID
				}
			}
			d["location"] = obj{"dc_location": loc, "location_id": locID, "country": loc}
			delete(d, "server_group")
			return ok(obj{"result": "OK", "action": "show", "server_data": d})
		}
	}
	return fail(-1, "STOCKS/show: server "+id+" not found")
}
