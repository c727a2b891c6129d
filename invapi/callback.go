package invapi

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// CallbackStatus is the state of an asynchronous invapi job (reinstall, deploy, NAT,
// IPMI user ...), as eq_callback/check or nat_callback/check report it:
//
//	{"result":"Stage","scope":" (1/5) OS installation started",
//	 "context":{"action":"reinstall","id":"42253","location":"NL"},"key":"aa71..."}
type CallbackStatus struct {
	Result  string // "Not ready", "Stage", "OK", "Error" ...
	Scope   string // progress or result text
	Stage   int    // n of "(n/5)" in Scope, 0 if absent
	Stages  int    // 5 of "(n/5)"
	Done    bool   // finished successfully
	Failed  bool   // finished with an error (Scope says why)
	Context map[string]any
	Key     string
	Raw     map[string]any
}

var stageRE = regexp.MustCompile(`\((\d+)\s*/\s*(\d+)\)`)

// parseCallback reads a job status. Done: result OK/success, or scope says
// "deploy_done"/"autodeploy completed", or context has both ip and id (the public
// clients' rules). Failed: an error result, or scope/debug says failed, cancelled or
// names a PIN refusal.
func parseCallback(f map[string]any, key string) *CallbackStatus {
	st := &CallbackStatus{Raw: f, Key: key}
	st.Result = scalarText(f["result"])
	st.Scope = scalarText(f["scope"])
	st.Context, _ = f["context"].(map[string]any)
	if k := keyOf(f); k != "" {
		st.Key = k
	}
	if m := stageRE.FindStringSubmatch(st.Scope); m != nil {
		st.Stage, _ = strconv.Atoi(m[1])
		st.Stages, _ = strconv.Atoi(m[2])
	}
	result := strings.ToLower(strings.TrimSpace(st.Result))
	scope := strings.ToLower(st.Scope)
	debug := strings.ToLower(scalarText(f["debug"]))

	switch result {
	case "error", "err", "failed", "fail", "failure", "cancelled", "canceled", "false":
		st.Failed = true
	default:
		if n, err := strconv.ParseFloat(result, 64); err == nil && n != 0 && n != 1 {
			st.Failed = true
		}
	}
	if containsAny(scope, []string{"failed", "cancelled", "canceled", "aborted", "timed out"}) ||
		containsAny(scope, pinStrict) || containsAny(debug, pinStrict) {
		st.Failed = true
	}
	if st.Failed {
		return st
	}
	switch {
	case result == "ok" || result == "success" || result == "done" || result == "completed":
		st.Done = true
	case strings.Contains(scope, "deploy_done") || strings.Contains(scope, "autodeploy completed"):
		st.Done = true
	case scalarText(st.Context["ip"]) != "" && nonZero(scalarText(st.Context["id"])):
		st.Done = true
	}
	return st
}

func scalarText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return string(t)
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}

func nonZero(s string) bool { return s != "" && s != "0" }

// CheckCallback asks eq_callback/check for the state of an async job. The key is sent
// both as "key" (what the public clients send) and as "reinstall_key" (the name in
// 001's parameter table): PHP ignores the field it does not read, so either server
// behaviour finds the key. A job that ended in failure is a status with Failed set,
// not an error; an unknown key is a KindNotFound error.
func (c *Client) CheckCallback(ctx context.Context, key string) (*CallbackStatus, error) {
	return c.check(ctx, &Request{
		Module: "eq_callback", Action: "check",
		Params:   map[string]any{"key": key, "reinstall_key": key},
		ReadOnly: true,
	}, key)
}

func (c *Client) check(ctx context.Context, req *Request, key string) (*CallbackStatus, error) {
	if key == "" {
		return nil, &Error{Module: req.Module, Action: req.Action, Kind: KindAPI, Message: "empty async key"}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		e, _ := AsError(err)
		if e != nil && resp != nil && looksLikeJob(resp.Fields) && (e.Kind == KindAPI || e.Kind == KindPIN) {
			st := parseCallback(resp.Fields, key)
			st.Failed, st.Done = true, false
			return st, nil
		}
		return nil, err
	}
	if resp.Fields == nil {
		return nil, &Error{Module: req.Module, Action: req.Action, Kind: KindProtocol, HTTPStatus: resp.HTTPStatus,
			Message: "job status is not a JSON object"}
	}
	return parseCallback(resp.Fields, key), nil
}

// looksLikeJob tells a failed job's report ({"result":"Error","scope":...}) from an
// error about the check itself ({"code":-1,"message":"AsyncKey x not found"}).
func looksLikeJob(f map[string]any) bool {
	if f == nil {
		return false
	}
	_, scope := f["scope"]
	_, ctx := f["context"]
	return scope || ctx
}
