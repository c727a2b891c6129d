package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

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
	// The key joins session, tool and arguments hash with NUL bytes, which PostgreSQL text
	// cannot hold: the store keeps its SHA-256.
	key := sha256.Sum256([]byte(a.Key))
	return e.st.CreateApproval(ctx, state.Approval{ID: a.ID, Key: hex.EncodeToString(key[:]), Session: a.Session, State: state.ApprovalPending,
		Data: data, Created: time.Now(), Expires: time.Now().Add(ttl)})
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
	if err != nil {
		return
	}
	switch sa.State {
	case state.ApprovalApproved, state.ApprovalDeclined:
		_, _ = e.store.decide(e.now(), id, sa.State == state.ApprovalApproved, "", sa.Via)
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
