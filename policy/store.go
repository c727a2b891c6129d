package policy

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"
)

// The store keeps every confirmation in progress on the server side. What leaves the
// server is only an unguessable id: the MRTR requestState (a handle) or an approval id.

const (
	stageConfirm = "confirm" // a yes/no form was asked
	stagePage    = "page"    // the human was sent to the local page (URL mode)
	stageSync    = "sync"    // Authorize waits for an elicitation/create answer: only counted

	kindTwoStep = "two-step" // approved outside the model, then the call is repeated
	kindPage    = "page"     // URL-mode elicitation: the call waits for the page

	maxHandles   = 1024
	maxApprovals = 256
	maxDetails   = 1024
)

// handle is the server-side state behind one requestState.
type handle struct {
	id         string
	session    string
	tool       string
	argsHash   string
	stage      string
	approvalID string // stagePage
	expires    time.Time
	rsv        *reservation // rate tokens of the call (stageConfirm); released if it expires
	shared     bool         // also in the shared store, where another process may take it
}

type approvalState int

const (
	statePending approvalState = iota
	stateApproved
	stateDeclined
)

func (s approvalState) String() string {
	switch s {
	case stateApproved:
		return "approved"
	case stateDeclined:
		return "declined"
	}
	return "pending"
}

// approval is one call waiting for a human (or a bot) outside the model.
type approval struct {
	ID        string
	Kind      string
	Key       string // session + tool + arguments hash
	Session   string
	Tool      string
	ServerIDs []int64
	Text      string // the summary shown to the human
	Full      string // the same with every value in full (the page)
	NeedsPIN  bool   // the page must collect the PIN
	Confirmed bool   // the human already confirmed in a form; the page only takes the PIN
	Created   time.Time
	Expires   time.Time

	state approvalState
	via   string // page or bot
	pin   string
	csrf  string
	done  chan struct{}
	rsv   *reservation // rate tokens of the call; released unless handed on
	turn  *turn        // the call, for the audit line of the human's answer
}

var (
	errUnknown  = errors.New("unknown or expired")
	errDecided  = errors.New("already decided")
	errTooMany  = errors.New("too many confirmations waiting")
	errBusy     = errors.New("too many confirmations waiting in this session")
	errNoAnswer = errors.New("not answered in time")
)

type store struct {
	// expired settles the rate tokens of a shared handle that expired here (set by the
	// engine when it shares handles): the store tells whether another process took it.
	expired func(h *handle)

	mu        sync.Mutex
	handles   map[string]*handle
	approvals map[string]*approval
	byKey     map[string]*approval // two-step approvals
	details   map[string]detail    // full texts of form confirmations
}

// detail is the full text behind a form confirmation that describes a long value.
type detail struct {
	text    string
	expires time.Time
}

func newStore() *store {
	return &store{handles: map[string]*handle{}, approvals: map[string]*approval{}, byKey: map[string]*approval{}, details: map[string]detail{}}
}

// putDetails keeps a full text readable for a while; "" when too many are kept.
func (s *store) putDetails(now time.Time, text string, ttl time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	if len(s.details) >= maxDetails {
		return ""
	}
	id := newID()
	s.details[id] = detail{text: text, expires: now.Add(ttl)}
	return id
}

func (s *store) getDetails(now time.Time, id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.details[id]
	if !ok || now.After(d.expires) {
		return "", false
	}
	return d.text, true
}

// newID returns 128 random bits as 26 base32 characters.
func newID() string { return rand.Text() }

func (s *store) prune(now time.Time) {
	for id, d := range s.details {
		if now.After(d.expires) {
			delete(s.details, id)
		}
	}
	for id, h := range s.handles {
		if now.After(h.expires) {
			s.expire(h)
			delete(s.handles, id)
		}
	}
	for id, a := range s.approvals {
		if now.After(a.Expires) {
			s.drop(a)
			delete(s.approvals, id)
		}
	}
}

// drop forgets a (s.mu held): its PIN is wiped, its rate tokens (if not handed on) go
// back and waiters are released.
func (s *store) drop(a *approval) {
	a.rsv.release()
	a.rsv = nil
	delete(s.approvals, a.ID)
	if s.byKey[a.Key] == a {
		delete(s.byKey, a.Key)
	}
	a.pin = ""
	select {
	case <-a.done:
	default:
		close(a.done)
	}
}

// pending counts the confirmations waiting for a human in session (s.mu held): an
// approval, or a handle that is not the page stage of one.
func (s *store) pending(session string) int {
	n := 0
	for _, h := range s.handles {
		if h.session == session && h.approvalID == "" {
			n++
		}
	}
	for _, a := range s.approvals {
		if a.Session == session && a.state == statePending {
			n++
		}
	}
	return n
}

// waiting lists the session's shared handles and pending approvals that count as
// waiting confirmations here (what refreshPending checks against the store).
func (s *store) waiting(session string) (handles, approvals []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, h := range s.handles {
		if h.session == session && h.approvalID == "" && h.shared {
			handles = append(handles, id)
		}
	}
	for id, a := range s.approvals {
		if a.Session == session && a.state == statePending {
			approvals = append(approvals, id)
		}
	}
	return handles, approvals
}

// putHandle stores h; with max > 0 it refuses (errBusy) when max confirmations already
// wait in h's session.
func (s *store) putHandle(now time.Time, h *handle, max int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	if len(s.handles) >= maxHandles {
		return "", errTooMany
	}
	if max > 0 && h.approvalID == "" && s.pending(h.session) >= max {
		return "", errBusy
	}
	h.id = newID() + newID() // 256 bits: it travels through the client
	s.handles[h.id] = h
	return h.id, nil
}

// takeHandle removes and returns the handle: every handle is used once.
func (s *store) takeHandle(now time.Time, id string) *handle {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.handles[id]
	delete(s.handles, id)
	if h == nil {
		return nil
	}
	if now.After(h.expires) {
		s.expire(h)
		return nil
	}
	return h
}

// expire gives an expired handle's rate tokens back; for a shared handle the engine
// first asks the store whether another process took it (and its tokens) over.
func (s *store) expire(h *handle) {
	if h.shared && s.expired != nil {
		go s.expired(h) // a store round trip: not under s.mu
		return
	}
	h.rsv.release()
}

// addApproval stores a; with max > 0 it refuses (errBusy) when max confirmations already
// wait in a's session (a two-step approval that replaces one for the same call does not
// count twice).
func (s *store) addApproval(now time.Time, a *approval, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	if len(s.approvals) >= maxApprovals {
		return errTooMany
	}
	if max > 0 {
		n := s.pending(a.Session)
		if old := s.byKey[a.Key]; a.Kind == kindTwoStep && old != nil && old.state == statePending {
			n--
		}
		if n >= max {
			return errBusy
		}
	}
	a.ID = newID()
	a.csrf = newID()
	a.done = make(chan struct{})
	a.state = statePending
	s.approvals[a.ID] = a
	if a.Kind == kindTwoStep {
		if old := s.byKey[a.Key]; old != nil {
			s.drop(old)
		}
		s.byKey[a.Key] = a
	}
	return nil
}

// view is a copy of an approval's public fields, safe to use without the lock.
type view struct {
	ID, Kind, Tool, Text string
	Full                 string
	ServerIDs            []int64
	NeedsPIN, Confirmed  bool
	Expires              time.Time
	State                approvalState
	Via                  string
	csrf                 string
	turn                 *turn
}

func (a *approval) view() view {
	return view{ID: a.ID, Kind: a.Kind, Tool: a.Tool, Text: a.Text, Full: a.Full, ServerIDs: a.ServerIDs, NeedsPIN: a.NeedsPIN, Confirmed: a.Confirmed,
		Expires: a.Expires, State: a.state, Via: a.via, csrf: a.csrf, turn: a.turn}
}

func (s *store) get(now time.Time, id string) (view, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	a := s.approvals[id]
	if a == nil {
		return view{}, false
	}
	return a.view(), true
}

func (s *store) list(now time.Time) []view {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	out := make([]view, 0, len(s.approvals))
	for _, a := range s.approvals {
		out = append(out, a.view())
	}
	return out
}

// decide records the human's (or bot's) answer. A pending approval is decided once.
func (s *store) decide(now time.Time, id string, approve bool, pin, via string) (view, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	a := s.approvals[id]
	if a == nil {
		return view{}, errUnknown
	}
	if a.state != statePending {
		return a.view(), errDecided
	}
	if approve {
		a.state, a.pin = stateApproved, pin
	} else {
		a.state = stateDeclined
	}
	a.via = via
	close(a.done)
	return a.view(), nil
}

// twoStep finds the two-step approval for key; an approved or declined one is removed
// (single use) and returned with its PIN and its rate tokens, which the caller settles.
func (s *store) twoStep(now time.Time, key string) (v view, pin string, rsv *reservation, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	a := s.byKey[key]
	if a == nil {
		return view{}, "", nil, false
	}
	v, pin = a.view(), a.pin
	if a.state != statePending {
		rsv, a.rsv = a.rsv, nil
		s.drop(a)
	}
	return v, pin, rsv, true
}

// keyID returns the ID of the two-step approval for key, "" when none.
func (s *store) keyID(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byKey[key]; a != nil {
		return a.ID
	}
	return ""
}

// cancel forgets an approval (the client declined the URL elicitation).
func (s *store) cancel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.approvals[id]; a != nil {
		s.drop(a)
	}
}

// wait blocks until the approval is decided, it expires, or ctx ends; it removes the
// approval and returns its outcome and PIN. An approved call's rate tokens are handed
// on to the caller (rsv); otherwise they go back.
func (s *store) wait(ctx context.Context, now func() time.Time, id string) (v view, pin string, rsv *reservation, err error) {
	s.mu.Lock()
	a := s.approvals[id]
	s.mu.Unlock()
	if a == nil {
		return view{}, "", nil, errUnknown
	}
	left := a.Expires.Sub(now())
	if left < 0 {
		left = 0
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-a.done:
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, pin = a.view(), a.pin
	if v.State == stateApproved {
		rsv, a.rsv = a.rsv, nil
	}
	s.drop(a)
	if v.State == statePending {
		return v, "", nil, errNoAnswer
	}
	return v, pin, rsv, nil
}
