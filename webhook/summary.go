package webhook

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// Summarize is a one-line, secret-free description of an event.
func Summarize(ev Event) string {
	switch ev.Kind {
	case store.KindInstallDone:
		var b strings.Builder
		if ev.ServerID != 0 {
			fmt.Fprintf(&b, "Install finished on server %d", ev.ServerID)
		} else {
			b.WriteString("Install finished (new order)")
		}
		if ev.Action != "" {
			fmt.Fprintf(&b, " (%s)", ev.Action)
		}
		if d, ok := schemas.ToInt64(ev.Data["duration_seconds"]); ok && d > 0 {
			fmt.Fprintf(&b, " after %s", (time.Duration(d) * time.Second).String())
		}
		if src, _ := ev.Data["source_ip"].(string); src != "" {
			fmt.Fprintf(&b, "; callback from %s", src)
			if v, ok := ev.Data["source_verified"].(bool); ok && !v {
				b.WriteString(" (source not verified)")
			}
		}
		fmt.Fprintf(&b, ". Job %s, event %s.", ev.JobID, ev.ID)
		return b.String()
	case store.KindLoginAlert:
		var parts []string
		for _, m := range []any{ev.Data["body"], ev.Data["query"]} {
			mm, _ := m.(map[string]any)
			keys := make([]string, 0, len(mm))
			for k := range mm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s := fmt.Sprint(mm[k]); len(s) <= 80 && len(parts) < 8 {
					parts = append(parts, k+"="+s)
				}
			}
		}
		s := "API key login alert"
		if len(parts) > 0 {
			s += ": " + strings.Join(parts, ", ")
		}
		if src, _ := ev.Data["source_ip"].(string); src != "" {
			s += " (delivered from " + src + ")"
		}
		return s + ". Event " + ev.ID + "."
	default:
		s := "Workflow event"
		if ev.Action != "" {
			s += " " + ev.Action
		}
		if ev.ServerID != 0 {
			s += fmt.Sprintf(" on server %d", ev.ServerID)
		}
		if m, _ := ev.Data["message"].(string); m != "" {
			s += ": " + m
		}
		return s + ". Event " + ev.ID + "."
	}
}
