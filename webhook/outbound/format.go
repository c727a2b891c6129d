package outbound

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// Event types as delivered (the "type" of a standard body).
const (
	TypeInstallFinished   = "install.finished"
	TypeLoginAlert        = "login.alert"
	TypeJobStarted        = "job.started"
	TypeJobStage          = "job.stage"
	TypeJobDone           = "job.done"
	TypeJobFailed         = "job.failed"
	TypeJobCancelled      = "job.cancelled"
	TypeApprovalRequested = "approval.requested"
	TypeApprovalDecided   = "approval.decided"
)

// Types lists every event type, in catalogue order.
var Types = []string{TypeInstallFinished, TypeLoginAlert, TypeJobStarted, TypeJobStage, TypeJobDone, TypeJobFailed,
	TypeJobCancelled, TypeApprovalRequested, TypeApprovalDecided}

// stored is the JSON the webhook receiver (and the approval hook) keep in the event log.
type stored struct {
	Kind     string         `json:"kind"`
	ServerID int64          `json:"server_id,omitempty"`
	JobID    string         `json:"job_id,omitempty"`
	Action   string         `json:"action,omitempty"`
	Time     time.Time      `json:"time"`
	Data     map[string]any `json:"data,omitempty"`
	// Session is never delivered: over HTTP an MCP session id is a credential.
}

// Payload is the standard body of a delivery.
type Payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	EventID   string         `json:"event_id"`
	Cursor    uint64         `json:"cursor"`
	ServerID  int64          `json:"server_id,omitempty"`
	Data      map[string]any `json:"data"`
}

// PayloadOf turns a stored event into what is delivered: its public type, the fields a
// bot needs, and data with every secret removed (see clean).
func PayloadOf(ev state.Event) (Payload, error) {
	var s stored
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		return Payload{}, fmt.Errorf("event %d: %w", ev.Cursor, err)
	}
	if s.Kind == "" {
		s.Kind = ev.Kind
	}
	p := Payload{Type: typeOf(s), Timestamp: ev.Time.UTC(), EventID: ev.ID, Cursor: ev.Cursor, ServerID: ev.ServerID, Data: map[string]any{}}
	if !s.Time.IsZero() {
		p.Timestamp = s.Time.UTC()
	}
	for k, v := range clean(s.Data).(map[string]any) {
		p.Data[k] = v
	}
	if s.JobID != "" {
		p.Data["job_id"] = s.JobID
	}
	if s.Action != "" {
		p.Data["tool"] = s.Action
	}
	return p, nil
}

func typeOf(s stored) string {
	switch s.Kind {
	case "install_done":
		return TypeInstallFinished
	case "login_alert":
		return TypeLoginAlert
	case "workflow":
		st, _ := s.Data["state"].(string)
		switch st {
		case "done":
			return TypeJobDone
		case "failed":
			return TypeJobFailed
		case "cancelled":
			return TypeJobCancelled
		}
		if n, _ := s.Data["stage"].(float64); n <= 0 {
			return TypeJobStarted
		}
		return TypeJobStage
	}
	return s.Kind // approval.requested, approval.decided
}

// secretKey names the fields never delivered: passwords, PINs, tokens, keys, secrets,
// callback URLs, cookies and sessions. A destination is another party.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"pass", "pin", "token", "secret", "key", "callback", "cookie", "session", "auth", "url", "signature", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// clean copies v without secret fields, and with any URL cut to its scheme and host (a
// URL's path or query may be a credential: a callback's secret path, a signed link).
func clean(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if secretKey(k) {
				continue
			}
			out[k] = clean(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = clean(val)
		}
		return out
	case string:
		return cleanString(x)
	case nil:
		return map[string]any{}
	}
	return v
}

var urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

func cleanString(s string) string {
	return urlRE.ReplaceAllStringFunc(s, func(m string) string {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			return "(a URL)"
		}
		if u.Path == "" && u.RawQuery == "" && u.User == nil {
			return m
		}
		return u.Scheme + "://" + u.Hostname() + "/…"
	})
}

// SlackText is the one readable line of a slack-format delivery, e.g.
// "web-nl-01 (40101) install finished: Ubuntu 24.04, 203.0.113.10".
func SlackText(p Payload) string {
	who := serverName(p)
	str := func(k string) string { s, _ := p.Data[k].(string); return s }
	switch p.Type {
	case TypeInstallFinished:
		var parts []string
		body, _ := p.Data["body"].(map[string]any)
		q, _ := p.Data["query"].(map[string]any)
		for _, k := range []string{"os", "os_name", "ip", "main_ip"} {
			if s := pick(body, q, k); s != "" {
				parts = append(parts, s)
			}
		}
		line := who + " install finished"
		if len(parts) > 0 {
			line += ": " + strings.Join(parts, ", ")
		}
		return line
	case TypeLoginAlert:
		return fmt.Sprintf("login alert: an API key was used to log in (from %s)", orDash(str("source_ip")))
	case TypeJobStarted, TypeJobStage, TypeJobDone, TypeJobFailed, TypeJobCancelled:
		what := strings.TrimPrefix(p.Type, "job.")
		if p.Type == TypeJobStage {
			what = fmt.Sprintf("at stage %v/%v", p.Data["stage"], p.Data["stages"])
		}
		line := fmt.Sprintf("%s %s job %s %s", who, str("tool"), str("job_id"), what)
		if m := str("message"); m != "" {
			line += ": " + m
		}
		if e := str("error"); e != "" {
			line += ": " + e
		}
		return line
	case TypeApprovalRequested:
		return fmt.Sprintf("approval %s requested for %s, expires %s: %s", str("approval_id"), str("tool"), str("expires_at"), oneLine(str("summary")))
	case TypeApprovalDecided:
		return fmt.Sprintf("approval %s for %s %s (via %s)", str("approval_id"), str("tool"), str("decision"), orDash(str("via")))
	}
	return p.Type + " " + p.EventID
}

func serverName(p Payload) string {
	body, _ := p.Data["body"].(map[string]any)
	q, _ := p.Data["query"].(map[string]any)
	host := pick(body, q, "hostname")
	switch {
	case host != "" && p.ServerID != 0:
		return fmt.Sprintf("%s (%d)", host, p.ServerID)
	case p.ServerID != 0:
		return fmt.Sprintf("server %d", p.ServerID)
	case host != "":
		return host
	}
	return "hostkey-mcp"
}

// pick finds k in a JSON body or a form (whose values are lists).
func pick(body, form map[string]any, k string) string {
	if s, ok := body[k].(string); ok {
		return s
	}
	switch v := form[k].(type) {
	case string:
		return v
	case []any:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// body renders a delivery in format f.
func body(f string, p Payload) ([]byte, error) {
	if f == FormatSlack {
		return json.Marshal(map[string]string{"text": SlackText(p)})
	}
	return json.Marshal(p)
}
