package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// Input request ids in the elicitation round trips.
const (
	inputConfirm = "confirm"
	inputPage    = "page"
)

// confirmSchema is the yes/no form. It asks for nothing secret.
var confirmSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"confirm": map[string]any{
			"type":        "boolean",
			"title":       "Yes, do it",
			"description": "Tick to let hostkey-mcp send this action to Hostkey now.",
		},
	},
	"required": []string{"confirm"},
}

// turn is one governed call as the policy sees it.
type turn struct {
	call     *Call
	class    schemas.Class
	extra    string // a workflow's own description of what it does (Authorize)
	session  string
	client   string
	form     bool // the client declared form elicitation
	url      bool // the client declared URL elicitation
	argsHash string
	key      string // session + tool + arguments: what approvals are bound to
	start    time.Time

	wouldConfirm bool // the class (or the PIN) calls for a human
	needConfirm  bool // wouldConfirm, unless --confirm off
	needPINEntry bool // the call needs the PIN and none is configured
}

func (t *turn) needsHuman() bool { return t.needConfirm || t.needPINEntry }

// clientView reads who the client is and which elicitation modes it declared: from the
// request's _meta on 2026-07-28 requests, from the initialize handshake otherwise.
func clientView(ctx context.Context) (session, client string, form, url bool) {
	sess := server.ClientSessionFromContext(ctx)
	if sess != nil {
		session = sess.SessionID()
	}
	var caps *mcp.ClientCapabilities
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		caps = info.ClientCapabilities
		if info.ClientInfo != nil {
			client = info.ClientInfo.Name
		}
	} else if s, ok := sess.(server.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
		client = s.GetClientInfo().Name
		// Older clients are asked with elicitation/create, through the session.
		if _, ok := sess.(server.SessionWithElicitation); !ok {
			caps = nil
		}
	}
	if caps == nil || caps.Elicitation == nil {
		return session, client, false, false
	}
	el := caps.Elicitation
	if el.Form == nil && el.URL == nil {
		return session, client, true, false // "elicitation": {} means form only
	}
	return session, client, el.Form != nil, el.URL != nil
}

// ArgsHash is the canonical hash of a call's arguments (JSON with sorted keys).
func ArgsHash(tool string, args map[string]any) string {
	b, err := json.Marshal(args)
	if err != nil {
		b = []byte(fmt.Sprintf("%v", args))
	}
	h := sha256.New()
	h.Write([]byte(tool))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// qualify makes a session ID unique among the processes sharing a store: every stdio
// server calls its one session "stdio", and an approval or a per-session bucket of one
// process must not be another's. HTTP session IDs are random already (and shared by
// replicas); "" (no session: workflows, tests) stays as it is.
func (e *Engine) qualify(session string) string {
	if e.st != nil && session == "stdio" {
		return session + "-" + e.instance
	}
	return session
}

func (e *Engine) newTurn(ctx context.Context, call *Call) *turn {
	t := &turn{call: call, class: e.ClassOf(call), start: e.now()}
	t.session, t.client, t.form, t.url = clientView(ctx)
	t.session = e.qualify(t.session)
	t.argsHash = ArgsHash(call.Tool, call.Args)
	t.key = t.session + "\x00" + call.Tool + "\x00" + t.argsHash
	t.wouldConfirm = t.class == schemas.Destructive ||
		(t.class == schemas.Write && e.o.ConfirmWrites) ||
		(call.NeedsPIN && t.class != schemas.Read)
	t.needConfirm = t.wouldConfirm && e.o.Confirm != ConfirmOff
	t.needPINEntry = call.NeedsPIN && e.o.PIN == nil
	return t
}

// Middleware is the mcp-go tool-handler middleware that governs every tool the
// Describer knows. It is an adapter over decide: a fresh call goes through the
// pipeline and, when a human must confirm, is answered with an input request (multi
// round trip); the retry carrying the answer resumes it.
func (e *Engine) Middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if res := e.invalidCall(ctx, req); res != nil {
			return res, nil
		}
		call, err := e.o.Describe(ctx, req)
		if err != nil {
			t := &turn{call: &Call{Tool: req.Params.Name, Args: req.GetArguments()}, start: e.now()}
			t.session, t.client, _, _ = clientView(ctx)
			return e.refuse(t, DecisionInvalid, err.Error(), nil), nil
		}
		if call == nil {
			return next(ctx, req)
		}
		t := e.newTurn(ctx, call)
		if req.Params.RequestState != "" || len(req.Params.InputResponses) > 0 {
			return e.resume(ctx, t, req, next)
		}
		v := e.decide(ctx, t, e.askRoundTrip)
		if v.res != nil {
			return v.res, nil
		}
		return e.execute(ctx, t, req, next, v)
	}
}

// askRoundTrip starts the confirmation the client can take part in; the answer comes
// back in a retry of the call (resume).
func (e *Engine) askRoundTrip(ctx context.Context, t *turn, rsv *reservation) verdict {
	if e.o.Confirm == ConfirmElicit {
		switch {
		case t.needConfirm && t.form:
			return stop(e.askForm(ctx, t, rsv))
		case t.url && e.o.PINPageBaseURL != "":
			// The page shows the summary, takes the PIN if needed, and is the approval.
			return stop(e.askPage(ctx, t, false, rsv))
		}
	}
	return stop(e.askTwoStep(ctx, t, false, rsv))
}

func (e *Engine) askForm(ctx context.Context, t *turn, rsv *reservation) *mcp.CallToolResult {
	id, err := e.putHandle(ctx, &handle{
		session: t.session, tool: t.call.Tool, argsHash: t.argsHash, stage: stageConfirm,
		expires: e.now().Add(e.o.ConfirmTTL), rsv: rsv,
	}, e.o.MaxPending)
	if err != nil {
		rsv.release()
		return e.busy(t, err)
	}
	e.record(t, DecisionPending, "asked the human to confirm (form)", viaForm, "", 0)
	return server.NewInputRequestBuilder(id).Elicit(inputConfirm, mcp.ElicitationParams{
		Message:         e.formText(ctx, t),
		RequestedSchema: confirmSchema,
	}).ToolResult()
}

// formText is the message of a yes/no form. When it describes a long value instead of
// showing it, the full text is on a local page the message links to.
func (e *Engine) formText(ctx context.Context, t *turn) string {
	sum := e.summarize(ctx, t)
	if !sum.Described() || e.o.PINPageBaseURL == "" {
		return sum.Text()
	}
	id := e.store.putDetails(e.now(), sum.Full(), e.o.ConfirmTTL)
	if id == "" {
		return sum.Text()
	}
	u := e.o.PINPageBaseURL + "/details/" + id
	sum.FullAt = "at " + u
	return sum.Text() + "\nEvery argument in full: " + u
}

// newApproval stores an approval for t (the page, or the two-step flow) holding the
// call's rate tokens. On a non-nil result the tokens went back.
func (e *Engine) newApproval(ctx context.Context, t *turn, kind string, confirmed bool, rsv *reservation) (*approval, *mcp.CallToolResult) {
	sum := e.summarize(ctx, t)
	sum.FullAt = "on the approval page"
	if !e.pageApproves() {
		sum.FullAt = "in the approval's details"
	}
	a := &approval{
		Kind: kind, Key: t.key, Session: t.session, Tool: t.call.Tool, ServerIDs: t.call.ServerIDs, Text: sum.Text(), Full: sum.Full(),
		NeedsPIN: t.needPINEntry, Confirmed: confirmed,
		Created: e.now(), Expires: e.now().Add(e.o.ApprovalTTL), rsv: rsv, turn: t,
	}
	if e.o.MaxPending > 0 {
		e.refreshPending(ctx, t.session)
	}
	if err := e.store.addApproval(e.now(), a, e.o.MaxPending); err != nil {
		rsv.release()
		return nil, e.busy(t, err)
	}
	if err := e.shareApproval(ctx, a); err != nil {
		e.store.cancel(a.ID) // gives the tokens back
		e.log.Error("an approval could not be recorded in the shared store: the call is refused", zap.Error(err))
		return nil, e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})
	}
	e.notifyApproval(ApprovalRequested, a.view())
	return a, nil
}

// pageMessage is what a URL-mode elicitation tells the human about the page.
func (e *Engine) pageMessage(t *turn, a *approval) string {
	msg := "Review and approve this action on the local hostkey-mcp page"
	if t.needPINEntry {
		msg += ", where you also enter the account PIN (it is never shown to the assistant)"
	}
	if a.Confirmed {
		msg = "You confirmed the action. Enter the account PIN on the local hostkey-mcp page (it is never shown to the assistant)"
	}
	return msg + fmt.Sprintf(". The page works once and expires in %s. %s", e.o.ApprovalTTL, a.Text)
}

func (e *Engine) askPage(ctx context.Context, t *turn, confirmed bool, rsv *reservation) *mcp.CallToolResult {
	a, res := e.newApproval(ctx, t, kindPage, confirmed, rsv)
	if res != nil {
		return res
	}
	id, err := e.putHandle(ctx, &handle{
		session: t.session, tool: t.call.Tool, argsHash: t.argsHash, stage: stagePage,
		approvalID: a.ID, expires: a.Expires.Add(time.Minute),
	}, 0)
	if err != nil {
		e.forgetApproval(a.ID)
		return e.busy(t, err)
	}
	e.record(t, DecisionPending, "sent the human to the local page (URL mode)", viaURL, "", 0)
	return server.NewInputRequestBuilder(id).Elicit(inputPage, mcp.ElicitationParams{
		Mode:          mcp.ElicitationModeURL,
		Message:       e.pageMessage(t, a),
		ElicitationID: a.ID,
		URL:           e.pageURL(a.ID),
	}).ToolResult()
}

func (e *Engine) pageURL(id string) string { return e.o.PINPageBaseURL + "/approve/" + id }

// pageApproves reports whether a human may approve on the local page. Not with
// --confirm token: approvals come from the bot's credential only, since anything that
// runs on this machine (an assistant with a shell) can post to a loopback page.
func (e *Engine) pageApproves() bool {
	return e.o.PINPageBaseURL != "" && e.o.Confirm != ConfirmToken
}

// askTwoStep answers "confirmation required": a human approves outside the model, then
// the model repeats the exact call.
func (e *Engine) askTwoStep(ctx context.Context, t *turn, confirmed bool, rsv *reservation) *mcp.CallToolResult {
	if !e.pageApproves() && e.o.ApproverToken == "" {
		rsv.release()
		why := "this MCP client cannot ask the user (it does not support elicitation)"
		if e.o.Confirm == ConfirmToken {
			why = "confirmations are configured to come from an approval bot only"
		} else if t.form && t.needPINEntry {
			why = "the account PIN is needed, no PIN is configured and this client cannot open the local PIN page"
		}
		return e.refuse(t, DecisionDenied, fmt.Sprintf(
			"This call needs a human's approval, but %s and neither a local approval page nor an approval bot is configured. Nothing was sent.", why), nil)
	}
	a, res := e.newApproval(ctx, t, kindTwoStep, confirmed, rsv)
	if res != nil {
		return res
	}
	var how []string
	structured := map[string]any{
		"confirmation_required": true,
		"approval_id":           a.ID,
		"expires_at":            a.Expires.UTC().Format(time.RFC3339),
		"summary":               a.Text,
		"needs_pin":             a.NeedsPIN,
	}
	if e.pageApproves() {
		how = append(how, "the user opens "+e.pageURL(a.ID)+" in a browser and approves it there")
		structured["approve_url"] = e.pageURL(a.ID)
	}
	if e.o.ApproverToken != "" {
		how = append(how, "the operator approves it in the chat-ops bot")
	}
	text := fmt.Sprintf("Confirmation required; nothing was sent yet. %s\nApproval %s must be given by a human outside this conversation: %s. Then repeat exactly the same call (same tool, same arguments) within %s. Never ask the user for the PIN.",
		a.Text, a.ID, strings.Join(how, ", or "), e.o.ApprovalTTL)
	e.record(t, DecisionPending, "approval required (two-step)", viaTwoStep, "", 0)
	res = mcp.NewToolResultStructured(structured, text)
	res.IsError = true
	return res
}

func (e *Engine) waitingResult(t *turn, v view) *mcp.CallToolResult {
	left := v.Expires.Sub(e.now()).Round(time.Second)
	text := fmt.Sprintf("Still waiting for a human to approve %s (expires in %s); nothing was sent. Repeat the same call after the approval.", v.ID, left)
	res := mcp.NewToolResultStructured(map[string]any{
		"confirmation_required": true, "approval_id": v.ID, "state": "pending",
		"expires_at": v.Expires.UTC().Format(time.RFC3339),
	}, text)
	res.IsError = true
	return res
}

// resume continues a call after the client answered an elicitation (the retry of a
// multi-round-trip request, or mcp-go's bridge for elicitation/create clients).
func (e *Engine) resume(ctx context.Context, t *turn, req mcp.CallToolRequest, next server.ToolHandlerFunc) (*mcp.CallToolResult, error) {
	h, err := e.takeHandle(ctx, req.Params.RequestState)
	if err != nil {
		e.log.Error("a confirmation could not be read from the shared store: the call is refused", zap.Error(err))
		return e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true}), nil
	}
	if h == nil || h.session != t.session || h.tool != t.call.Tool || h.argsHash != t.argsHash {
		if h != nil {
			h.rsv.release()
			if h.approvalID != "" {
				e.forgetApproval(h.approvalID)
			}
		}
		return e.refuse(t, DecisionDenied, "The confirmation state of this call is unknown, expired, already used or belongs to another call. Nothing was sent. Call the tool again to ask for a new confirmation.", nil), nil
	}
	// fail ends the call without sending: the tokens and the page go.
	fail := func(res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		h.rsv.release()
		if h.approvalID != "" {
			e.forgetApproval(h.approvalID)
		}
		return res, nil
	}
	if msg := e.checkScope(ctx, t.call, t.class); msg != "" {
		return fail(e.refuse(t, DecisionDeniedScope, msg, nil))
	}
	if res := e.checkCooldown(ctx, t); res != nil {
		return fail(res)
	}
	switch h.stage {
	case stageConfirm:
		r := server.ElicitationResponse(req.Params.InputResponses, inputConfirm)
		if res := e.declined(t, r, viaForm); res != nil {
			return fail(res)
		}
		if !ticked(r.Content) {
			return fail(e.refuse(t, DecisionDeclined, "The confirmation was submitted without ticking \"Yes, do it\". Nothing was sent.", map[string]any{"declined": true}))
		}
		if t.needPINEntry {
			if t.url && e.o.PINPageBaseURL != "" {
				return e.askPage(ctx, t, true, h.rsv), nil
			}
			return e.askTwoStep(ctx, t, true, h.rsv), nil
		}
		return e.execute(ctx, t, req, next, verdict{decision: DecisionConfirmed, via: viaForm, rsv: h.rsv})
	case stagePage:
		r := server.ElicitationResponse(req.Params.InputResponses, inputPage)
		if res := e.declined(t, r, viaURL); res != nil {
			return fail(res)
		}
		if _, here := e.store.get(e.now(), h.approvalID); !here && e.st != nil {
			// The page (or a bot) answers the approval another process asked for.
			v, rsv, res := e.waitElsewhere(ctx, t, h.approvalID)
			if res != nil {
				return res, nil
			}
			return e.execute(ctx, t, req, next, verdict{decision: DecisionConfirmed, via: viaURLPage(v.Via), rsv: rsv})
		}
		// Accept in URL mode means "the human went to the page": wait for the page.
		v, pin, rsv, err := e.waitApproval(ctx, h.approvalID, t.session)
		switch {
		case errors.Is(err, errNoAnswer):
			return e.refuse(t, DecisionDenied, "The local page was not submitted in time. Nothing was sent. Call the tool again to start over.", nil), nil
		case err != nil:
			return e.refuse(t, DecisionDenied, "The local page for this call is unknown or expired. Nothing was sent. Call the tool again to start over.", nil), nil
		case v.State == stateDeclined:
			return e.refuse(t, DecisionDeclined, "The action was declined on the local page. Nothing was sent.", map[string]any{"declined": true}), nil
		}
		e.notifyComplete(ctx, v.ID)
		return e.execute(ctx, t, req, next, verdict{pin: pin, decision: DecisionConfirmed, via: viaURLPage(v.Via), rsv: rsv})
	}
	return fail(e.refuse(t, DecisionDenied, "Unknown confirmation stage. Nothing was sent.", nil))
}

// declined returns the result for an elicitation answer other than accept (nil on accept).
func (e *Engine) declined(t *turn, r *mcp.ElicitationResult, how channel) *mcp.CallToolResult {
	if r == nil {
		return e.refuse(t, DecisionDenied, "The client retried without answering the confirmation. Nothing was sent.", nil)
	}
	switch r.Action {
	case mcp.ElicitationResponseActionAccept:
		return nil
	case mcp.ElicitationResponseActionDecline:
		return e.refuseHow(t, DecisionDeclined, "The user declined. Nothing was sent. Do not repeat this call unless the user asks again.", how, map[string]any{"declined": true, "action": "decline"})
	default:
		return e.refuseHow(t, DecisionDeclined, "The user cancelled the confirmation. Nothing was sent.", how, map[string]any{"declined": true, "action": "cancel"})
	}
}

// ticked reads the form's answer: {"confirm": true}.
func ticked(content any) bool {
	m, ok := content.(map[string]any)
	if !ok {
		return false
	}
	b, ok := m["confirm"].(bool)
	return ok && b
}

// notifyComplete tells an elicitation/create client that the URL elicitation finished.
func (e *Engine) notifyComplete(ctx context.Context, id string) {
	if server.IsModernRequest(ctx) {
		return
	}
	srv, sess := server.ServerFromContext(ctx), server.ClientSessionFromContext(ctx)
	if srv == nil || sess == nil {
		return
	}
	_ = srv.SendElicitationComplete(ctx, sess, id)
}

// execute sends the call, with the PIN when it needs one, and audits the outcome.
func (e *Engine) execute(ctx context.Context, t *turn, req mcp.CallToolRequest, next server.ToolHandlerFunc, v verdict) (*mcp.CallToolResult, error) {
	ctx, rec, refused := e.admit(ctx, t, v, false)
	if refused != nil {
		return refused, nil
	}
	res, err := next(ctx, req)
	if pin := PINFrom(ctx); pin != "" {
		res, err = scrubResult(res, pin), scrubErr(err, pin)
	}
	dec, reason := v.decision, ""
	switch {
	case err != nil:
		dec, reason = DecisionFailed, "handler error"
	case res == nil:
		dec, reason = DecisionFailed, "no result"
	case res.IsError:
		dec, reason = DecisionFailed, "the tool returned an error"
	}
	e.finish(t, rec, v, dec, reason, "")
	return res, err
}

func (e *Engine) dryRun(t *turn) *mcp.CallToolResult {
	secrets := e.secretFields(t.call)
	shown := map[string]any{}
	text := "DRY RUN: nothing was sent to invapi."
	if r := t.call.Request; r != nil {
		method := r.Method
		if method == "" {
			method = "POST"
		}
		endpoint := r.Endpoint
		if endpoint == "" {
			endpoint = r.Module + ".php"
		}
		params := invapi.RedactParams(r.Params, secrets...)
		if params == nil {
			params = map[string]any{}
		}
		shown = map[string]any{
			"module": r.Module, "action": r.Action, "endpoint": endpoint, "method": method,
			"params": params, "no_auth": r.NoAuth,
		}
		if t.call.NeedsPIN {
			shown["pin"] = "added by hostkey-mcp after a human confirms; never shown"
		}
		pj, _ := json.Marshal(params)
		text += fmt.Sprintf(" hostkey-mcp would send %s %s with action=%s and params %s", method, endpoint, r.Action, pj)
		if t.call.NeedsPIN {
			text += " plus the account PIN"
		}
		text += "."
	}
	if t.wouldConfirm {
		text += " In a real run a human would first have to confirm it."
	}
	e.record(t, DecisionDryRun, "", viaNone, "", 0)
	return mcp.NewToolResultStructured(map[string]any{
		"dry_run": true, "would_confirm": t.wouldConfirm, "request": shown,
	}, text)
}

// refuse answers without sending anything and audits the decision.
func (e *Engine) refuse(t *turn, decision Decision, text string, structured map[string]any) *mcp.CallToolResult {
	return e.refuseHow(t, decision, text, viaNone, structured)
}

func (e *Engine) refuseHow(t *turn, decision Decision, text string, how channel, structured map[string]any) *mcp.CallToolResult {
	e.record(t, decision, text, how, "", 0)
	if structured == nil {
		structured = map[string]any{}
	}
	structured["refused"] = true
	structured["decision"] = decision
	res := mcp.NewToolResultStructured(structured, text)
	res.IsError = true
	return res
}

// record writes one audit entry and one log line.
func (e *Engine) record(t *turn, decision Decision, reason string, how channel, upstream string, sent int) {
	c := t.call
	entry := audit.Entry{
		Time: e.now(), Session: t.session, Client: t.client,
		Tool: c.Tool, Module: c.Module, Action: c.Action, Class: string(t.class),
		ServerIDs: c.ServerIDs, Args: e.redactedArgs(c),
		Decision: string(decision), Reason: reason, Confirm: string(how), Upstream: upstream, Requests: sent,
		Duration: float64(e.now().Sub(t.start).Microseconds()) / 1000,
	}
	hash := ""
	if later, ok := e.o.Audit.(LaterAuditor); ok && decision == DecisionAllowed && t.class == schemas.Read {
		// A read let through does not wait for a durable commit of its line (the fast
		// path); every other decision is on disk before the call goes on.
		later.AppendLater(entry)
	} else if e.o.Audit != nil {
		h, err := e.o.Audit.Append(entry)
		if err != nil {
			e.log.Error("audit log write failed", zap.Error(err), zap.String("tool", c.Tool), zap.String("decision", string(decision)))
		}
		hash = h
	}
	level := zapcore.InfoLevel
	switch decision {
	case DecisionDenied, DecisionDeniedScope, DecisionRateLimited, DecisionDeclined, DecisionFailed, DecisionInvalid:
		level = zapcore.WarnLevel
	}
	if how == viaOff {
		level = zapcore.WarnLevel
	}
	e.log.Log(level, "policy decision",
		zap.String("decision", string(decision)),
		zap.String("tool", c.Tool),
		zap.String("class", string(t.class)),
		zap.Int64s("servers", c.ServerIDs),
		zap.Any("args", entry.Args),
		zap.String("session", t.session),
		zap.String("client", t.client),
		zap.String("confirm", string(how)),
		zap.String("upstream", upstream),
		zap.Int("requests", sent),
		zap.String("reason", reason),
		zap.Float64("duration_ms", entry.Duration),
		zap.String("audit_hash", hash),
	)
}

// scrubResult removes the PIN from a result, should invapi ever echo it: in text as a
// standalone token, and anywhere in structured content.
func scrubResult(res *mcp.CallToolResult, pin string) *mcp.CallToolResult {
	if res == nil || pin == "" {
		return res
	}
	re := pinPattern(pin)
	for i, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok && re.MatchString(tc.Text) {
			tc.Text = re.ReplaceAllString(tc.Text, "${1}"+invapi.Redacted+"${2}")
			res.Content[i] = tc
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil && re.Match(b) {
			var v any
			if json.Unmarshal(re.ReplaceAll(b, []byte("${1}"+invapi.Redacted+"${2}")), &v) == nil {
				res.StructuredContent = v
			} else {
				res.StructuredContent = map[string]any{"redacted": true}
			}
		}
	}
	return res
}

func scrubErr(err error, pin string) error {
	if err == nil || pin == "" || !pinPattern(pin).MatchString(err.Error()) {
		return err
	}
	return errors.New(pinPattern(pin).ReplaceAllString(err.Error(), "${1}"+invapi.Redacted+"${2}"))
}

func pinPattern(pin string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(pin) + `([^0-9A-Za-z]|$)`)
}
