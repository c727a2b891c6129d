package policy

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
)

// Handler serves the local approval pages and the bot approval API. cmd mounts it on a
// loopback listener under PINPageBaseURL's path, e.g.
//
//	mux.Handle("/policy/", http.StripPrefix("/policy", engine.Handler()))
//
// Routes (relative to the mount point):
//
//	GET  /approve/{id}        the page: summary, PIN field when needed, Approve / Decline
//	GET  /details/{id}        every argument in full, for a form confirmation that describes a long one
//	POST /approve/{id}        the human's answer (form post from that page only)
//	GET  /api/approvals       bots: approvals waiting (Authorization: Bearer <approver token>)
//	GET  /api/approvals/{id}  bots: one approval
//	POST /api/approvals/{id}  bots: {"decision":"approve"|"decline","pin":"…optional"}
//
// Every approval is single-use, expires (ApprovalTTL) and is bound to one call. Unless
// AllowRemote is set, only loopback clients using a loopback Host are served.
func (e *Engine) Handler() http.Handler {
	rt := mux.NewRouter()
	// HEAD with GET, as net/http's ServeMux patterns (the router this replaced) did.
	rt.HandleFunc("/approve/{id}", e.pageGet).Methods(http.MethodGet, http.MethodHead)
	rt.HandleFunc("/details/{id}", e.detailsGet).Methods(http.MethodGet, http.MethodHead)
	rt.HandleFunc("/approve/{id}", e.pagePost).Methods(http.MethodPost)
	rt.HandleFunc("/api/approvals", e.apiList).Methods(http.MethodGet, http.MethodHead)
	rt.HandleFunc("/api/approvals/{id}", e.apiGet).Methods(http.MethodGet, http.MethodHead)
	rt.HandleFunc("/api/approvals/{id}", e.apiPost).Methods(http.MethodPost)
	return e.localOnly(rt)
}

func (e *Engine) localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		if !e.o.AllowRemote && (!httpx.IsLoopback(r.RemoteAddr) || !httpx.IsLoopback(r.Host)) {
			http.Error(w, "hostkey-mcp approvals are served to this machine only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pathID is the {id} of the route.
func pathID(r *http.Request) string { return mux.Vars(r)["id"] }

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>hostkey-mcp: {{.Title}}</title>
<style>body{font:16px/1.45 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#111}
.box{border:1px solid #c33;border-radius:.5rem;padding:1rem;background:#fff6f6;white-space:pre-wrap;overflow-wrap:anywhere}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:.35rem;border:1px solid #888;cursor:pointer}
.approve{background:#b00;color:#fff;border-color:#900}.muted{color:#555;font-size:.9rem}
input[type=password]{font-size:1.1rem;padding:.35rem;width:12rem}</style></head><body>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if and .Text (not .Form)}}<div class="box">{{.Text}}</div>{{end}}
{{if .Form}}
<div class="box">{{.Text}}</div>
<form method="post" action="" autocomplete="off">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .NeedsPIN}}<p><label>Account PIN (sent to Hostkey with this one action only, never shown to the assistant):<br>
<input type="password" name="pin" inputmode="numeric" autocomplete="off" required maxlength="64"></label></p>{{end}}
<p><button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="decline" formnovalidate>Decline</button></p>
</form>
<p class="muted">Approval {{.ID}}. It works once and expires at {{.Expires}}. If you did not ask your assistant for this, press Decline.</p>
{{end}}
</body></html>`))

type pageData struct {
	Title, Message, Text, CSRF, ID, Expires string
	Form, NeedsPIN                          bool
}

func (e *Engine) page(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

func (e *Engine) pageGet(w http.ResponseWriter, r *http.Request) {
	v, ok := e.getApproval(r.Context(), pathID(r))
	if !ok {
		e.page(w, http.StatusNotFound, pageData{Title: "Unknown or expired", Message: "This approval does not exist, was already used, or expired. Ask your assistant to try again."})
		return
	}
	if v.State != statePending {
		e.page(w, http.StatusConflict, pageData{Title: "Already answered", Message: "This approval was already " + v.State.String() + "."})
		return
	}
	title := "Approve this action?"
	if v.Confirmed {
		title = "Enter the PIN for the action you confirmed"
	}
	text := v.Full
	if text == "" {
		text = v.Text
	}
	if !e.pageApproves() {
		e.page(w, http.StatusOK, pageData{Title: "Approve in the chat-ops bot", Message: "Approvals come from the approval bot only; this page only shows what is asked.", Text: text})
		return
	}
	e.page(w, http.StatusOK, pageData{
		Title: title, Text: text, CSRF: v.csrf, ID: v.ID, Form: true, NeedsPIN: v.NeedsPIN,
		Expires: v.Expires.Local().Format("15:04:05"),
	})
}

// detailsGet shows every argument of a form confirmation in full. It only reads.
func (e *Engine) detailsGet(w http.ResponseWriter, r *http.Request) {
	text, ok := e.store.getDetails(e.now(), pathID(r))
	if !ok {
		e.page(w, http.StatusNotFound, pageData{Title: "Unknown or expired", Message: "These details do not exist or expired."})
		return
	}
	e.page(w, http.StatusOK, pageData{Title: "What you are asked to confirm", Message: "Answer in your assistant's confirmation form; this page only shows the full text.", Text: text})
}

func (e *Engine) pagePost(w http.ResponseWriter, r *http.Request) {
	id := pathID(r)
	if !e.pageApproves() {
		e.page(w, http.StatusForbidden, pageData{Title: "Refused", Message: "Approvals come from the approval bot only" + hint(e.o.Hints.ConfirmToken) + "."})
		return
	}
	if !httpx.SameOrigin(r) { // a form post from the page itself
		e.page(w, http.StatusForbidden, pageData{Title: "Refused", Message: "Answer from the approval page in your browser."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		e.page(w, http.StatusBadRequest, pageData{Title: "Bad request", Message: "The form could not be read."})
		return
	}
	v, ok := e.getApproval(r.Context(), id)
	if !ok {
		e.page(w, http.StatusNotFound, pageData{Title: "Unknown or expired", Message: "This approval does not exist, was already used, or expired. Nothing was sent."})
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(v.csrf)) != 1 {
		e.page(w, http.StatusForbidden, pageData{Title: "Refused", Message: "Reload the approval page and answer again."})
		return
	}
	approve := r.PostForm.Get("decision") == "approve"
	pin := ""
	if approve && v.NeedsPIN {
		pin = strings.TrimSpace(r.PostForm.Get("pin"))
		if err := checkPIN(pin); err != nil {
			e.page(w, http.StatusBadRequest, pageData{Title: "PIN missing", Message: "Enter the account PIN to approve. Go back and try again."})
			return
		}
	}
	nv, err := e.decideApproval(r.Context(), id, approve, pin, "page")
	if errors.Is(err, errElsewhere) {
		e.page(w, http.StatusConflict, pageData{Title: "Not recorded", Message: "This approval was asked for by another hostkey-mcp process, and the PIN typed here cannot travel to it. Open the approval link that process gave. Nothing was sent."})
		return
	} else if err != nil {
		e.page(w, http.StatusConflict, pageData{Title: "Not recorded", Message: "This approval was already answered or expired."})
		return
	}
	e.notifyApproval(ApprovalDecided, nv)
	e.log.Info("approval answered on the local page", zap.String("approval", id), zap.String("tool", v.Tool), zap.Bool("approved", approve))
	e.auditDecline(v, approve, "page")
	if approve {
		e.page(w, http.StatusOK, pageData{Title: "Approved", Message: "Approved. You can close this tab and return to your assistant."})
		return
	}
	e.page(w, http.StatusOK, pageData{Title: "Declined", Message: "Declined. Nothing will be sent."})
}

// botAuthorized checks the bot's bearer credential in constant time.
func (e *Engine) botAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if e.o.ApproverToken == "" {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "bot approvals are not enabled"})
		return false
	}
	if !httpx.Bearer(r, e.o.ApproverToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hostkey-mcp approvals"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "approver token required"})
		return false
	}
	return true
}

type apiApproval struct {
	ID        string `json:"id"`
	Tool      string `json:"tool"`
	Summary   string `json:"summary"`
	Details   string `json:"details,omitempty"` // every argument in full`
	NeedsPIN  bool   `json:"needs_pin"`
	Confirmed bool   `json:"confirmed"`
	State     string `json:"state"`
	ExpiresAt string `json:"expires_at"`
}

func apiView(v view) apiApproval {
	return apiApproval{ID: v.ID, Tool: v.Tool, Summary: v.Text, Details: v.Full, NeedsPIN: v.NeedsPIN, Confirmed: v.Confirmed,
		State: v.State.String(), ExpiresAt: v.Expires.UTC().Format(time.RFC3339)}
}

func (e *Engine) apiList(w http.ResponseWriter, r *http.Request) {
	if !e.botAuthorized(w, r) {
		return
	}
	var out []apiApproval
	for _, v := range e.store.list(e.now()) {
		if v.State == statePending {
			out = append(out, apiView(v))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExpiresAt < out[j].ExpiresAt })
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (e *Engine) apiGet(w http.ResponseWriter, r *http.Request) {
	if !e.botAuthorized(w, r) {
		return
	}
	v, ok := e.getApproval(r.Context(), pathID(r))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown or expired approval"})
		return
	}
	writeJSON(w, http.StatusOK, apiView(v))
}

func (e *Engine) apiPost(w http.ResponseWriter, r *http.Request) {
	if !e.botAuthorized(w, r) {
		return
	}
	var body struct {
		Decision string `json:"decision"`
		PIN      string `json:"pin"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": `want {"decision":"approve"|"decline","pin":"optional"}`})
		return
	}
	id := pathID(r)
	v, ok := e.getApproval(r.Context(), id)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown or expired approval"})
		return
	}
	var approve bool
	switch body.Decision {
	case "approve":
		approve = true
	case "decline":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": `decision must be "approve" or "decline"`})
		return
	}
	pin := ""
	if approve && v.NeedsPIN {
		pin = strings.TrimSpace(body.PIN)
		if err := checkPIN(pin); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "this approval needs the account PIN (no PIN is configured on the server)"})
			return
		}
	}
	nv, err := e.decideApproval(r.Context(), id, approve, pin, "bot")
	switch {
	case errors.Is(err, errElsewhere):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "this approval was asked for by another hostkey-mcp process, which has no PIN configured; a PIN cannot travel between processes: configure a PIN there" + hint(e.o.Hints.SetPIN) + ", or approve on its page"})
		return
	case errors.Is(err, errDecided):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "already " + nv.State.String()})
		return
	case err != nil:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown or expired approval"})
		return
	}
	e.log.Info("approval answered by a bot", zap.String("approval", id), zap.String("tool", v.Tool), zap.Bool("approved", approve))
	e.notifyApproval(ApprovalDecided, nv)
	e.auditDecline(v, approve, "bot")
	writeJSON(w, http.StatusOK, apiView(nv))
}

// auditDecline audits a human's decline of a two-step approval when it is given: the
// model may never repeat the call, and the answer (and who gave it) belongs in the
// audit. A page elicitation's decline is audited by the call that waits for it.
func (e *Engine) auditDecline(v view, approve bool, who string) {
	if approve || v.Kind != kindTwoStep || v.turn == nil {
		return
	}
	e.record(v.turn, DecisionDeclined, "approval "+v.ID+" declined by the "+who+"; nothing was sent", viaApproval(who), "", 0)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
