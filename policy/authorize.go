package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// authorization is what Authorize hands to Done through the context.
type authorization struct {
	t        *turn
	rec      *record
	decision string
	how      string
}

type authKey struct{}

// Authorize governs a whole workflow with one decision, for tools registered with
// AddTaskTool (mcp-go runs them without the tool-handler middleware). It runs the same
// scope → rate → confirmation steps as Middleware. When it returns a non-nil result, the
// workflow must return that result and do nothing else (refusal, dry run, or
// "confirmation required"). Otherwise the returned context authorizes the workflow's
// invapi requests (through Guard), limited to call.ServerIDs when set, and carries the
// PIN when call.NeedsPIN; the workflow must call Done with it when it ends.
//
// Workflows cannot use multi-round-trip retries, so the confirmation is a synchronous
// elicitation/create for clients that take one, and the two-step approval otherwise.
func (e *Engine) Authorize(ctx context.Context, call *Call, summary string) (context.Context, *mcp.CallToolResult, error) {
	if call == nil {
		return ctx, nil, errors.New("policy: Authorize without a call")
	}
	t := e.newTurn(ctx, call)
	if msg := e.checkScope(ctx, call, t.class); msg != "" {
		return ctx, e.refuse(t, DecisionDeniedScope, msg, nil), nil
	}
	if e.o.DryRun && t.class != schemas.Read {
		return ctx, e.dryRun(t), nil
	}
	if res := e.checkCooldown(t); res != nil {
		return ctx, res, nil
	}
	if t.needsHuman() {
		if v, pin, ok := e.store.twoStep(e.now(), t.key); ok {
			switch v.State {
			case stateApproved:
				return e.authorized(ctx, t, pin, DecisionConfirmed, "approval-"+v.Via)
			case stateDeclined:
				return ctx, e.refuse(t, DecisionDeclined, fmt.Sprintf("A human declined approval %s. Nothing was sent.", v.ID), map[string]any{"declined": true}), nil
			default:
				return ctx, e.waitingResult(t, v), nil
			}
		}
	}
	if ref := e.limits.take(e.now(), t.session, t.class == schemas.Destructive, call.ServerIDs); ref != nil {
		return ctx, e.refuse(t, DecisionRateLimited, ref.text(), map[string]any{
			"rate_limited": true, "limit": ref.Scope, "retry_after_seconds": ref.retrySeconds(),
		}), nil
	}
	if !t.needsHuman() {
		return e.authorized(ctx, t, "", DecisionAllowed, e.unconfirmedHow(t))
	}
	srv := server.ServerFromContext(ctx)
	sess := server.ClientSessionFromContext(ctx)
	legacy := !server.IsModernRequest(ctx) && srv != nil && sess != nil
	if e.o.Confirm != ConfirmElicit || !legacy || (!t.form && !t.url) {
		return ctx, e.askTwoStep(ctx, t, false), nil
	}
	sum := e.summarize(ctx, call, t.class, summary)
	confirmed := false
	if t.needConfirm && t.form {
		e.record(t, DecisionPending, "asked the human to confirm (form)", "elicit-form", "", 0)
		r, err := srv.RequestElicitation(ctx, mcp.ElicitationRequest{
			Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
			Params:  mcp.ElicitationParams{Message: sum.Text(), RequestedSchema: confirmSchema},
		})
		if err != nil {
			return ctx, e.refuse(t, DecisionDenied, "The confirmation could not be shown ("+err.Error()+"). Nothing was sent.", nil), nil
		}
		if res := e.declined(t, r, "elicit-form"); res != nil {
			return ctx, res, nil
		}
		if !ticked(r.Content) {
			return ctx, e.refuse(t, DecisionDeclined, "The confirmation was submitted without ticking \"Yes, do it\". Nothing was sent.", map[string]any{"declined": true}), nil
		}
		confirmed = true
		if !t.needPINEntry {
			return e.authorized(ctx, t, "", DecisionConfirmed, "elicit-form")
		}
	}
	if !t.url || e.o.PINPageBaseURL == "" {
		return ctx, e.askTwoStep(ctx, t, confirmed), nil
	}
	a := &approval{
		Kind: kindPage, Key: t.key, Tool: call.Tool, Text: sum.Text(),
		NeedsPIN: t.needPINEntry, Confirmed: confirmed,
		Created: e.now(), Expires: e.now().Add(e.o.ApprovalTTL),
	}
	if err := e.store.addApproval(e.now(), a); err != nil {
		return ctx, e.refuse(t, DecisionDenied, "Too many confirmations are waiting; nothing was sent. Try again later.", nil), nil
	}
	e.record(t, DecisionPending, "sent the human to the local page (URL mode)", "elicit-url", "", 0)
	msg := fmt.Sprintf("Review and approve this action on the local hostkey-mcp page (it works once and expires in %s). %s", e.o.ApprovalTTL, sum.Text())
	r, err := srv.RequestURLElicitation(ctx, sess, a.ID, e.pageURL(a.ID), msg)
	if err != nil {
		e.store.cancel(a.ID)
		return ctx, e.refuse(t, DecisionDenied, "The approval page could not be offered ("+err.Error()+"). Nothing was sent.", nil), nil
	}
	if res := e.declined(t, r, "elicit-url"); res != nil {
		e.store.cancel(a.ID)
		return ctx, res, nil
	}
	v, pin, err := e.store.wait(ctx, e.now, a.ID)
	switch {
	case err != nil:
		return ctx, e.refuse(t, DecisionDenied, "The local page was not submitted in time. Nothing was sent.", nil), nil
	case v.State == stateDeclined:
		return ctx, e.refuse(t, DecisionDeclined, "The action was declined on the local page. Nothing was sent.", map[string]any{"declined": true}), nil
	}
	e.notifyComplete(ctx, v.ID)
	return e.authorized(ctx, t, pin, DecisionConfirmed, "elicit-url-"+v.Via)
}

func (e *Engine) authorized(ctx context.Context, t *turn, pin, decision, how string) (context.Context, *mcp.CallToolResult, error) {
	if t.call.NeedsPIN {
		if pin == "" && e.o.PIN != nil {
			p, err := e.o.PIN.PIN(ctx)
			if err != nil {
				return ctx, e.refuse(t, DecisionDenied, "The configured PIN could not be read. Nothing was sent.", nil), nil
			}
			pin = p
		}
		if pin == "" {
			return ctx, e.refuse(t, DecisionDenied, "This workflow needs the account PIN and none is available. Nothing was sent.", nil), nil
		}
	} else {
		pin = ""
	}
	rec := &record{call: t.call, workflow: true}
	ctx = withRecord(ctx, rec)
	if pin != "" {
		ctx = WithPIN(ctx, pin)
	}
	ctx = context.WithValue(ctx, authKey{}, &authorization{t: t, rec: rec, decision: decision, how: how})
	return ctx, nil, nil
}

// Done closes an authorization from Authorize: later requests with its context are
// refused, the outcome is audited, and a wrong-PIN error starts the cool-down.
func (e *Engine) Done(ctx context.Context, call *Call, err error, start time.Time) {
	a, _ := ctx.Value(authKey{}).(*authorization)
	if a == nil {
		e.log.Error("policy.Done without a context from Authorize")
		return
	}
	sent, upstream := a.rec.close()
	if !start.IsZero() {
		a.t.start = start
	}
	dec, reason := a.decision, ""
	if err != nil {
		dec, reason = DecisionFailed, err.Error()
		if pin := PINFrom(ctx); pin != "" {
			reason = invapi.RedactString(reason, pin)
			if pinPattern(pin).MatchString(reason) {
				reason = pinPattern(pin).ReplaceAllString(reason, "${1}"+invapi.Redacted+"${2}")
			}
		}
		if upstream == "" {
			upstream = upstreamText(err)
		}
		if call != nil && call.NeedsPIN && invapi.KindOf(err) == invapi.KindPIN && !e.guarded.Load() {
			e.startCooldown(call.Module, call.Action)
		}
	}
	e.record(a.t, dec, reason, a.how, upstream, sent)
}
