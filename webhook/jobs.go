package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// CallbackParam is the invapi parameter that carries the install callback URL.
const CallbackParam = "post_install_callback"

// ErrNoPublicURL means no --public-url is configured, so nothing can call back.
var ErrNoPublicURL = errors.New("webhook: no public URL configured")

// callbackTools are the tools whose schema has a post_install_callback property
// (eq_order_instance, eq_create_pxe, eq_reinstall, eq_deploy in the catalog).
func callbackTools(cat *schemas.Catalog) map[string]bool {
	out := map[string]bool{"eq_order_instance": true, "eq_create_pxe": true}
	for _, a := range cat.Actions {
		// The parameters, not the schema: decoding 177 schemas cost a start 2 ms.
		for _, p := range a.Params {
			if len(p.Path) > 0 && p.Path[0] == CallbackParam {
				out[a.Tool] = true
			}
		}
	}
	return out
}

func schemaHasCallback(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	_, ok := s.Properties[CallbackParam]
	return ok
}

// wantsCallback: a catalog tool with the property, or any registered tool whose schema has it.
func (r *Receiver) wantsCallback(ctx context.Context, name string) bool {
	if r.cbTools[name] {
		return true
	}
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return false
	}
	t := srv.GetTool(name)
	if t == nil {
		return false
	}
	if len(t.Tool.RawInputSchema) > 0 {
		return schemaHasCallback(t.Tool.RawInputSchema)
	}
	_, ok := t.Tool.InputSchema.Properties[CallbackParam]
	return ok
}

// PublicURL is the configured public URL without trailing slash ("" when none).
func (r *Receiver) PublicURL() string { return r.public }

// NewInstallJob creates a job awaiting an install callback and returns the URL to give
// invapi as post_install_callback: <public-url>/cb/install/<secret>, the secret being 256
// random bits. Only the secret's SHA-256 is stored. serverIPs (or, when empty and the
// source check is on, the ServerIPs lookup) are the addresses allowed to call back.
func (r *Receiver) NewInstallJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (string, error) {
	_, u, err := r.newJob(ctx, serverID, action, session, serverIPs)
	return u, err
}

func (r *Receiver) newJob(ctx context.Context, serverID int64, action, session string, serverIPs []string) (Job, string, error) {
	if r.public == "" {
		return Job{}, "", ErrNoPublicURL
	}
	if len(serverIPs) == 0 && r.cfg.CheckSourceIP && r.cfg.ServerIPs != nil && serverID != 0 {
		ips, err := r.cfg.ServerIPs(ctx, serverID)
		if err != nil {
			r.log.Warn("could not look up the server's IPs; will retry when the callback arrives", zap.Int64("server", serverID), zap.Error(err))
		}
		serverIPs = ips
	}
	for range 3 {
		secret, err := newSecret()
		if err != nil {
			return Job{}, "", err
		}
		h := sha256.Sum256([]byte(secret))
		j := Job{ID: store.NewID("job_"), SecretHash: h[:], ServerID: serverID, Action: action, Session: session,
			ServerIPs: serverIPs, Created: r.now().UTC(), State: store.JobPending}
		err = r.store.CreateJob(ctx, j)
		if errors.Is(err, store.ErrExists) {
			continue // astronomically unlikely; try fresh randomness
		}
		if err != nil {
			return Job{}, "", fmt.Errorf("webhook: create job: %w", err)
		}
		r.log.Info("install job created", zap.String("job", j.ID), zap.Int64("server", serverID), zap.String("action", action),
			zap.String("secret_sha256_prefix", secretPrefix(secret)))
		return j, r.public + "/cb/install/" + secret, nil
	}
	return Job{}, "", errors.New("webhook: could not create a unique job")
}

// InjectCallback is a tool middleware. For eq_order_instance, eq_create_pxe and any tool
// whose schema has a post_install_callback property, when a public URL is configured and
// the arguments carry no callback, it creates a job (server from the `id` argument) and
// adds post_install_callback before calling next. Register it innermost (after the
// policy): the job is created only for a call that really goes upstream, and the secret
// URL is never shown in a confirmation. The secret is scrubbed from the result.
func (r *Receiver) InjectCallback(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if r.public == "" || !r.wantsCallback(ctx, req.Params.Name) {
			return next(ctx, req)
		}
		args := req.GetArguments()
		if v, ok := args[CallbackParam]; ok && v != nil && v != "" {
			return next(ctx, req) // the caller chose its own callback
		}
		serverID, _ := toInt64(args["id"])
		session := ""
		if s := server.ClientSessionFromContext(ctx); s != nil {
			session = s.SessionID()
		}
		job, cbURL, err := r.newJob(ctx, serverID, req.Params.Name, session, nil)
		if err != nil {
			r.log.Error("no install callback for this call", zap.String("tool", req.Params.Name), zap.Error(err))
			return next(ctx, req)
		}
		withCB := make(map[string]any, len(args)+1)
		for k, v := range args {
			withCB[k] = v
		}
		withCB[CallbackParam] = cbURL
		req.Params.Arguments = withCB
		req.Params.RawArguments = withRawParam(req.Params.RawArguments, CallbackParam, cbURL)

		o := Origin{Session: session}
		if req.Params.Meta != nil {
			o.ProgressToken = req.Params.Meta.ProgressToken
		}
		r.mu.Lock()
		r.open[job.ID] = o
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			delete(r.open, job.ID)
			r.mu.Unlock()
		}()

		res, err := next(ctx, req)
		secret := cbURL[strings.LastIndexByte(cbURL, '/')+1:]
		res = scrubResult(res, secret)
		if res != nil && !res.IsError {
			res.Content = append(res.Content, mcp.NewTextContent(fmt.Sprintf(
				"hostkey-mcp registered install callback job %s: when the install finishes, connected clients get a notification "+
					"and the event appears in events_list (kind install_done) and hostkey://events.", job.ID)))
		}
		return res, err
	}
}

// withRawParam sets key in the raw JSON arguments (kept by mcp-go for BindArguments and
// exact integers) without re-encoding the other values.
func withRawParam(raw json.RawMessage, key, value string) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	v, _ := json.Marshal(value)
	m[key] = v
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}

// scrubResult replaces the callback secret wherever the upstream answer echoed it.
func scrubResult(res *mcp.CallToolResult, secret string) *mcp.CallToolResult {
	if res == nil || secret == "" {
		return res
	}
	for i, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok && strings.Contains(t.Text, secret) {
			t.Text = strings.ReplaceAll(t.Text, secret, invapi.Redacted)
			res.Content[i] = t
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil && strings.Contains(string(b), secret) {
			var v any
			if json.Unmarshal([]byte(strings.ReplaceAll(string(b), secret, invapi.Redacted)), &v) == nil {
				res.StructuredContent = v
			}
		}
	}
	return res
}

// WaitJob blocks until the job's callback has been stored (or ctx ends) and returns the
// job. A workflow that must wait for an install can use it instead of polling.
func (r *Receiver) WaitJob(ctx context.Context, jobID string) (Job, error) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters[jobID] = append(r.waiters[jobID], ch)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		list := r.waiters[jobID]
		for i, c := range list {
			if c == ch {
				r.waiters[jobID] = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(r.waiters[jobID]) == 0 {
			delete(r.waiters, jobID)
		}
		r.mu.Unlock()
	}()
	j, err := r.store.GetJob(ctx, jobID)
	if err != nil || j.State == store.JobDone {
		return j, err
	}
	select {
	case <-ch:
		return r.store.GetJob(ctx, jobID)
	case <-ctx.Done():
		return j, ctx.Err()
	}
}

// Job reads a job.
func (r *Receiver) Job(ctx context.Context, id string) (Job, error) { return r.store.GetJob(ctx, id) }

// Record appends an event that did not come through HTTP (kind workflow) and notifies
// about it unless dedupeKey names an event already recorded.
func (r *Receiver) Record(ctx context.Context, ev Event, dedupeKey string) (Event, bool, error) {
	if !store.ValidKind(ev.Kind) {
		return Event{}, false, fmt.Errorf("webhook: unknown event kind %q", ev.Kind)
	}
	if ev.Time.IsZero() {
		ev.Time = r.now().UTC()
	}
	if ev.Data != nil {
		ev.Data = sanitizeMap(ev.Data, 0)
	}
	stored, dup, err := r.store.Append(ctx, ev, dedupeKey)
	if err != nil || dup {
		if dup {
			r.metrics.duplicates.Add(1)
		}
		return stored, dup, err
	}
	r.metrics.accept(stored.Kind)
	r.delivered(stored)
	return stored, false, nil
}
