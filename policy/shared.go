package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
)

// Approvals in the shared store. The process that asked keeps its approval in memory
// (its rate tokens, a PIN typed on its own page, the channel its call waits on) and
// mirrors it into the store, where every process on the data dir can show and decide
// it (page, bot API) and where it is used once: the decision is recorded in the store
// first (exactly one wins), and the asking process takes it over from there.

// errElsewhere: a PIN typed for an approval another process holds cannot travel there.
var errElsewhere = errors.New("the approval belongs to another hostkey-mcp process")

// approvalData is what the store keeps of an approval beside its state (no PIN).
type approvalData struct {
	Kind      string `json:"kind"`
	Tool      string `json:"tool"`
	Text      string `json:"text"`
	Full      string `json:"full,omitempty"`
	NeedsPIN  bool   `json:"needs_pin,omitempty"`
	Confirmed bool   `json:"confirmed,omitempty"`
	CSRF      string `json:"csrf"`
}

// shareApproval records a new local approval in the store. On error the caller drops it.
func (e *Engine) shareApproval(ctx context.Context, a *approval) error {
	if e.st == nil {
		return nil
	}
	v := a.view()
	data, err := json.Marshal(approvalData{Kind: v.Kind, Tool: v.Tool, Text: v.Text, Full: v.Full, NeedsPIN: v.NeedsPIN, Confirmed: v.Confirmed, CSRF: v.csrf})
	if err != nil {
		return err
	}
	// The store's clock is the wall clock; the engine's may be a test's.
	ttl := a.Expires.Sub(a.Created)
	return e.st.CreateApproval(ctx, state.Approval{ID: a.ID, Key: storeKey(a.Key), Session: a.Session, State: state.ApprovalPending,
		Data: data, Created: time.Now(), Expires: time.Now().Add(ttl)})
}

// storeKey is an approval's key in the store. The key joins session, tool and arguments
// hash with NUL bytes, which PostgreSQL text cannot hold: the store keeps its SHA-256.
func storeKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// storeView turns a stored approval into the view pages and the API show.
func storeView(sa state.Approval) (view, bool) {
	var d approvalData
	if err := json.Unmarshal(sa.Data, &d); err != nil {
		return view{}, false
	}
	st := statePending
	switch sa.State {
	case state.ApprovalApproved, state.ApprovalUsed:
		st = stateApproved
	case state.ApprovalDeclined:
		st = stateDeclined
	}
	return view{ID: sa.ID, Kind: d.Kind, Tool: d.Tool, Text: d.Text, Full: d.Full, NeedsPIN: d.NeedsPIN, Confirmed: d.Confirmed,
		Expires: sa.Expires, State: st, Via: sa.Via, csrf: d.CSRF}, true
}

// getApproval finds an approval here, or in the store when another process holds it.
func (e *Engine) getApproval(ctx context.Context, id string) (view, bool) {
	if v, ok := e.store.get(e.now(), id); ok {
		if e.st != nil && v.State == statePending {
			e.syncApproval(ctx, id) // decided elsewhere?
			if nv, ok := e.store.get(e.now(), id); ok {
				return nv, true
			}
		}
		return v, true
	}
	if e.st == nil || id == "" {
		return view{}, false
	}
	sa, err := e.st.Approval(ctx, id)
	if err != nil {
		return view{}, false
	}
	return storeView(sa)
}

// decideApproval records a human's or a bot's answer, in the store first: of several
// processes answering at once exactly one is recorded.
func (e *Engine) decideApproval(ctx context.Context, id string, approve bool, pin, via string) (view, error) {
	if e.st == nil {
		return e.store.decide(e.now(), id, approve, pin, via)
	}
	v, local := e.store.get(e.now(), id)
	if !local {
		sa, err := e.st.Approval(ctx, id)
		if err != nil {
			return view{}, errUnknown
		}
		if sv, ok := storeView(sa); ok && sv.State != statePending {
			return sv, errDecided
		}
		if pin != "" {
			return view{}, errElsewhere
		}
		sa, err = e.st.DecideApproval(ctx, id, approve, via)
		sv, _ := storeView(sa)
		switch {
		case errors.Is(err, state.ErrDecided):
			return sv, errDecided
		case err != nil:
			return view{}, errUnknown
		}
		return sv, nil
	}
	if v.State != statePending {
		return v, errDecided
	}
	if _, err := e.st.DecideApproval(ctx, id, approve, via); err != nil {
		if errors.Is(err, state.ErrDecided) {
			e.syncApproval(ctx, id)
			nv, _ := e.store.get(e.now(), id)
			return nv, errDecided
		}
		e.log.Error("an approval could not be recorded in the shared store", zap.String("approval", id), zap.Error(err))
		return v, errUnknown
	}
	return e.store.decide(e.now(), id, approve, pin, via)
}

// syncApproval takes over a decision another process recorded for a local approval.
func (e *Engine) syncApproval(ctx context.Context, id string) {
	if e.st == nil {
		return
	}
	sa, err := e.st.Approval(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		// Used, cancelled or declined and forgotten through another process: the copy
		// here goes (its tokens back), and the next call asks anew.
		e.store.cancel(id)
		return
	}
	if err != nil {
		return
	}
	switch sa.State {
	case state.ApprovalApproved, state.ApprovalDeclined:
		_, _ = e.store.decide(e.now(), id, sa.State == state.ApprovalApproved, "", sa.Via)
	case state.ApprovalUsed:
		e.store.cancel(id) // the repeat ran in another process
	}
}

// twoStepElsewhere is the repeat of a call whose two-step approval another process
// asked for (a replica behind a round-robin balancer, or a 2025 client whose affinity
// was lost): found in the store by session, tool and arguments, used once there. The
// call's rate tokens are taken here; the asking process gives its own back when its
// copy expires. ok=false: no such approval, ask as usual.
func (e *Engine) twoStepElsewhere(ctx context.Context, t *turn) (v verdict, ok bool) {
	if e.st == nil {
		return verdict{}, false
	}
	sa, err := e.st.ApprovalByKey(ctx, storeKey(t.key))
	if errors.Is(err, state.ErrNotFound) {
		return verdict{}, false
	}
	if err != nil {
		e.log.Error("approvals could not be read from the shared store: the call is refused", zap.Error(err))
		return stop(e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})), true
	}
	sv, good := storeView(sa)
	if !good || sv.Kind != kindTwoStep {
		return verdict{}, false
	}
	switch sa.State {
	case state.ApprovalDeclined:
		_ = e.st.DeleteApproval(ctx, sa.ID) // a decline is used once, like an approval
		return stop(e.refuse(t, DecisionDeclined, fmt.Sprintf("A human declined approval %s. Nothing was sent. Do not repeat this call unless the user asks again.", sa.ID), map[string]any{"declined": true, "approval_id": sa.ID})), true
	case state.ApprovalApproved:
	default:
		return stop(e.waitingResult(t, sv)), true
	}
	if sv.NeedsPIN {
		// The PIN was typed on the asking process's page and stays in its memory.
		return stop(e.refuse(t, DecisionDenied, fmt.Sprintf("Approval %s was given with the account PIN on the page of another hostkey-mcp process, and the PIN never leaves that process. Nothing was sent. Configure HOSTKEY_PIN on every replica, or repeat the call where it was asked.", sa.ID), map[string]any{"approval_id": sa.ID})), true
	}
	rsv, ref, err := e.limits.reserve(ctx, t.session, t.class == schemas.Destructive, t.call.ServerIDs)
	if err != nil {
		e.log.Error("the rate limits could not be taken from the shared store: the call is refused", zap.Error(err))
		return stop(e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})), true
	}
	if ref != nil {
		// The approval stays usable until it expires: the repeat may come back later.
		return stop(e.refuse(t, DecisionRateLimited, ref.text(), map[string]any{
			"rate_limited": true, "limit": ref.Scope, "retry_after_seconds": ref.retrySeconds(), "approval_id": sa.ID,
		})), true
	}
	if _, err := e.st.UseApproval(ctx, sa.ID, t.session); err != nil {
		rsv.release()
		return stop(e.refuse(t, DecisionDenied, fmt.Sprintf("Approval %s was already used or could not be checked in the shared store. Nothing was sent. Call the tool again to ask for a new approval.", sa.ID), map[string]any{"approval_id": sa.ID})), true
	}
	return verdict{decision: DecisionConfirmed, via: viaApproval(sa.Via), rsv: rsv}, true
}

// waitElsewhere waits for the decision on an approval another process holds (the page
// stage of a requestState answered here), then uses it once and takes the call's rate
// tokens here. A non-nil result ends the call without sending.
func (e *Engine) waitElsewhere(ctx context.Context, t *turn, id string) (view, *reservation, *mcp.CallToolResult) {
	for {
		wake := e.st.Wake(state.TopicApprovals) // before reading: no change is missed
		sa, err := e.st.Approval(ctx, id)
		if errors.Is(err, state.ErrNotFound) {
			return view{}, nil, e.refuse(t, DecisionDenied, "The approval for this call is unknown or expired. Nothing was sent. Call the tool again to start over.", nil)
		}
		if err != nil {
			return view{}, nil, e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})
		}
		sv, _ := storeView(sa)
		switch sa.State {
		case state.ApprovalDeclined:
			_ = e.st.DeleteApproval(ctx, id)
			return sv, nil, e.refuse(t, DecisionDeclined, "The action was declined. Nothing was sent.", map[string]any{"declined": true})
		case state.ApprovalApproved:
			if t.needPINEntry {
				return sv, nil, e.refuse(t, DecisionDenied, "The account PIN was typed on the page of another hostkey-mcp process and never leaves it. Nothing was sent. Configure HOSTKEY_PIN on every replica.", nil)
			}
			rsv, ref, err := e.limits.reserve(ctx, t.session, t.class == schemas.Destructive, t.call.ServerIDs)
			switch {
			case err != nil:
				return sv, nil, e.refuse(t, DecisionDenied, storeUnavailableText, map[string]any{"store_unavailable": true})
			case ref != nil:
				return sv, nil, e.refuse(t, DecisionRateLimited, ref.text(), map[string]any{"rate_limited": true, "limit": ref.Scope, "retry_after_seconds": ref.retrySeconds()})
			}
			if _, err := e.st.UseApproval(ctx, id, t.session); err != nil {
				rsv.release()
				return sv, nil, e.refuse(t, DecisionDenied, "The approval for this call was already used. Nothing was sent. Call the tool again to start over.", nil)
			}
			return sv, rsv, nil
		case state.ApprovalUsed:
			return sv, nil, e.refuse(t, DecisionDenied, "The approval for this call was already used. Nothing was sent. Call the tool again to start over.", nil)
		}
		left := time.Until(sa.Expires)
		if left <= 0 {
			return sv, nil, e.refuse(t, DecisionDenied, "The approval page was not submitted in time. Nothing was sent. Call the tool again to start over.", nil)
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return sv, nil, e.refuse(t, DecisionDenied, "The call ended before the approval was given. Nothing was sent.", nil)
		}
		timer.Stop()
	}
}

// useApproval consumes an approved approval in the store, once across every process.
func (e *Engine) useApproval(ctx context.Context, id, session string) error {
	if e.st == nil {
		return nil
	}
	_, err := e.st.UseApproval(ctx, id, session)
	return err
}

// forgetApproval drops an approval here and in the store (cancelled).
func (e *Engine) forgetApproval(id string) {
	e.store.cancel(id)
	if e.st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = e.st.DeleteApproval(ctx, id)
	}
}

// waitApproval waits for the page's (or a bot's) answer, given in this process or in
// any other on the store, then uses an approval once.
func (e *Engine) waitApproval(ctx context.Context, id, session string) (view, string, *reservation, error) {
	if e.st != nil {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			for {
				wake := e.st.Wake(state.TopicApprovals) // before reading: no change is missed
				e.syncApproval(wctx, id)
				if v, ok := e.store.get(e.now(), id); !ok || v.State != statePending {
					return
				}
				select {
				case <-wake:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	v, pin, rsv, err := e.store.wait(ctx, e.now, id)
	if err == nil && v.State == stateApproved {
		if uerr := e.useApproval(ctx, id, session); uerr != nil {
			rsv.release()
			return view{}, "", nil, errUnknown
		}
	}
	if e.st != nil && (err != nil || v.State != stateApproved) {
		e.forgetApproval(id)
	}
	return v, pin, rsv, err
}

// Handles in the shared store. A requestState handle is kept here (with the call's rate
// tokens, counted for this session's waiting confirmations) and in the store, so that a
// 2026-07-28 client balanced round-robin may bring the answer to any process. Taking it
// is one DELETE … RETURNING in the store: one process gets it, once. The process that
// takes it takes the call's rate tokens over with it (they are in the store already).

// handleGrace keeps a handle in the store a little longer than here, so that the asking
// process can still tell "expired unanswered" (the row is there) from "answered
// elsewhere" (it is gone) when its own copy expires.
const handleGrace = time.Minute

// handleData is what the store keeps of a handle: no PIN, no arguments.
type handleData struct {
	Session  string               `json:"session"`
	Tool     string               `json:"tool"`
	ArgsHash string               `json:"args_hash"`
	Stage    string               `json:"stage"`
	Approval string               `json:"approval,omitempty"`
	Expires  time.Time            `json:"expires"`
	Tokens   []state.TokenRequest `json:"tokens,omitempty"` // the call's rate tokens, taken from the store
}

// sharesHandles: the store is one other processes may use (not --ephemeral memory).
func (e *Engine) sharesHandles() bool {
	return e.st != nil && e.st.Engine() != "sqlite-memory"
}

// replicated: the store is PostgreSQL, shared by replicas on other machines.
func (e *Engine) replicated() bool { return e.st != nil && e.st.Engine() == "postgres" }

// Replicated reports replica mode: the shared store is PostgreSQL, so the processes that
// share it may run on other machines (a PIN is then needed on every replica).
func (e *Engine) Replicated() bool { return e.replicated() }

// putHandle stores h here and, when handles are shared, in the store. On error nothing
// is kept and the caller still holds h's tokens.
func (e *Engine) putHandle(ctx context.Context, h *handle, max int) (string, error) {
	h.shared = e.sharesHandles()
	if max > 0 && h.approvalID == "" {
		e.refreshPending(ctx, h.session)
	}
	id, err := e.store.putHandle(e.now(), h, max)
	if err != nil || !h.shared {
		return id, err
	}
	var tokens []state.TokenRequest
	if h.rsv != nil {
		tokens = append(append(tokens, h.rsv.shared...), h.rsv.leased...)
	}
	data, err := json.Marshal(handleData{Session: h.session, Tool: h.tool, ArgsHash: h.argsHash, Stage: h.stage,
		Approval: h.approvalID, Expires: h.expires, Tokens: tokens})
	if err == nil {
		err = e.st.PutHandle(ctx, id, data, time.Now().Add(h.expires.Sub(e.now())+handleGrace))
	}
	if err != nil {
		e.store.mu.Lock()
		delete(e.store.handles, id)
		e.store.mu.Unlock()
		e.log.Error("a confirmation could not be recorded in the shared store: the call is refused", zap.Error(err))
		return "", errStore
	}
	return id, nil
}

// errStore: the shared store could not be written or read.
var errStore = errors.New("the shared store is unavailable")

// takeHandle removes and returns the handle behind a requestState, from this process
// or from the store (once across all processes); nil when unknown, expired or taken.
func (e *Engine) takeHandle(ctx context.Context, id string) (*handle, error) {
	h := e.store.takeHandle(e.now(), id)
	if id == "" || !e.sharesHandles() || (h != nil && !h.shared) {
		return h, nil
	}
	if h != nil {
		_, err := e.st.TakeHandle(ctx, id)
		switch {
		case err == nil:
			return h, nil
		case errors.Is(err, state.ErrNotFound):
			h.rsv.charge() // another process took the answer, and the tokens with it
			return nil, nil
		default:
			h.rsv.release()
			return nil, err
		}
	}
	raw, err := e.st.TakeHandle(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d handleData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, nil
	}
	// Tell the asking process its copy was answered here, so it no longer counts as
	// waiting there (best effort: without it the copy counts until it expires).
	_ = e.st.PutHandle(ctx, takenKey(id), nil, time.Now().Add(d.Expires.Sub(e.now())+handleGrace))
	h = &handle{id: id, session: d.Session, tool: d.Tool, argsHash: d.ArgsHash, stage: d.Stage, approvalID: d.Approval,
		expires: d.Expires, shared: true}
	if len(d.Tokens) > 0 {
		h.rsv = &reservation{l: e.limits, shared: d.Tokens}
	}
	if e.now().After(h.expires) {
		h.rsv.release()
		return nil, nil
	}
	return h, nil
}

// takenKey marks, in the store, a handle another process took.
func takenKey(id string) string { return "taken:" + id }

// refreshPending drops this process's copies of the session's confirmations that another
// process answered, so that they no longer count toward --max-pending here: handles
// whose taken mark is in the store, approvals used, decided or gone there.
func (e *Engine) refreshPending(ctx context.Context, session string) {
	if !e.sharesHandles() {
		return
	}
	handles, approvals := e.store.waiting(session)
	for _, id := range handles {
		if _, err := e.st.TakeHandle(ctx, takenKey(id)); err == nil {
			e.store.mu.Lock()
			h := e.store.handles[id]
			delete(e.store.handles, id)
			e.store.mu.Unlock()
			if h != nil {
				h.rsv.charge() // the process that took it took the tokens
			}
		}
	}
	for _, id := range approvals {
		e.syncApproval(ctx, id)
	}
}

// settleExpired settles the tokens of a shared handle that expired here unanswered:
// back to the store when it is still there, kept spent when another process took it.
func (e *Engine) settleExpired(h *handle) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_, err := e.st.TakeHandle(ctx, h.id)
	_, _ = e.st.TakeHandle(ctx, takenKey(h.id)) // the mark, if any, goes too
	switch {
	case err == nil:
		h.rsv.release()
	case errors.Is(err, state.ErrNotFound):
		h.rsv.charge()
	default:
		// Unknown: keep them spent (the limits err on the safe side) until they refill.
		h.rsv.charge()
	}
}
