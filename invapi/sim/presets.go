package sim

import "strings"

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
