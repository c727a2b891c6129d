// Package sim is a stateful simulator of Hostkey's invapi: a real http.Handler that
// answers /{module}.php the way the vendor documentation says invapi does, from the
// sandbox fixtures in testdata/. It keeps state (sessions, power, PXE, installs, PIN
// lockouts, API keys, PTRs, tags, invoices), runs on a clock the caller controls, calls
// post_install_callback URLs when an install finishes, and injects faults on demand.
//
// The client tests, the sandbox (hostkey-mcp --sandbox) and the benchmarks all use it.
// Behaviour the docs leave open is written down in README.md beside this file.
// Of this module it imports schemas and testdata, never invapi (the client's tests
// import sim).
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/testdata"
)

// Options configure a simulator. The zero value is usable.
type Options struct {
	Fixtures       fs.FS         // default testdata.Sandbox
	Clock          Clock         // default the real clock; tests pass NewManualClock(t0)
	TokenTTL       time.Duration // default 1h; auth/login's ttl parameter may lower it
	PINFailDelay   time.Duration // delay of answers while PIN-locked: 0 means 2s with a real clock and none with a *ManualClock; negative means none
	StageDuration  time.Duration // sim time per install stage (default 4m)
	CallbackClient *http.Client  // used to call post_install_callback URLs (default: 10 s timeout)
	Logger         *zap.Logger   // default no-op; never receives secrets

	// NoPINFailDelay turns the lockout delay off whatever the clock.
	NoPINFailDelay bool
	// Catalog overrides schemas.Load() (tests of the generic handler).
	Catalog *schemas.Catalog
}

// Request is one logged request. Form holds the pairs as sent (percent-decoded, names
// untouched), Vars what PHP (invapi) reads from them (see ParseForm); Action and Token
// are PHP's reading. Secrets included: it is for tests and is never logged.
type Request struct {
	Time   time.Time
	Method string
	Module string
	Action string
	Form   url.Values
	Vars   map[string]any
	Token  string
}

// FaultKind selects what an injected fault does.
type FaultKind int

const (
	// FaultLatency delays the answer by Fault.Latency (real time, cut short when the
	// client gives up), then answers normally.
	FaultLatency FaultKind = iota + 1
	// Fault5xx answers HTTP Fault.Status (default 502) with an nginx-style HTML page.
	Fault5xx
	// FaultDrop hijacks the connection and closes it without an answer.
	FaultDrop
	// FaultExpireToken expires the request's session token and answers
	// {"code":-2,"message":"Authentication required"}.
	FaultExpireToken
	// FaultHTML answers HTTP 200 with an HTML page instead of JSON.
	FaultHTML
	// FaultEmpty answers HTTP 200 with an empty body.
	FaultEmpty
	// FaultResponse answers Fault.Status (default 200) with Fault.Body verbatim.
	FaultResponse
)

// Fault is one injected misbehaviour. Module and Action "" match any. Count is how many
// matching requests it affects: 0 means 1, negative means until ClearFaults.
type Fault struct {
	Module  string
	Action  string
	Kind    FaultKind
	Count   int
	Latency time.Duration
	Status  int    // Fault5xx, FaultResponse
	Body    string // FaultResponse
}

// CallbackCall records one post_install_callback invocation.
type CallbackCall struct {
	Time   time.Time // sim time of the install's completion
	URL    string
	Status int    // HTTP status, 0 when the request failed
	Err    string // transport error, "" on success
}

// ServerState is a snapshot of one server for assertions.
type ServerState struct {
	ID         int64
	Hostname   string
	Location   string
	Status     string // billing status: rent, prepare, cancelled
	Condition  string // Condition_Component: rent, power_off (suspended)
	Power      string // on, off
	OSID       int64
	OSName     string
	IPs        []string
	PTR        map[string]string
	Tags       map[string]string
	BootDev    string // disk, pxe, cd
	PXE        bool   // a PXE config is set (create_pxe, not yet clear_pxe)
	Installing bool
	Stage      int    // 1..5 while installing, 0 otherwise
	InstallKey string // key of the current (or last pending) install
	Installs   int    // completed installs
	Surprise   int    // installs started by a reboot with a forgotten PXE config
	Callbacks  []CallbackCall
	PortsDown  []string
}

// Server is the simulator. It implements http.Handler for "/{module}.php" (any path
// prefix is accepted: the last path element names the module).
type Server struct {
	opts    Options
	log     *zap.Logger
	catalog *schemas.Catalog
	byEP    map[string]*schemas.Action
	modules map[string]bool
	fx      *fixtures

	clockMu sync.RWMutex
	clock   Clock

	mu       sync.Mutex
	st       *state
	reqs     []Request
	faults   []*Fault
	events   []*event
	eventSeq int64

	advMu sync.Mutex     // serializes Advance
	cbWG  sync.WaitGroup // callbacks run in the background
}

type event struct {
	at  time.Time
	seq int64
	fn  func(now time.Time) []func() // runs under s.mu; returned funcs run after unlock
}

// New builds a simulator from the fixtures.
func New(opts Options) (*Server, error) {
	if opts.Fixtures == nil {
		opts.Fixtures = testdata.Sandbox
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	_, manual := opts.Clock.(*ManualClock)
	switch {
	case opts.NoPINFailDelay || opts.PINFailDelay < 0:
		opts.PINFailDelay = 0
	case opts.PINFailDelay == 0 && !manual:
		opts.PINFailDelay = 2 * time.Second
	}
	if opts.StageDuration <= 0 {
		opts.StageDuration = 4 * time.Minute
	}
	if opts.CallbackClient == nil {
		opts.CallbackClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	fx, err := loadFixtures(opts.Fixtures)
	if err != nil {
		return nil, err
	}
	cat := opts.Catalog
	if cat == nil {
		cat = schemas.Load()
	}
	s := &Server{opts: opts, log: opts.Logger.Named("invapi-sim"), catalog: cat, fx: fx, clock: opts.Clock}
	s.byEP = map[string]*schemas.Action{}
	for _, a := range cat.Actions {
		s.byEP[a.Module+"/"+a.Action] = a
		if ep := strings.TrimSuffix(a.Endpoint, ".php"); ep != "" {
			if _, dup := s.byEP[ep+"/"+a.Action]; !dup {
				s.byEP[ep+"/"+a.Action] = a
			}
		}
	}
	s.modules = s.moduleSet()
	s.st = newState(fx)
	return s, nil
}

func (s *Server) now() time.Time {
	s.clockMu.RLock()
	defer s.clockMu.RUnlock()
	return s.clock.Now()
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Form = cloneValues(r.Form)
		if r.Vars != nil {
			r.Vars = deepCopy(r.Vars).(map[string]any)
		}
		out[i] = r
	}
	return out
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

// Inject adds a fault. Faults are matched in the order they were injected.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	c := f
	if c.Count == 0 {
		c.Count = 1
	}
	s.faults = append(s.faults, &c)
	s.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// ExpireTokens makes every session token expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	now := s.now()
	for _, se := range s.st.sessions {
		se.expires = now.Add(-time.Second)
	}
	s.mu.Unlock()
}

// Keys returns the sandbox API keys: the account key and one key per server that has a
// per-server key. Disabled keys are left out.
func (s *Server) Keys() (account string, perServer map[int64]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perServer = map[int64]string{}
	for _, k := range s.st.keys {
		if k.Active != 1 {
			continue
		}
		if k.ServerID == 0 {
			if account == "" {
				account = k.Key
			}
		} else if _, ok := perServer[k.ServerID]; !ok {
			perServer[k.ServerID] = k.Key
		}
	}
	return account, perServer
}

// PIN returns the account PIN (as changed by eq/set_pin).
func (s *Server) PIN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.pin
}

// Server returns a snapshot of one server's state.
func (s *Server) Server(id int64) (ServerState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.st.servers[id]
	if !ok {
		return ServerState{}, false
	}
	return sv.snapshot(s.now(), s.opts.StageDuration), true
}

// ServerIDs lists every server the account has, ordered ones included.
func (s *Server) ServerIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int64, 0, len(s.st.servers))
	for id := range s.st.servers {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Now returns the simulator's current time.
func (s *Server) Now() time.Time { return s.now() }

// Advance moves a manual clock forward by d and runs every event that falls due (install
// stages, completions and their post_install_callback calls, NAT jobs) in time order,
// synchronously. It panics when the clock is not a *ManualClock.
func (s *Server) Advance(d time.Duration) {
	s.advMu.Lock()
	defer s.advMu.Unlock()
	s.clockMu.RLock()
	mc, ok := s.clock.(*ManualClock)
	s.clockMu.RUnlock()
	if !ok {
		panic("sim: Advance needs a *ManualClock in Options.Clock")
	}
	target := mc.Now().Add(d)
	for {
		s.mu.Lock()
		ev := s.popDue(target)
		if ev == nil {
			s.mu.Unlock()
			break
		}
		mc.Set(ev.at)
		effects := ev.fn(ev.at)
		s.mu.Unlock()
		for _, f := range effects {
			f()
		}
	}
	mc.Set(target)
}

// Close waits for background callback calls to finish.
func (s *Server) Close() { s.cbWG.Wait() }

// schedule queues fn to run at t. Callers hold s.mu.
func (s *Server) schedule(t time.Time, fn func(now time.Time) []func()) {
	s.eventSeq++
	s.events = append(s.events, &event{at: t, seq: s.eventSeq, fn: fn})
}

// popDue removes and returns the earliest event due at or before t. Callers hold s.mu.
func (s *Server) popDue(t time.Time) *event {
	best := -1
	for i, e := range s.events {
		if e.at.After(t) {
			continue
		}
		if best < 0 || e.at.Before(s.events[best].at) || (e.at.Equal(s.events[best].at) && e.seq < s.events[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	e := s.events[best]
	s.events = append(s.events[:best], s.events[best+1:]...)
	return e
}

// runDue runs events that fell due without Advance (real or scaled clock, or a manual
// clock moved directly). Their side effects run in the background.
func (s *Server) runDue() {
	now := s.now()
	var effects []func()
	s.mu.Lock()
	for {
		ev := s.popDue(now)
		if ev == nil {
			break
		}
		effects = append(effects, ev.fn(ev.at)...)
	}
	s.mu.Unlock()
	for _, f := range effects {
		s.cbWG.Add(1)
		go func() {
			defer s.cbWG.Done()
			f()
		}()
	}
}

// RunRealtime lets sim time pass on its own until ctx ends: speed sim seconds per real
// second (speed 20 finishes a default 5-stage install in one real minute). With a
// *ManualClock it advances that clock; otherwise it replaces the clock with one running
// speed times faster, continuing from the current sim time.
func (s *Server) RunRealtime(ctx context.Context, speed float64) error {
	if speed <= 0 {
		speed = 1
	}
	const tick = 200 * time.Millisecond
	s.clockMu.Lock()
	_, manual := s.clock.(*ManualClock)
	if !manual {
		s.clock = scaledClock{origin: s.clock.Now(), start: time.Now(), speed: speed}
	}
	s.clockMu.Unlock()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			if manual {
				s.Advance(time.Duration(float64(now.Sub(last)) * speed))
				last = now
			} else {
				s.runDue()
			}
		}
	}
}

// SandboxInstallDuration is how long an install takes in the interactive sandbox: well
// inside a workflow tool's default wait (50 s), so a walkthrough ends with the result.
const SandboxInstallDuration = 20 * time.Second

// Serve serves s on ln until ctx ends, running sim time at speed (see RunRealtime).
func (s *Server) Serve(ctx context.Context, ln net.Listener, speed float64) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.RunRealtime(ctx, speed) }()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		_ = hs.Shutdown(sctx)
		s.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ServeHTTP answers one invapi request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	base := path.Base(r.URL.Path)
	if !strings.HasSuffix(base, ".php") || len(base) <= len(".php") {
		writeHTML(w, http.StatusNotFound, notFoundHTML)
		return
	}
	module := strings.TrimSuffix(base, ".php")
	form, err := readForm(r)
	if err != nil {
		writeHTML(w, http.StatusBadRequest, badRequestHTML)
		return
	}
	// What PHP reads, not what was sent: a smuggled " action" is "action" here too.
	action := form.vars.str("action")
	token := form.vars.str("token")

	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Time: s.now(), Method: r.Method, Module: module, Action: action, Form: form.sent, Vars: form.vars.plainMap(), Token: token})
	fault := s.takeFault(module, action)
	s.mu.Unlock()

	if fault != nil {
		if done := s.applyFault(w, r, fault, token); done {
			s.log.Debug("fault", zap.String("module", module), zap.String("action", action), zap.Int("kind", int(fault.Kind)))
			return
		}
	}
	s.runDue()

	rq := &call{module: module, action: action, token: token, method: r.Method, a: newArgs(form.vars), remote: remoteIP(r), host: r.Host}
	s.mu.Lock()
	resp := s.dispatch(rq)
	s.mu.Unlock()

	if resp.delay > 0 {
		t := time.NewTimer(resp.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	status := resp.status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.html != "" {
		writeHTML(w, status, resp.html)
	} else {
		b, err := json.Marshal(resp.body)
		if err != nil {
			b = []byte(`{"code":-1,"message":"internal error"}`)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
	s.log.Debug("request", zap.String("method", r.Method), zap.String("module", module), zap.String("action", action),
		zap.Int("status", status), zap.String("outcome", resp.outcome()), zap.Duration("took", time.Since(start)))
}

// takeFault finds and consumes the first matching fault. Callers hold s.mu.
func (s *Server) takeFault(module, action string) *Fault {
	for i, f := range s.faults {
		if (f.Module == "" || f.Module == module) && (f.Action == "" || f.Action == action) {
			c := *f
			if f.Count > 0 {
				f.Count--
				if f.Count == 0 {
					s.faults = append(s.faults[:i], s.faults[i+1:]...)
				}
			}
			return &c
		}
	}
	return nil
}

// applyFault performs f; it returns false when the request should go on normally.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, token string) bool {
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case Fault5xx:
		st := f.Status
		if st < 500 || st > 599 {
			st = http.StatusBadGateway
		}
		writeHTML(w, st, badGatewayHTML)
	case FaultDrop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	case FaultExpireToken:
		s.mu.Lock()
		if se, ok := s.st.sessions[token]; ok {
			se.expires = s.now().Add(-time.Second)
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, errCode(-2, "Authentication required"))
	case FaultHTML:
		writeHTML(w, http.StatusOK, maintenanceHTML)
	case FaultEmpty:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
	case FaultResponse:
		st := f.Status
		if st == 0 {
			st = http.StatusOK
		}
		ct := "application/json; charset=utf-8"
		if !strings.HasPrefix(strings.TrimSpace(f.Body), "{") && !strings.HasPrefix(strings.TrimSpace(f.Body), "[") {
			ct = "text/html; charset=UTF-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(st)
		_, _ = w.Write([]byte(f.Body))
	default:
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

const (
	notFoundHTML    = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	badRequestHTML  = "<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	badGatewayHTML  = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	maintenanceHTML = "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>invapi is under maintenance</h1><p>Please try again later.</p></body></html>\n"
)

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
