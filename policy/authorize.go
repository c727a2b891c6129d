package policy

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// authorization is what Authorize hands to Done through the context.
type authorization struct {
	t   *turn
	rec *record
	v   verdict
}

type authKey struct{}

// Authorize governs a whole workflow with one decision, for tools registered with
// AddTaskTool (mcp-go runs them without the tool-handler middleware), and any other
// caller outside the tool middleware (resource reads, completions). It is an adapter
// over the same pipeline as Middleware (decide). When it returns a non-nil result, the
// caller must return that result and do nothing else (refusal, dry run, or
// "confirmation required"). Otherwise the returned context authorizes the caller's
// invapi requests (through Guard), limited to call.ServerIDs when set, and carries the
// PIN when call.NeedsPIN; the caller must call Done with it when it ends.
//
// Workflows cannot use multi-round-trip retries, so the confirmation is a synchronous
// elicitation/create for clients that take one, and the two-step approval otherwise.
func (e *Engine) Authorize(ctx context.Context, call *Call, summary string) (context.Context, *mcp.CallToolResult, error) {
	if call == nil {
		return ctx, nil, errors.New("policy: Authorize without a call")
	}
	t := e.newTurn(ctx, call)
	t.extra = summary
	v := e.decide(ctx, t, e.askSync)
	if v.res != nil {
		return ctx, v.res, nil
	}
	actx, rec, res := e.admit(ctx, t, v, true)
	if res != nil {
		return ctx, res, nil
	}
	return context.WithValue(actx, authKey{}, &authorization{t: t, rec: rec, v: v}), nil, nil
}

// askSync asks the human and waits for the answer: a form through elicitation/create,
// then (when the PIN must be typed) the page through URL-mode elicitation; clients that
// cannot take either get the two-step approval.
func (e *Engine) askSync(ctx context.Context, t *turn, rsv *reservation) verdict {
	srv := server.ServerFromContext(ctx)
	sess := server.ClientSessionFromContext(ctx)
	legacy := !server.IsModernRequest(ctx) && srv != nil && sess != nil
	if e.o.Confirm != ConfirmElicit || !legacy || (!t.form && !t.url) {
		return stop(e.askTwoStep(ctx, t, false, rsv))
	}
	confirmed := false
	if t.needConfirm && t.form {
		// The question counts against the session's waiting confirmations while it is open.
		id, err := e.store.putHandle(e.now(), &handle{
			session: t.session, tool: t.call.Tool, argsHash: t.argsHash, stage: stageSync,
			expires: e.now().Add(e.o.ConfirmTTL),
		}, e.o.MaxPending)
		if err != nil {
			rsv.release()
			return stop(e.busy(t, err))
		}
		e.record(t, DecisionPending, "asked the human to confirm (form)", viaForm, "", 0)
		r, err := srv.RequestElicitation(ctx, mcp.ElicitationRequest{
			Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
			Params:  mcp.ElicitationParams{Message: e.formText(ctx, t), RequestedSchema: confirmSchema},
		})
		e.store.takeHandle(e.now(), id)
		if err != nil {
			rsv.release()
			return stop(e.refuse(t, DecisionDenied, "The confirmation could not be shown ("+err.Error()+"). Nothing was sent.", nil))
		}
		if res := e.declined(t, r, viaForm); res != nil {
			rsv.release()
			return stop(res)
		}
		if !ticked(r.Content) {
			rsv.release()
			return stop(e.refuse(t, DecisionDeclined, "The confirmation was submitted without ticking \"Yes, do it\". Nothing was sent.", map[string]any{"declined": true}))
		}
		confirmed = true
		if !t.needPINEntry {
			return verdict{decision: DecisionConfirmed, via: viaForm, rsv: rsv}
		}
	}
	if !t.url || e.o.PINPageBaseURL == "" {
		return stop(e.askTwoStep(ctx, t, confirmed, rsv))
	}
	a, res := e.newApproval(ctx, t, kindPage, confirmed, rsv)
	if res != nil {
		return stop(res)
	}
	e.record(t, DecisionPending, "sent the human to the local page (URL mode)", viaURL, "", 0)
	r, err := srv.RequestURLElicitation(ctx, sess, a.ID, e.pageURL(a.ID), e.pageMessage(t, a))
	if err != nil {
		e.forgetApproval(a.ID)
		return stop(e.refuse(t, DecisionDenied, "The approval page could not be offered ("+err.Error()+"). Nothing was sent.", nil))
	}
	if res := e.declined(t, r, viaURL); res != nil {
		e.forgetApproval(a.ID)
		return stop(res)
	}
	v, pin, held, err := e.waitApproval(ctx, a.ID, t.session)
	switch {
	case err != nil:
		return stop(e.refuse(t, DecisionDenied, "The local page was not submitted in time. Nothing was sent.", nil))
	case v.State == stateDeclined:
		return stop(e.refuse(t, DecisionDeclined, "The action was declined on the local page. Nothing was sent.", map[string]any{"declined": true}))
	}
	e.notifyComplete(ctx, v.ID)
	return verdict{pin: pin, decision: DecisionConfirmed, via: viaURLPage(v.Via), rsv: held}
}

// Done closes an authorization from Authorize: later requests with its context are
// refused, the outcome is audited, and a wrong-PIN error starts the cool-down.
func (e *Engine) Done(ctx context.Context, call *Call, err error, start time.Time) {
	a, _ := ctx.Value(authKey{}).(*authorization)
	if a == nil {
		e.log.Error("policy.Done without a context from Authorize")
		return
	}
	if !start.IsZero() {
		a.t.start = start
	}
	dec, reason, upstream := a.v.decision, "", ""
	if err != nil {
		dec, reason = DecisionFailed, err.Error()
		if pin := PINFrom(ctx); pin != "" {
			reason = invapi.RedactString(reason, pin)
			if pinPattern(pin).MatchString(reason) {
				reason = pinPattern(pin).ReplaceAllString(reason, "${1}"+invapi.Redacted+"${2}")
			}
		}
		upstream = upstreamText(err)
		if call != nil && call.NeedsPIN && invapi.KindOf(err) == invapi.KindPIN && !e.guarded.Load() {
			e.startCooldown(call.Module, call.Action)
		}
	}
	e.finish(a.t, a.rec, a.v, dec, reason, upstream)
}
