package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// verdict is what decide concluded for one call.
type verdict struct {
	res      *mcp.CallToolResult // set: answer with this and send nothing (refusal, dry run, question)
	pin      string              // the PIN a human typed on the page, if any
	decision Decision            // allowed or confirmed, when res is nil
	via      channel             // how the human confirmed
	rsv      *reservation        // the call's rate tokens: charged when sent, released otherwise
}

func stop(res *mcp.CallToolResult) verdict { return verdict{res: res} }

// asker asks a human about a call that needs one. The call's rate tokens are reserved
// (rsv); the asker hands them on with the answer, or stores them with the question, or
// releases them.
type asker func(ctx context.Context, t *turn, rsv *reservation) verdict

// decide is the one policy pipeline for a fresh call, whoever makes it (the tool
// middleware, or a workflow through Authorize): scope → dry run → PIN cool-down → the
// repeat of an approved call → rate limits (reserved) → allowed, or ask a human.
func (e *Engine) decide(ctx context.Context, t *turn, ask asker) verdict {
	if msg := e.checkScope(ctx, t.call, t.class); msg != "" {
		return stop(e.refuse(t, DecisionDeniedScope, msg, nil))
	}
	if e.o.DryRun && t.class != schemas.Read {
		return stop(e.dryRun(t))
	}
	if t.call.NeedsPIN && e.o.PIN == nil && e.replicated() && t.class != schemas.Read {
		// A PIN typed on one replica's page stays in that process; the repeat, or the
		// answer, may reach another.
		return stop(e.refuse(t, DecisionDenied, "This call needs the account PIN, and hostkey-mcp runs as replicas on a shared PostgreSQL store (--store) without a configured PIN: a PIN typed on one replica's page could not reach the replica that sends the call. Nothing was sent. The operator sets HOSTKEY_PIN (or --pin-file) on every replica.", map[string]any{"pin_not_configured": true}))
	}
	if res := e.checkCooldown(ctx, t); res != nil {
		return stop(res)
	}
	if t.needsHuman() {
		// The repeat of a call approved outside the model (two-step flow). Its rate tokens
		// were reserved when the approval was asked for.
		if id := e.store.keyID(t.key); id != "" {
			e.syncApproval(ctx, id) // approved or declined through another process?
		}
		if v, pin, rsv, ok := e.store.twoStep(e.now(), t.key); ok {
			switch v.State {
			case stateApproved:
				if err := e.useApproval(ctx, v.ID, t.session); err != nil {
					rsv.release()
					return stop(e.refuse(t, DecisionDenied, fmt.Sprintf("Approval %s was already used or could not be checked in the shared store. Nothing was sent. Call the tool again to ask for a new approval.", v.ID), map[string]any{"approval_id": v.ID}))
				}
				return verdict{pin: pin, decision: DecisionConfirmed, via: viaApproval(v.Via), rsv: rsv}
			case stateDeclined:
				rsv.release()
				return stop(e.refuse(t, DecisionDeclined, fmt.Sprintf("A human declined approval %s. Nothing was sent. Do not repeat this call unless the user asks again.", v.ID), map[string]any{"declined": true, "approval_id": v.ID}))
			default:
				return stop(e.waitingResult(t, v))
			}
		}
		if v, ok := e.twoStepElsewhere(ctx, t); ok {
			return v
		}
	}
	rsv, ref, err := e.limits.reserve(ctx, t.session, t.class == schemas.Destructive, t.call.ServerIDs)
	if err != nil {
		e.log.Error("the rate limits could not be taken from the shared store: the call is refused", zap.Error(err))
		return stop(e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true}))
	}
	if ref != nil {
		return stop(e.refuse(t, DecisionRateLimited, ref.text(), map[string]any{
			"rate_limited": true, "limit": ref.Scope, "retry_after_seconds": ref.retrySeconds(),
		}))
	}
	if !t.needsHuman() {
		return verdict{decision: DecisionAllowed, via: e.unconfirmedHow(t), rsv: rsv}
	}
	return ask(ctx, t, rsv)
}

// busy refuses a call because its session has too many confirmations waiting.
func (e *Engine) busy(t *turn, err error) *mcp.CallToolResult {
	if err == errStore {
		return e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})
	}
	if err == errBusy {
		return e.refuse(t, DecisionDenied, fmt.Sprintf("%d confirmations are already waiting for the user in this session; nothing was sent. Wait until the user has answered them (or they expire) before asking for another.", e.o.MaxPending), map[string]any{"pending_limit": e.o.MaxPending})
	}
	return e.refuse(t, DecisionDenied, "Too many confirmations are waiting for an answer; nothing was sent. Try again later.", nil)
}

// admit turns a verdict that lets the call through into the context it runs with: the
// PIN (typed on the page, or from the configured provider) and the record Guard checks
// each request against. A non-nil result refuses the call (its tokens go back).
func (e *Engine) admit(ctx context.Context, t *turn, v verdict, workflow bool) (context.Context, *record, *mcp.CallToolResult) {
	pin := ""
	if t.call.NeedsPIN {
		pin = v.pin
		if pin == "" && e.o.PIN != nil {
			p, err := e.o.PIN.PIN(ctx)
			if err != nil {
				v.rsv.release()
				return ctx, nil, e.refuse(t, DecisionDenied, "The configured PIN could not be read. Nothing was sent.", nil)
			}
			pin = p
		}
		if pin == "" {
			v.rsv.release()
			return ctx, nil, e.refuse(t, DecisionDenied, "This call needs the account PIN, no PIN is configured on the server and none was typed on an approval page. Nothing was sent.", nil)
		}
		if res := e.checkCooldown(ctx, t); res != nil {
			v.rsv.release()
			return ctx, nil, res
		}
	}
	if v.via == viaOff {
		e.log.Warn("confirmation is off: sending without a human's confirmation",
			zap.String("tool", t.call.Tool), zap.Int64s("servers", t.call.ServerIDs))
	}
	rec := &record{call: t.call, workflow: workflow}
	ctx = withRecord(ctx, rec)
	if pin != "" {
		ctx = WithPIN(ctx, pin)
	}
	return ctx, rec, nil
}

// finish closes a call that was let through: the rate tokens are charged when a request
// reached invapi and released when none did, and the outcome is audited. fallback is
// the upstream outcome to record when Guard saw none.
func (e *Engine) finish(t *turn, rec *record, v verdict, dec Decision, reason, fallback string) {
	sent, upstream := rec.close()
	if upstream == "" {
		upstream = fallback
	}
	if sent > 0 || !e.guarded.Load() {
		// Without Guard nobody counts requests: charge, to be safe.
		v.rsv.charge()
	} else {
		v.rsv.release()
	}
	if sent == 0 && dec != DecisionFailed && !e.guarded.Load() {
		e.warnOnce.Do(func() {
			e.log.Error("policy.Guard does not wrap the invapi client: the PIN cool-down and the request checks are off")
		})
	}
	e.record(t, dec, reason, v.via, upstream, sent)
}

func (e *Engine) unconfirmedHow(t *turn) channel {
	if t.wouldConfirm && e.o.Confirm == ConfirmOff {
		return viaOff
	}
	return viaNone
}

func (e *Engine) checkCooldown(ctx context.Context, t *turn) *mcp.CallToolResult {
	if !t.call.NeedsPIN {
		return nil
	}
	left, err := e.pinCooldownLeft(ctx)
	if err != nil {
		return e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})
	}
	if left > 0 {
		return e.refuse(t, DecisionDenied, cooldownText(left), map[string]any{
			"pin_cooldown": true, "retry_after_seconds": int(left.Round(time.Second).Seconds()),
		})
	}
	return nil
}
