package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/state"
)

// answerRelay carries a 2025-era client's answer to a form (elicitation/create: a
// JSON-RPC response it POSTs with its Mcp-Session-Id) from a replica that is not waiting
// for it to the one that is, through the shared store. mcp-go keeps the waiting request
// in the process that sent the form; when the balancer loses the session's affinity the
// answer lands elsewhere, where mcp-go would answer 404 and the call would hang until the
// client gave up. Here that replica stores the answer instead (202), and the replica
// serving one of the session's requests takes it and hands it to its own mcp-go.
type answerRelay struct {
	st   state.Handles
	next http.Handler // mcp-go's streamable HTTP handler
	log  *zap.Logger

	mu       sync.Mutex
	inflight map[string]int // session → its POSTs being served here
}

// relayedAnswer is what the store keeps of an answer: the body and the protocol version
// header mcp-go checks.
type relayedAnswer struct {
	Version string          `json:"version"`
	Body    json.RawMessage `json:"body"`
	// Deadline is fixed when the answer is first relayed: an answer that bounces between
	// replicas (its form already answered or expired) is dropped then, not kept alive.
	Deadline time.Time `json:"deadline"`
}

// relayTTL bounds how long an answer waits in the store for the replica that asked.
const relayTTL = 2 * time.Minute

func answerKey(session string) string {
	h := sha256.Sum256([]byte(session))
	return "answer:" + hex.EncodeToString(h[:])
}

func newAnswerRelay(st state.Handles, next http.Handler, log *zap.Logger) *answerRelay {
	return &answerRelay{st: st, next: next, log: log, inflight: map[string]int{}}
}

func (r *answerRelay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sid := req.Header.Get("Mcp-Session-Id")
	if req.Method != http.MethodPost || sid == "" {
		r.next.ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "could not read the request body", http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !isClientResponse(body) {
		r.mu.Lock()
		r.inflight[sid]++
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			if r.inflight[sid]--; r.inflight[sid] <= 0 {
				delete(r.inflight, sid)
			}
			r.mu.Unlock()
		}()
		r.next.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	r.next.ServeHTTP(rec, req)
	// 404: no stream of the session here; 400 "No pending …": a stream, but the form was
	// sent by another replica.
	if rec.Code == http.StatusNotFound || (rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "No pending")) {
		deadline := time.Now().Add(relayTTL)
		data, _ := json.Marshal(relayedAnswer{Version: req.Header.Get(mcp.HeaderProtocolVersion), Body: body, Deadline: deadline})
		ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
		err := r.st.PutHandle(ctx, answerKey(sid), data, deadline)
		cancel()
		if err == nil {
			r.log.Debug("a form answer for a request waiting on another replica was relayed through the store")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		r.log.Warn("a form answer for another replica could not be relayed", zap.Error(err))
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// isClientResponse: a JSON-RPC response (an answer to a server request), not a request.
func isClientResponse(body []byte) bool {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	return json.Unmarshal(body, &m) == nil && m.Method == "" && len(m.ID) > 0 && (len(m.Result) > 0 || len(m.Error) > 0)
}

// run takes, every interval until ctx ends, the answers relayed for the sessions whose
// requests this replica is serving, and delivers them to its own mcp-go.
func (r *answerRelay) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		sessions := make([]string, 0, len(r.inflight))
		for s := range r.inflight {
			sessions = append(sessions, s)
		}
		r.mu.Unlock()
		for _, sid := range sessions {
			r.deliver(ctx, sid)
		}
	}
}

func (r *answerRelay) deliver(ctx context.Context, sid string) {
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	raw, err := r.st.TakeHandle(tctx, answerKey(sid))
	cancel()
	if err != nil {
		return // none (the usual case), or the store is away: the next round
	}
	var a relayedAnswer
	if json.Unmarshal(raw, &a) != nil || !time.Now().Before(a.Deadline) {
		return // unreadable, or its time is up: dropped
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", bytes.NewReader(a.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Session-Id", sid)
	if a.Version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, a.Version)
	}
	rec := httptest.NewRecorder()
	r.next.ServeHTTP(rec, req)
	if rec.Code == http.StatusNotFound || rec.Code == http.StatusBadRequest {
		// Not waiting here after all (the session has requests on several replicas):
		// back to the store for the one that is.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = r.st.PutHandle(pctx, answerKey(sid), raw, a.Deadline)
		cancel()
	}
}
