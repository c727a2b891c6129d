package tools

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// SessionSource gives the token's session (role, servers, permissions). The invapi client
// implements it; permissions decide which tools a token can see.
type SessionSource interface {
	Session(ctx context.Context) (*invapi.Session, error)
}

// Options configure the MCP server.
type Options struct {
	Name         string
	Version      string
	Instructions string
	Catalog      *schemas.Catalog
	Client       Caller
	Sessions     SessionSource // optional: enables permission filtering and the resources
	Selection    Selection
	Dynamic      bool // expose tools_search / toolsets_enable and start with the selection only
	PIN          PINSource
	Middleware   []server.ToolHandlerMiddleware // the policy, outermost first
	// ArgsValidated says a Middleware validates every call's arguments against the tool's
	// input schema (policy.Engine.Middleware does: in words, secrets never echoed, rejects
	// audited). mcp-go's own validation, which runs before any middleware, is then off.
	ArgsValidated bool
	ExtraTools    []server.ServerTool // events: always exposed unless excluded
	// ExtraToolsets are named groups of tools outside the catalog (the workflows): they
	// load like toolsets (--toolsets, toolsets_enable) and tools_search finds them.
	ExtraToolsets []ExtraToolset
	ExtraOptions  []server.ServerOption
	// ServerAllowed, when set, is asked before a server's resource is read: resources do
	// not pass the tool middleware, and the allowlist must hold for them too.
	ServerAllowed func(ctx context.Context, id int64) error
	Hooks         *server.Hooks
	Logger        *zap.Logger

	// Gate, when set, governs the invapi reads of resources and completions like tool
	// calls: scope, rate limits and audit (the policy engine).
	Gate Gate
}

// Server is the hostkey MCP server: the catalog tools, discovery, resources and prompts.
type Server struct {
	opts Options
	mcp  *server.MCPServer
	subs *Subscriptions
	log  *zap.Logger

	mu      sync.Mutex
	sel     Selection
	perms   map[string]bool // module/action → allowed; nil = unknown, show all
	modules map[string]bool // modules the permission list speaks about
}

// New builds the server and registers everything the options select.
func New(opts Options) (*Server, error) {
	if opts.Catalog == nil {
		opts.Catalog = schemas.Load()
	}
	if opts.Client == nil {
		return nil, errors.New("tools: no invapi client")
	}
	var extraNames []string
	for _, t := range opts.ExtraTools {
		extraNames = append(extraNames, t.Tool.Name)
	}
	var extraSets []string
	for _, ts := range opts.ExtraToolsets {
		extraSets = append(extraSets, ts.Name)
		for _, t := range ts.Tools {
			extraNames = append(extraNames, t.Tool.Name)
		}
	}
	if err := opts.Selection.resolve(opts.Catalog, extraSets, extraNames); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "hostkey-mcp"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, sel: opts.Selection, log: opts.Logger, subs: NewSubscriptions()}
	hooks := opts.Hooks
	if hooks == nil {
		hooks = &server.Hooks{}
	}
	s.subs.Attach(hooks)
	hooks.AddBeforeCallTool(s.redirectUnknownTool)
	s.attachDefaultLogLevel(hooks)
	hooks.AddBeforeReadResource(s.serverNotFound)
	sopts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(false),
		server.WithLogging(),
		server.WithRecovery(),
		server.WithHooks(hooks),
		server.WithToolFilter(s.permissionFilter),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{s}),
		server.WithResourceCompletionProvider(completer{s}),
	}
	if !opts.ArgsValidated {
		sopts = append(sopts, server.WithInputSchemaValidation())
	}
	if opts.Instructions != "" {
		sopts = append(sopts, server.WithInstructions(opts.Instructions))
	}
	for _, mw := range opts.Middleware {
		sopts = append(sopts, server.WithToolHandlerMiddleware(mw))
	}
	sopts = append(sopts, opts.ExtraOptions...)
	s.mcp = server.NewMCPServer(opts.Name, opts.Version, sopts...)

	s.mcp.AddTools(s.selectedTools()...)
	for _, t := range opts.ExtraTools {
		if !s.excluded(t.Tool.Name) && (!s.sel.ReadOnly || isReadOnlyTool(t.Tool)) {
			s.mcp.AddTool(t.Tool, t.Handler)
		}
	}
	s.mcp.AddTools(s.selectedExtraToolsets(nil)...)
	if opts.Dynamic {
		s.mcp.AddTools(s.discoveryTools()...)
	}
	if opts.Sessions != nil {
		s.addResources()
	}
	s.addPrompts()
	return s, nil
}

// DefaultLogLevel is the level of notifications/message a session gets until its client
// sends logging/setLevel: notices and above (install done, login alerts).
const DefaultLogLevel = mcp.LoggingLevelNotice

// attachDefaultLogLevel keeps DefaultLogLevel for sessions whose client never sets a
// level (most desktop clients). mcp-go v1.2.1 resets stdio and in-process sessions to
// "error" when they initialize (and, for 2026 clients, on their first request), after
// any level set at registration; so the level is set again after each request until the
// client chooses one itself.
func (s *Server) attachDefaultLogLevel(h *server.Hooks) {
	var mu sync.Mutex
	chosen := map[string]bool{}
	apply := func(ctx context.Context) {
		sess := server.ClientSessionFromContext(ctx)
		l, ok := sess.(server.SessionWithLogging)
		if !ok {
			return
		}
		mu.Lock()
		skip := chosen[sess.SessionID()]
		mu.Unlock()
		if !skip && l.GetLogLevel() == mcp.LoggingLevelError {
			l.SetLogLevel(DefaultLogLevel)
		}
	}
	h.AddOnRegisterSession(func(ctx context.Context, sess server.ClientSession) {
		if l, ok := sess.(server.SessionWithLogging); ok {
			l.SetLogLevel(DefaultLogLevel)
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		mu.Lock()
		delete(chosen, sess.SessionID())
		mu.Unlock()
	})
	h.AddAfterSetLevel(func(ctx context.Context, _ any, _ *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil {
			mu.Lock()
			chosen[sess.SessionID()] = true
			mu.Unlock()
		}
	})
	h.AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) { apply(ctx) })
	h.AddOnSuccess(func(ctx context.Context, _ any, method mcp.MCPMethod, _ any, _ any) {
		if method != mcp.MethodSetLogLevel {
			apply(ctx)
		}
	})
}

// MCP returns the underlying mcp-go server, for transports.
func (s *Server) MCP() *server.MCPServer { return s.mcp }

// Subscriptions returns the resource subscription tracker, for notifiers.
func (s *Server) Subscriptions() *Subscriptions { return s.subs }

// Selection returns the current selection (it grows when toolsets are enabled).
func (s *Server) Selection() Selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sel
}

func (s *Server) excluded(name string) bool {
	for _, n := range s.sel.Exclude {
		if n == name {
			return true
		}
	}
	return false
}

func isReadOnlyTool(t mcp.Tool) bool {
	return t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint
}

// selectedTools returns the catalog tools (and the generic tool) the selection exposes.
func (s *Server) selectedTools() []server.ServerTool {
	s.mu.Lock()
	sel := s.sel
	s.mu.Unlock()
	var out []server.ServerTool
	for _, a := range s.opts.Catalog.Actions {
		if s.exposes(sel, a) {
			out = append(out, server.ServerTool{Tool: Definition(a), Handler: handler(a, s.opts.Client, s.opts.PIN)})
		}
	}
	if sel.AllowsGeneric() {
		out = append(out, GenericTool(s.opts.Catalog, s.opts.Client))
	}
	return out
}

// EnableToolsets adds toolsets at run time (tools_search → toolsets_enable) and returns the
// tools that became visible; mcp-go then tells clients the list changed.
func (s *Server) EnableToolsets(names ...string) ([]string, error) {
	probe := Selection{Toolsets: names}
	if err := probe.resolve(s.opts.Catalog, s.extraToolsetNames(), nil); err != nil {
		return nil, err
	}
	s.mu.Lock()
	before := map[string]bool{}
	for _, a := range s.opts.Catalog.Actions {
		if s.exposes(s.sel, a) {
			before[a.Tool] = true
		}
	}
	prev := s.sel
	s.sel.Toolsets = append(append([]string(nil), s.sel.Toolsets...), names...)
	s.mu.Unlock()
	var added []server.ServerTool
	var names2 []string
	for _, t := range append(s.selectedTools(), s.selectedExtraToolsets(&prev)...) {
		if !before[t.Tool.Name] && t.Tool.Name != GenericToolName {
			added = append(added, t)
			names2 = append(names2, t.Tool.Name)
		}
	}
	if len(added) > 0 {
		s.mcp.AddTools(added...)
	}
	return names2, nil
}

// permissionFilter hides tools the token's role cannot call, so the model is not offered
// tools that would only fail. Modules the permission list never mentions, and actions
// that need no token, stay visible: the list says nothing about them.
func (s *Server) permissionFilter(_ context.Context, tools []mcp.Tool) []mcp.Tool {
	s.mu.Lock()
	perms, modules := s.perms, s.modules
	s.mu.Unlock()
	out := tools[:0:0]
	for _, t := range tools {
		if perms == nil {
			out = append(out, t)
			continue
		}
		a, ok := s.opts.Catalog.Tool(t.Name)
		if !ok || a.NoAuth || granted(perms, modules, a.PermissionName()) {
			out = append(out, t)
		}
	}
	return out
}

// granted reports whether perm ("module/action", the name the permission list grants an
// action under: schemas rule 13) is granted, or the list says nothing about it.
func granted(perms, modules map[string]bool, perm string) bool {
	m, _, _ := strings.Cut(perm, "/")
	return perm == "" || !modules[m] || perms[perm]
}

// Permitted reports whether the token may call module/action as far as its permission
// list tells (true when unknown).
func (s *Server) Permitted(module, action string) bool {
	perm := module + "/" + action
	if a, ok := s.opts.Catalog.Lookup(module, action); ok {
		perm = a.PermissionName()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perms == nil || granted(s.perms, s.modules, perm)
}

// RefreshPermissions reads the token's permissions and, when they changed, tells every
// client to re-list its tools.
func (s *Server) RefreshPermissions(ctx context.Context) error {
	if s.opts.Sessions == nil {
		return nil
	}
	sess, err := s.opts.Sessions.Session(ctx)
	if err != nil {
		return fmt.Errorf("read token permissions: %w", err)
	}
	if len(sess.Permissions) == 0 {
		return nil // nothing to filter on
	}
	perms := map[string]bool{}
	modules := map[string]bool{}
	for _, p := range sess.Permissions {
		perms[p] = true
		if m, _, ok := strings.Cut(p, "/"); ok {
			modules[m] = true
		}
	}
	s.mu.Lock()
	changed := !sameSet(s.perms, perms)
	s.perms, s.modules = perms, modules
	s.mu.Unlock()
	if changed {
		s.mcp.SendNotificationToAllClients(mcp.MethodNotificationToolsListChanged, nil)
	}
	return nil
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// ToolNames returns the names of the tools currently registered, sorted.
func (s *Server) ToolNames() []string {
	var names []string
	for name := range s.mcp.ListTools() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
