package sim

import (
	"maps"
	"slices"
	"strings"
)

// presetPrices lists every preset's price per location in the given currencies
// (comma-separated; EUR when empty), as presets/info answers without a preset.
func (s *Server) presetPrices(currencies string) []any {
	want := map[string]bool{}
	for _, c := range strings.Split(currencies, ",") {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
			want[c] = true
		}
	}
	if len(want) == 0 {
		want["EUR"] = true
	}
	out := []any{}
	for _, p := range s.fx.presets {
		prices := obj{}
		if byLoc, ok := p.raw["price"].(map[string]any); ok {
			for loc, v := range byLoc {
				cur, _ := v.(map[string]any)
				keep := obj{}
				for code, amount := range cur {
					if want[code] {
						keep[code] = amount
					}
				}
				prices[loc] = keep
			}
		}
		out = append(out, obj{"id": p.ID, "name": p.Name, "price": prices})
	}
	return out
}

func init() {
	register(presetsGroups, "presets/groups")
	register(presetsShow, "presets/show")
}

// presetsGroups lists the hardware kinds the presets fall into, with their presets.
func presetsGroups(s *Server, c *call) resp {
	by := map[string][]any{}
	for _, p := range s.fx.presets {
		by[p.kind()] = append(by[p.kind()], p.Name)
	}
	out := []any{}
	for _, k := range slices.Sorted(maps.Keys(by)) {
		out = append(out, obj{"group": k, "presets": by[k]})
	}
	return ok(obj{"result": "OK", "groups": out})
}

// presetsShow shows one preset by id, or all of them.
func presetsShow(s *Server, c *call) resp {
	if ref := c.a.get("id"); ref != "" {
		p := s.findPreset(ref)
		if p == nil {
			return fail(-1, c.tag()+": preset "+ref+" not found")
		}
		return ok(obj{"result": "OK", "preset": deepCopy(p.raw)})
	}
	out := []any{}
	for _, p := range s.fx.presets {
		out = append(out, deepCopy(p.raw))
	}
	return ok(obj{"result": "OK", "presets": out})
}
