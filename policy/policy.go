// Package policy decides whether a tool call may reach invapi, and makes a human — not
// the model — confirm the dangerous ones. Every governed call passes one pipeline
// (decide; Middleware and Authorize are adapters over it), in this order:
//
//	arguments → scope → rate limit (reserved) → waiting-confirmation limit → confirmation → call → audit
//
// Arguments that do not fit the tool's schema are refused in words, secrets never
// repeated. Scope refuses writes in read-only mode and calls naming servers outside the
// allowlist (by ID, or by invapi tag through FactsFunc) before any request leaves. Rate
// limits answer at once with the retry-after; a call's tokens are given back when
// nothing is sent. Destructive calls (write calls too with
// ConfirmWrites, and every call that needs the account PIN) are confirmed by a human:
//
//   - elicit, client declares form elicitation: a yes/no form with a precise summary
//     (action, servers, hostnames, IPs, location, what will be lost). One handler serves
//     clients that take elicitation/create and clients on the 2026-07-28 multi-round-trip
//     protocol (server.NewInputRequestBuilder). The requestState sent to the client is
//     only an unguessable handle; the state stays here, bound to session, tool and
//     arguments, single-use and expiring.
//   - the PIN comes from the server-side PINProvider (HOSTKEY_PIN, --pin-file) after the
//     confirmation; with no PIN configured the human types it on a one-time local page,
//     reached through URL-mode elicitation when the client declares it. The PIN is never
//     put in a form, a message, a result, an error, a log line or an audit line.
//   - clients without elicitation, and --confirm token (chat-ops bots): a two-step flow.
//     The call returns "confirmation required" with an approval id; a human approves on
//     the local page, or a bot POSTs the approval with its own credential; the model then
//     repeats the exact call. The approval is bound to tool + canonical arguments +
//     session, is single-use and expires.
//   - --confirm off: no confirmation, logged at warn on start and on every call.
//
// After invapi refuses the PIN, PIN calls are refused locally for PINCooldown so an
// assistant never walks into the vendor's brute-force lockout. Every decision is written
// to the hash-chained audit log (package audit) and to zap.
package policy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy/audit"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/state"
)

// storeTimeout bounds one read or write of the shared store made outside a call's context.
const storeTimeout = 10 * time.Second

// Call is what the tool layer tells the policy about one tools/call.
type Call struct {
	Tool, Module, Action string
	Class                schemas.Class
	NeedsPIN             bool
	ServerIDs            []int64
	Args                 map[string]any  // as the model sent them
	Request              *invapi.Request // the exact upstream request, without the PIN
	// Summary, when set, says what the call does in place of the generic consequence of
	// Module/Action: a workflow describes all of its steps (one confirmation for them all).
	Summary string
}

// Describer turns a tools/call into a Call. (nil, nil) means the tool is not governed
// (local discovery tools) and the call passes straight through.
type Describer func(ctx context.Context, req mcp.CallToolRequest) (*Call, error)

// ServerFacts is what the confirmation summary and the tag allowlist need to know about
// a server (from eq/show).
type ServerFacts struct {
	ID       int64
	Hostname string
	Location string
	IPs      []string
	Tags     []string
}

// FactsFunc looks a server up.
type FactsFunc func(ctx context.Context, id int64) (*ServerFacts, error)

// Auditor receives one entry per decision; *audit.Log is one.
type Auditor interface {
	Append(e audit.Entry) (hash string, err error)
}

// LaterAuditor is an Auditor that can also queue an entry for a background writer
// (*audit.Chain): the policy uses it for reads it lets through.
type LaterAuditor interface {
	Auditor
	AppendLater(e audit.Entry)
}

// ConfirmMode is how a human confirms: Options.Confirm.
type ConfirmMode string

// Confirmation modes.
const (
	ConfirmElicit ConfirmMode = "elicit"
	ConfirmToken  ConfirmMode = "token"
	ConfirmOff    ConfirmMode = "off"
)

// Decision is what the audit log records for one step of a governed call.
type Decision string

// Decisions recorded in the audit log. The constants are untyped so that they compare
// with audit.Entry.Decision as they are; the policy's own functions take a Decision.
const (
	DecisionAllowed     = "allowed"      // no confirmation needed; sent
	DecisionConfirmed   = "confirmed"    // a human confirmed; sent
	DecisionPending     = "pending"      // a confirmation or approval was asked for; nothing sent yet
	DecisionDeclined    = "declined"     // the human declined or cancelled; nothing sent
	DecisionDeniedScope = "denied-scope" // read-only mode or server allowlist; nothing sent
	DecisionDenied      = "denied"       // PIN cool-down, invalid confirmation state, no PIN…; nothing sent
	DecisionRateLimited = "rate-limited" // nothing sent
	DecisionFailed      = "failed"       // sent (or attempted) and failed
	DecisionDryRun      = "dry-run"      // the request was shown, not sent
	DecisionInvalid     = "invalid"      // the arguments do not fit the tool, or the call could not be described; nothing sent
)

// channel is how a human confirmed a call (the audit's "confirm" field).
type channel string

const (
	viaNone    channel = ""
	viaOff     channel = "off" // --confirm off let a call through that would need a human
	viaForm    channel = "elicit-form"
	viaURL     channel = "elicit-url"
	viaTwoStep channel = "two-step"
)

// viaApproval is a two-step approval answered on the page or by a bot.
func viaApproval(who string) channel { return channel("approval-" + who) }

// viaURLPage is a URL-mode elicitation answered on the page (or by a bot).
func viaURLPage(who string) channel { return channel("elicit-url-" + who) }

// Options configure an Engine.
type Options struct {
	Describe Describer // required
	Facts    FactsFunc // optional; required when ServerTags is set

	Confirm       ConfirmMode // elicit (default), token or off
	ConfirmWrites bool        // also confirm write calls

	PIN            PINProvider // nil: no PIN configured, the human types it on the local page
	PINPageBaseURL string      // base URL where Handler is mounted (loopback), "" if none
	ApproverToken  string      // bearer credential of chat-ops bots for the approval API; "" disables it
	AllowRemote    bool        // serve the pages to non-loopback clients (default: loopback only)

	Classes map[string]schemas.Class // overrides by tool name or "module/action" (--policy-file)

	ReadOnly   bool
	Servers    []int64  // allowlist by ID; empty with empty ServerTags: every server
	ServerTags []string // allowlist by invapi tag (any of them; "name" or "name=value")

	Limits Limits
	DryRun bool

	Audit   Auditor
	Logger  *zap.Logger
	Now     func() time.Time
	Catalog *schemas.Catalog // default schemas.Load(): secret flags, server-ID parameters

	// State is the store shared by every process on the data dir (state.Open): the PIN
	// cool-down, the rate-limit buckets and the approvals live there, so several stdio
	// clients, the CLI and restarts are one system. nil keeps them in this process only.
	State state.Store

	PINCooldown time.Duration // default 15m
	ApprovalTTL time.Duration // two-step approvals and PIN pages, default 2m
	ConfirmTTL  time.Duration // how long a form confirmation may stay unanswered, default 10m
	FactsTTL    time.Duration // cache of FactsFunc answers, default 1m

	// MaxPending is how many confirmations and approvals may wait for a human at once in
	// one MCP session (default 3; negative: no limit). More is prompt fatigue: a human
	// asked again and again approves without reading.
	MaxPending int

	// OnApproval, when set, is told of every approval requested and decided (chat-ops
	// deliveries, issue 18). It runs on the request's goroutine: it must not block.
	OnApproval func(ApprovalEvent)
}

// DefaultMaxPending is Options.MaxPending's default.
const DefaultMaxPending = 3

// Engine is the policy. It is safe for concurrent use.
type Engine struct {
	o       Options
	cat     *schemas.Catalog
	log     *zap.Logger
	now     func() time.Time
	servers map[int64]bool
	tags    []string

	limits  *limiters
	store   *store
	facts   *factsCache
	schemas schemaCache

	st       state.Store // nil: state in this process only
	instance string      // this engine, in the shared store (stdio session IDs are not unique)

	coolMu    sync.Mutex
	coolUntil time.Time

	guarded  atomic.Bool // Guard has seen a request
	warnOnce sync.Once
}

// New checks o and builds an Engine.
func New(o Options) (*Engine, error) {
	if o.Describe == nil {
		return nil, errors.New("policy: no Describer")
	}
	switch o.Confirm {
	case "":
		o.Confirm = ConfirmElicit
	case ConfirmElicit, ConfirmToken, ConfirmOff:
	default:
		return nil, fmt.Errorf("policy: confirm mode %q: want elicit, token or off", o.Confirm)
	}
	if len(o.ServerTags) > 0 && o.Facts == nil {
		return nil, errors.New("policy: --server-tags needs a server lookup (Facts)")
	}
	for name, c := range o.Classes {
		if !c.Valid() {
			return nil, fmt.Errorf("policy: class %q for %s: want read, write or destructive", c, name)
		}
	}
	if o.PINPageBaseURL != "" {
		o.PINPageBaseURL = strings.TrimRight(o.PINPageBaseURL, "/")
		u, err := url.Parse(o.PINPageBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("policy: approval page base URL %q: want http://127.0.0.1:PORT/path", o.PINPageBaseURL)
		}
		if !o.AllowRemote && !loopbackHost(u.Host) {
			return nil, fmt.Errorf("policy: approval page base URL %q is not on loopback, where the pages are served (allow remote approvals explicitly to change that)", o.PINPageBaseURL)
		}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Catalog == nil {
		o.Catalog = schemas.Load()
	}
	if o.PINCooldown <= 0 {
		o.PINCooldown = 15 * time.Minute
	}
	if o.ApprovalTTL <= 0 {
		o.ApprovalTTL = 2 * time.Minute
	}
	if o.ConfirmTTL <= 0 {
		o.ConfirmTTL = 10 * time.Minute
	}
	if o.FactsTTL <= 0 {
		o.FactsTTL = time.Minute
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	lim, err := newLimiters(o.Limits, o.Now, o.State)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		o: o, cat: o.Catalog, log: o.Logger.Named("policy"), now: o.Now,
		servers: map[int64]bool{}, limits: lim, st: o.State, instance: state.NewID("p-"),
		store: newStore(),
		facts: newFactsCache(o.Facts, o.FactsTTL, o.Now),
	}
	lim.log = e.log
	if e.sharesHandles() {
		e.store.expired = e.settleExpired
	}
	for _, id := range o.Servers {
		e.servers[id] = true
	}
	for _, t := range o.ServerTags {
		if t = strings.TrimSpace(t); t != "" {
			e.tags = append(e.tags, t)
		}
	}
	if o.Confirm == ConfirmOff {
		e.log.Warn("CONFIRMATION IS OFF: destructive calls run without a human confirming them (--confirm off)")
	}
	if o.DryRun {
		e.log.Info("dry run: write and destructive calls are answered with the request that would be sent; nothing is sent")
	}
	if o.PIN == nil && o.PINPageBaseURL == "" && o.ApproverToken == "" {
		e.log.Info("no PIN configured and no approval page: calls that need the PIN will be refused (set HOSTKEY_PIN or --pin-file, or serve --http)")
	}
	return e, nil
}

// Close gives the rate tokens this engine leased from the shared store back; call it
// before the store closes. Calls after Close still work, without leases.
func (e *Engine) Close() { e.limits.close() }

// ClassOf returns the class the policy applies to call: an override by "module/action",
// then by tool name, then the call's own class; destructive when unknown.
func (e *Engine) ClassOf(call *Call) schemas.Class {
	if c, ok := e.o.Classes[call.Module+"/"+call.Action]; ok {
		return c
	}
	if c, ok := e.o.Classes[call.Tool]; ok {
		return c
	}
	if call.Class.Valid() {
		return call.Class
	}
	return schemas.Destructive
}

// action is the catalog's entry for call: by tool name, else by module/action.
func (e *Engine) action(call *Call) (*schemas.Action, bool) {
	if a, ok := e.cat.Tool(call.Tool); ok {
		return a, true
	}
	return e.cat.Lookup(call.Module, call.Action)
}

// secretFields lists the parameter names the catalog marks secret for call.
func (e *Engine) secretFields(call *Call) []string {
	if a, ok := e.action(call); ok {
		return a.SecretFields()
	}
	return nil
}

// redactedArgs returns the model's arguments with every secret replaced.
func (e *Engine) redactedArgs(call *Call) map[string]any {
	return invapi.RedactParams(call.Args, e.secretFields(call)...)
}
