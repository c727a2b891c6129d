package policy

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// Caller is the part of the invapi client the tool layer uses (tools.Caller has the same
// method set).
type Caller interface {
	Do(ctx context.Context, req *invapi.Request) (*invapi.Response, error)
}

// RefusedError is returned by the guarded Caller for a request the policy did not
// authorize. Nothing was sent.
type RefusedError struct {
	Module, Action string
	Reason         string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("hostkey-mcp policy refused %s/%s before sending it: %s", e.Module, e.Action, e.Reason)
}

// Guard wraps the invapi client the tools use. It is the policy's last line: a request
// that changes state leaves only inside a call the policy authorized (Middleware or
// Authorize), at most once per confirmed tool call, never during dry run, and a request
// carrying the PIN never leaves during the PIN cool-down. It also tells the policy
// what invapi answered, which is how a wrong PIN starts the cool-down.
func (e *Engine) Guard(c Caller) Caller { return &guard{e: e, next: c} }

type guard struct {
	e    *Engine
	next Caller
}

func (g *guard) Do(ctx context.Context, req *invapi.Request) (*invapi.Response, error) {
	e := g.e
	e.guarded.Store(true)
	if req == nil {
		return g.next.Do(ctx, req)
	}
	_, hasPIN := req.Params["pin"]
	if _, ok := req.Params["old_pin"]; ok { // eq/set_pin carries the current PIN as old_pin
		hasPIN = true
	}
	// A request the client would refuse for its names never leaves: refuse it here, so it
	// is neither admitted nor counted as sent.
	if err := invapi.CheckParams(req); err != nil {
		return nil, err
	}
	rec := recordFrom(ctx)
	if rec == nil {
		if !req.ReadOnly || hasPIN {
			e.log.Error("blocked an invapi request made outside a governed call",
				zap.String("module", req.Module), zap.String("action", req.Action))
			return nil, &RefusedError{req.Module, req.Action, "it changes state (or carries the PIN) but no tool call authorized it"}
		}
		return g.next.Do(ctx, req)
	}
	if reason := rec.admit(e, ctx, req, hasPIN); reason != "" {
		e.log.Error("blocked an invapi request the confirmed call does not cover",
			zap.String("tool", rec.call.Tool), zap.String("module", req.Module), zap.String("action", req.Action), zap.String("reason", reason))
		return nil, &RefusedError{req.Module, req.Action, reason}
	}
	resp, err := g.next.Do(ctx, req)
	rec.observe(resp, err)
	if hasPIN && invapi.KindOf(err) == invapi.KindPIN {
		e.startCooldown(req.Module, req.Action)
	}
	return resp, err
}

// record is what the policy authorized for one call, carried in its context.
type record struct {
	call     *Call
	workflow bool // Authorize: several requests, within the call's servers

	mu       sync.Mutex
	closed   bool
	sent     int // requests admitted
	writes   int // of which change state
	upstream string
}

type recordKey struct{}

func withRecord(ctx context.Context, r *record) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

func recordFrom(ctx context.Context) *record {
	r, _ := ctx.Value(recordKey{}).(*record)
	return r
}

func (r *record) admit(e *Engine, ctx context.Context, req *invapi.Request, hasPIN bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "the call it was authorized for has finished"
	}
	if hasPIN {
		left, err := e.pinCooldownLeft(ctx)
		if err != nil {
			return storeUnavailableText
		}
		if left > 0 {
			return cooldownText(left)
		}
	}
	if req.ReadOnly {
		r.sent++
		return ""
	}
	if e.o.DryRun {
		return "dry run: nothing that changes state is sent"
	}
	if !r.workflow {
		if r.writes > 0 {
			return "one confirmed tool call sends one request that changes state"
		}
		if w := r.call.Request; w != nil && (w.Module != req.Module || w.Action != req.Action) {
			return fmt.Sprintf("the confirmed call was %s/%s", w.Module, w.Action)
		}
	} else {
		allowed := map[int64]bool{}
		for _, id := range r.call.ServerIDs {
			allowed[id] = true
		}
		for _, id := range e.requestServerIDs(req) {
			if len(allowed) > 0 && !allowed[id] {
				return fmt.Sprintf("server %d is not one of the servers the human confirmed", id)
			}
			if err := e.ServerAllowed(ctx, id); err != nil {
				return err.Error()
			}
		}
	}
	r.sent++
	r.writes++
	return ""
}

func (r *record) observe(resp *invapi.Response, err error) {
	out := "ok"
	if err != nil {
		out = upstreamText(err)
	} else if resp != nil && resp.HTTPStatus != 0 && resp.HTTPStatus != 200 {
		out = "ok (HTTP " + strconv.Itoa(resp.HTTPStatus) + ")"
	}
	r.mu.Lock()
	r.upstream = out
	r.mu.Unlock()
}

func (r *record) close() (sent int, upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.sent, r.upstream
}

func upstreamText(err error) string {
	if ie, ok := invapi.AsError(err); ok {
		s := string(ie.Kind)
		if ie.Code != "" {
			s += " code " + ie.Code
		}
		if ie.HTTPStatus != 0 && ie.HTTPStatus != 200 {
			s += " HTTP " + strconv.Itoa(ie.HTTPStatus)
		}
		return s
	}
	if _, ok := err.(*RefusedError); ok {
		return "refused by policy"
	}
	if k := invapi.KindOf(err); k != "" {
		return string(k)
	}
	return "error"
}

// requestServerIDs finds the server IDs in an upstream request, from the catalog's
// server-ID parameters (the request's params have the shape of the tool arguments).
func (e *Engine) requestServerIDs(req *invapi.Request) []int64 {
	a, ok := e.cat.Lookup(req.Module, req.Action)
	if !ok {
		return nil
	}
	return a.ServerIDs(req.Params)
}
