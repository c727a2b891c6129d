package outbound

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// example is one event as stored, for the catalogue.
type example struct {
	kind, doc string
	server    int64
	action    string
	data      map[string]any
}

var examples = []example{
	{"install_done", "a reinstall's post-install callback arrived (the callback URL itself is never delivered)", 40101, "server_reinstall",
		map[string]any{"method": "POST", "body": map[string]any{"hostname": "web-nl-01", "os": "Ubuntu 24.04", "ip": "203.0.113.10"},
			"source_ip": "203.0.113.10", "started_at": "2026-11-29T14:02:11Z", "duration_seconds": 742}},
	{"login_alert", "an API key was used to log in (login_notify_method=webhook)", 0, "",
		map[string]any{"method": "POST", "source_ip": "198.51.100.23"}},
	{"workflow", "a workflow job started", 40101, "server_reinstall",
		map[string]any{"state": "running", "stage": 0, "stages": 5, "message": "reinstall requested"}},
	{"workflow", "a workflow job reached a stage", 40101, "server_reinstall",
		map[string]any{"state": "running", "stage": 3, "stages": 5, "message": "installing the OS"}},
	{"workflow", "a workflow job finished", 40101, "server_reinstall",
		map[string]any{"state": "done", "stage": 5, "stages": 5, "message": "installed Ubuntu 24.04"}},
	{"workflow", "a workflow job failed", 40101, "server_reinstall",
		map[string]any{"state": "failed", "stage": 2, "stages": 5, "message": "stopped", "error": "invapi: the server is locked"}},
	{"workflow", "a workflow job was cancelled by its session", 40101, "server_reinstall",
		map[string]any{"state": "cancelled", "stage": 2, "stages": 5, "message": "cancelled; the reinstall was aborted"}},
	{TypeApprovalRequested, "a call waits for a human: approve it through the approvals API, then the model repeats it", 40101, "eq_reboot",
		map[string]any{"approval_id": "K2Q3VXQ4ZJ5M7N2B4C6D8F1G3H", "summary": "Reboot server 40101 (web-nl-01, 203.0.113.10, NL Amsterdam): the server restarts; running processes stop.",
			"details": "Reboot server 40101 (web-nl-01, 203.0.113.10, NL Amsterdam)\n  id: 40101", "approvers": []any{"bot"},
			"expires_at": "2026-11-29T14:04:11Z", "servers": []any{40101}}},
	{TypeApprovalDecided, "the approval was answered", 40101, "eq_reboot",
		map[string]any{"approval_id": "K2Q3VXQ4ZJ5M7N2B4C6D8F1G3H", "summary": "Reboot server 40101 (web-nl-01, 203.0.113.10, NL Amsterdam): the server restarts; running processes stop.",
			"approvers": []any{"bot"}, "expires_at": "2026-11-29T14:04:11Z", "servers": []any{40101}, "decision": "approved", "via": "bot"}},
}

// Catalogue renders the event catalogue of the README: per type, what it means, the
// standard body and the slack line, from the same code that delivers them.
func Catalogue() string {
	var b strings.Builder
	at := time.Date(2026, 11, 29, 14, 2, 11, 0, time.UTC)
	b.WriteString("| type | when |\n|---|---|\n")
	var bodies strings.Builder
	for i, ex := range examples {
		stored := map[string]any{"kind": ex.kind, "server_id": ex.server, "action": ex.action, "time": at, "data": ex.data,
			"session": "never-delivered"}
		if ex.kind == "workflow" || ex.kind == "install_done" {
			stored["job_id"] = "job_5f0c2a9e41d7b3c86a12"
		}
		raw, _ := json.Marshal(stored)
		ev := state.Event{Cursor: uint64(1200 + i), ID: fmt.Sprintf("ev_%020d", 1200+i), Kind: ex.kind, ServerID: ex.server, Time: at, Data: raw}
		p, err := PayloadOf(ev)
		if err != nil {
			panic(err) // the examples are fixed
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", p.Type, ex.doc)
		js, _ := json.MarshalIndent(p, "", "  ")
		fmt.Fprintf(&bodies, "\n`%s` (slack: `%s`)\n\n```json\n%s\n```\n", p.Type, SlackText(p), js)
	}
	return b.String() + bodies.String()
}
