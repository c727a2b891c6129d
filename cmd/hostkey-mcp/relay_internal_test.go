package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/state"
)

// TestRelayedAnswerKeepsItsFirstDeadline: an answer no replica is waiting for goes back to
// the store with the deadline it got when first relayed, and is dropped once that passes
// (it used to get a fresh two minutes at every bounce and could circulate for as long as
// the session had requests anywhere).
func TestRelayedAnswerKeepsItsFirstDeadline(t *testing.T) {
	st, err := state.Open(t.Context(), state.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	delivered := 0
	notHere := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		delivered++
		http.Error(w, "No pending request", http.StatusBadRequest)
	})
	r := newAnswerRelay(st, notHere, zap.NewNop())
	put := func(deadline time.Time) {
		data, _ := json.Marshal(relayedAnswer{Body: json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{}}`), Deadline: deadline})
		if err := st.PutHandle(t.Context(), answerKey("s1"), data, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// Still in time: offered here, not waiting here, back to the store unchanged.
	deadline := time.Now().Add(time.Minute).Round(time.Millisecond)
	put(deadline)
	r.deliver(t.Context(), "s1")
	raw, err := st.TakeHandle(t.Context(), answerKey("s1"))
	if err != nil || delivered != 1 {
		t.Fatalf("an answer in time: delivered %d times, back in the store: %v", delivered, err)
	}
	var a relayedAnswer
	if err := json.Unmarshal(raw, &a); err != nil || !a.Deadline.Equal(deadline) {
		t.Fatalf("the answer went back with deadline %v, want its first %v (%v)", a.Deadline, deadline, err)
	}
	// Its time is up: dropped, neither offered nor kept.
	put(time.Now().Add(-time.Second))
	r.deliver(t.Context(), "s1")
	if _, err := st.TakeHandle(t.Context(), answerKey("s1")); err == nil || delivered != 1 {
		t.Fatalf("an expired answer: delivered %d times, still in the store: %v", delivered, err)
	}
}
