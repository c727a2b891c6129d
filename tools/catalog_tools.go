// Package tools turns the invapi catalog into MCP tools: one tool per documented action,
// with its generated schema and annotations, plus the generic tool for undocumented
// actions, tool discovery, resources and prompts.
// It may import policy, webhook, invapi, schemas and state; never cmd.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// Caller is the part of the invapi client the tools use.
type Caller interface {
	Do(ctx context.Context, req *invapi.Request) (*invapi.Response, error)
}

// PINSource hands the tool layer the account PIN for the call in ctx, after the policy
// has had a human confirm it. The PIN goes straight into the upstream request and nowhere
// else.
type PINSource func(ctx context.Context) string

// Definition returns the MCP tool for a catalog action: generated schema, annotations
// that follow the class, and a description that tells the model how confirmation works.
func Definition(a *schemas.Action) mcp.Tool {
	desc := a.Description
	switch {
	case a.Class == schemas.Destructive && a.PIN:
		desc += " Destructive: a human confirms it; the server adds the PIN (never ask for it)."
	case a.Class == schemas.Destructive:
		desc += " Destructive: a human confirms it."
	case a.PIN && a.Class == schemas.Write:
		// The policy confirms every write that needs the PIN.
		desc += " A human confirms it; the server adds the PIN (never ask for it)."
	case a.PIN:
		desc += " The server adds the PIN (never ask for it)."
	}
	if a.Async && a.Class != schemas.Read {
		// A read's answer already holds its data; only changes have progress to follow.
		desc += " Returns a key to poll."
	}
	return mcp.Tool{
		Name:           a.Tool,
		Description:    desc,
		RawInputSchema: a.InputSchema,
		Annotations:    annotations(a.Class, a.Idempotent),
	}
}

func annotations(c schemas.Class, idempotent bool) mcp.ToolAnnotation {
	ro := c == schemas.Read
	return mcp.ToolAnnotation{
		ReadOnlyHint:    mcp.ToBoolPtr(ro),
		DestructiveHint: mcp.ToBoolPtr(c == schemas.Destructive),
		IdempotentHint:  mcp.ToBoolPtr(ro || idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(true),
	}
}

// Request turns validated tool arguments into the upstream request. The policy and dry
// run use the same function, so what they show is what would be sent.
func Request(a *schemas.Action, args map[string]any) *invapi.Request {
	return &invapi.Request{
		Module:   a.Module,
		Action:   a.Action,
		Endpoint: a.Endpoint,
		Method:   a.Method(),
		Params:   cleanArgs(args),
		NoAuth:   a.NoAuth,
		ReadOnly: a.ReadOnly(),
		// Leaf names: the client redacts nested secrets such as params[password] by leaf.
		SecretKeys: a.SecretFields(),
	}
}

// RequestWithPIN is Request plus the account PIN when the action wants it and the
// policy has released it for this call (pin reads it from ctx). Every path that sends a
// catalog action builds its request here.
func RequestWithPIN(ctx context.Context, a *schemas.Action, args map[string]any, pin PINSource) *invapi.Request {
	r := Request(a, args)
	delete(r.Params, "pin") // the PIN slot is the policy's alone
	if a.PIN && pin != nil {
		if p := pin(ctx); p != "" {
			r.Params[a.PINWire()] = p
		}
	}
	return r
}

// pinLike matches parameter names that carry a PIN (pin, old_pin, new_pin, pincode).
var pinLike = regexp.MustCompile(`(?i)(^|_)pin(code)?$|^pincode$|^pin_`)

// pinLikeKey returns the first key at any depth of params that looks like a PIN ("" if
// none): the model never supplies one, so it cannot guess the account PIN through
// invapi_call either.
func pinLikeKey(params map[string]any) string {
	for k, v := range params {
		if pinLike.MatchString(strings.TrimSuffix(k, "[]")) {
			return k
		}
		if m, ok := v.(map[string]any); ok {
			if inner := pinLikeKey(m); inner != "" {
				return k + "." + inner
			}
		}
	}
	return ""
}

// cleanArgs copies the arguments, dropping nulls, so the caller's map is never mutated
// (the PIN is added to the copy only).
func cleanArgs(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if v == nil {
			continue
		}
		if m, ok := v.(map[string]any); ok {
			v = cleanArgs(m)
		}
		out[k] = v
	}
	return out
}

// handler calls invapi for one catalog action.
func handler(a *schemas.Action, c Caller, pin PINSource) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		resp, err := c.Do(ctx, RequestWithPIN(ctx, a, req.GetArguments(), pin))
		if err != nil {
			return ErrorResult(a, req.GetArguments(), err), nil
		}
		return Result(a.Module, a.Action, resp), nil
	}
}

// maxTextBytes bounds the JSON echoed into the text block the model reads; the full
// response stays in structuredContent.
const maxTextBytes = 24 << 10

// Result renders a successful invapi response: structured content plus a short summary
// and the JSON (clients that only pass text to the model still see the data).
func Result(module, action string, resp *invapi.Response) *mcp.CallToolResult {
	if secretURLToken.Match(resp.Body) {
		resp = scrubbed(resp)
	}
	if module == "auth" {
		resp = withoutSessionTokens(resp)
	}
	structured := any(resp.Fields)
	if resp.Fields == nil {
		var v any
		if json.Unmarshal(resp.Body, &v) == nil {
			structured = map[string]any{"data": v}
		} else {
			structured = map[string]any{}
		}
	}
	summary := fmt.Sprintf("%s/%s succeeded.", module, action)
	if resp.Key != "" {
		follow := "eq_callback_check with reinstall_key=" + resp.Key
		if module == "nat" {
			follow = "nat_callback_check with key=" + resp.Key
		}
		summary += " Async key " + resp.Key + ": " + follow + " reports the job's progress."
	}
	body := string(resp.Body)
	if len(body) > maxTextBytes {
		body = body[:maxTextBytes] + fmt.Sprintf("\n… (%d more bytes in structuredContent)", len(resp.Body)-maxTextBytes)
	}
	res := mcp.NewToolResultStructured(structured, summary+"\n"+body)
	return res
}

// secretURLToken finds the secrets hostkey-mcp itself puts into invapi: the per-job
// post_install_callback path and the login-alert token an API key notifies. invapi echoes
// them back (api_keys_list, order details); the model must not see them.
var secretURLToken = regexp.MustCompile(`(/cb/install/|/alerts/login/)[A-Za-z0-9_-]{16,}`)

func scrubbed(resp *invapi.Response) *invapi.Response {
	body := secretURLToken.ReplaceAll(resp.Body, []byte("${1}[REDACTED]"))
	out := *resp
	out.Body = body
	var fields map[string]any
	if json.Unmarshal(body, &fields) == nil {
		out.Fields = fields
	}
	return &out
}

// sessionTokenKey names the fields of auth results that carry a session token (token,
// access_token, ...; not token_expire).
var sessionTokenKey = regexp.MustCompile(`(?i)(^|_)token$`)

// withoutSessionTokens redacts session tokens in an auth result. hostkey-mcp runs the
// invapi session; a token in the model's context is a credential to the whole account
// that outlives the conversation.
func withoutSessionTokens(resp *invapi.Response) *invapi.Response {
	var v any
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber() // keep numbers as invapi wrote them
	if dec.Decode(&v) != nil || !redactKeys(v, sessionTokenKey) {
		return resp
	}
	out := *resp
	out.Body, _ = json.Marshal(v)
	out.Fields, _ = v.(map[string]any)
	return &out
}

// redactKeys replaces, in place, every non-empty value whose key matches re.
func redactKeys(v any, re *regexp.Regexp) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if re.MatchString(k) {
				if val != nil && val != "" {
					x[k] = invapi.Redacted
					changed = true
				}
				continue
			}
			changed = redactKeys(val, re) || changed
		}
	case []any:
		for _, val := range x {
			changed = redactKeys(val, re) || changed
		}
	}
	return changed
}

// ErrorResult renders an invapi failure as an isError result whose text says what failed
// and what to do next. Secrets never reach it: invapi.Error messages are redacted.
func ErrorResult(a *schemas.Action, args map[string]any, err error) *mcp.CallToolResult {
	var text strings.Builder
	fmt.Fprintf(&text, "%s/%s failed: %v.", a.Module, a.Action, err)
	if hint := nextStep(a, args, err); hint != "" {
		text.WriteString(" ")
		text.WriteString(hint)
	}
	return mcp.NewToolResultError(text.String())
}

func nextStep(a *schemas.Action, args map[string]any, err error) string {
	var refused *policy.RefusedError
	if errors.As(err, &refused) {
		return "Nothing was sent: hostkey-mcp's policy allows this request only inside a call a human confirmed. Call the tool for this action directly."
	}
	ids := a.ServerIDs(args)
	switch invapi.KindOf(err) {
	case invapi.KindNotFound:
		if msg := strings.ToLower(err.Error()); len(ids) > 0 && (strings.Contains(msg, "server") || strings.Contains(msg, "nothing found")) {
			return fmt.Sprintf("Server %d is not in this token's server list: call eq_update_servers, then retry; eq_list shows the servers you can use.", ids[0])
		}
		return "Check the identifiers (list tools such as eq_list show valid ones)."
	case invapi.KindAuth:
		return "invapi rejected the session or API key: run `hostkey-mcp doctor` to check HOSTKEY_API_KEY and the key's IP allowlist."
	case invapi.KindPIN:
		return "invapi refused the PIN. Do not retry: PIN actions are paused for a cool-down; ask the operator to check the configured PIN."
	case invapi.KindRateLimited:
		return "invapi is rate limiting: wait before retrying."
	case invapi.KindServer, invapi.KindTransport, invapi.KindTimeout, invapi.KindProtocol:
		if a.ReadOnly() {
			return "invapi is unreachable or failing; reads were retried. Try again later."
		}
		return "The outcome is unknown and this call was not retried (it changes state): check with eq_show or eq_status before trying again."
	case invapi.KindCanceled:
		return "The call was cancelled."
	case invapi.KindInvalidParams:
		return "Nothing was sent to invapi: name parameters with letters, digits and _ only, and pass nested values as JSON objects or arrays."
	}
	if msg := strings.ToLower(err.Error()); containsAnyOf(msg, stateRefusals) {
		// The request was well-formed; the server's state refused it.
		return "invapi refused this in the server's current state, not because of the arguments: check the state with eq_status or eq_show, then change it (e.g. power on) or wait for the running job."
	}
	return "Check the arguments against the tool's schema and the message above."
}

// stateRefusals are invapi messages that refuse an action for the server's state.
var stateRefusals = []string{"powered off", "not finished", "in progress", "already running", "is busy", "is suspended", "is locked", "is blocked"}

func containsAnyOf(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
