package invapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Response is a successful invapi answer.
type Response struct {
	HTTPStatus int
	Body       json.RawMessage // the raw JSON body
	Fields     map[string]any  // the top-level object, numbers as json.Number; nil if not an object
	Key        string          // async key: the "key" field, else "callback", when present
}

// decodeResponse turns one HTTP answer into a Response or an *Error. For a JSON object
// that is a business error it returns both: the client's callback helpers read the
// fields of a failed job. Messages may quote the body: the caller redacts them.
func decodeResponse(module, action string, status int, header http.Header, body []byte) (*Response, *Error) {
	fail := func(kind ErrorKind, msg string) *Error {
		return &Error{Module: module, Action: action, Kind: kind, HTTPStatus: status, Message: msg}
	}

	trimmed := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))) // PHP files saved with a BOM
	fields, value, jsonErr := parseJSON(trimmed)

	// Transport-level statuses first: their bodies are whatever the proxy produced.
	switch {
	case status == http.StatusTooManyRequests:
		e := fail(KindRateLimited, bodyMessage(fields, trimmed, "rate limited"))
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
		return nil, e
	case status >= 500:
		e := fail(KindServer, bodyMessage(fields, trimmed, http.StatusText(status)))
		e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
		return nil, e
	case status == http.StatusUnauthorized:
		e := fail(KindAuth, bodyMessage(fields, trimmed, "unauthorized"))
		e.Code = codeOf(fields)
		return nil, e
	case status >= 300 && status < 400:
		return nil, fail(KindProtocol, "unexpected redirect to "+header.Get("Location"))
	}

	if len(trimmed) == 0 {
		return nil, fail(KindProtocol, "empty response body")
	}
	if jsonErr != nil {
		what := "response is not JSON"
		if trimmed[0] == '<' {
			what = "response is HTML, not JSON"
		}
		return nil, fail(KindProtocol, what+": "+snippet(trimmed))
	}
	if value == nil && fields == nil {
		return nil, fail(KindProtocol, "response body is JSON null")
	}

	resp := &Response{HTTPStatus: status, Body: json.RawMessage(body), Fields: fields}
	if fields != nil {
		resp.Key = keyOf(fields)
		if e := envelopeError(fields); e != nil {
			e.Module, e.Action, e.HTTPStatus = module, action, status
			return resp, e
		}
	}
	if status < 200 || status >= 300 {
		// A 4xx with a body that carries no error signal: still not a success.
		return nil, fail(KindProtocol, "unexpected HTTP status: "+snippet(trimmed))
	}
	return resp, nil
}

// parseJSON decodes one JSON value (numbers as json.Number) and rejects trailing data.
func parseJSON(b []byte) (map[string]any, any, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("trailing data after JSON value")
	}
	m, _ := v.(map[string]any)
	return m, v, nil
}

// envelopeError normalizes invapi's error envelopes; nil means success.
//
//	{"code":-1,"message":"..."}  {"code":-2,"message":"Authentication required"}
//	{"result":-1,"error":"..."}  {"result":-1,"error":"...","code":"NO_APPROPRIATE_SERVERS"}
//	{"result":"Error","scope":"cancelled"}
//	{"result":"OK","scope":"Invalid pin code","debug":"Blocked For Security Purposes"}
//
// Success: result "OK", "success", "", 0, 1, true, "Not ready", "Stage" (or any other
// non-error word, or an object such as auth/login's), or no result and no error signal.
func envelopeError(f map[string]any) *Error {
	errText := textField(f["error"])
	msg := textField(f["message"])
	scope, _ := f["scope"].(string)
	debug, _ := f["debug"].(string)
	code, codeNum, hasNumCode := numericCode(f["code"])

	resultVal, hasResult := f["result"]
	isErr := false
	resultCode := ""
	if hasResult {
		switch r := resultVal.(type) {
		case json.Number:
			if n, err := r.Float64(); err == nil && n != 0 && n != 1 {
				isErr, resultCode = true, string(r)
			}
		case string:
			switch t := strings.ToLower(strings.TrimSpace(r)); t {
			case "error", "err", "failed", "fail", "failure", "cancelled", "canceled", "false", "denied":
				isErr = true
			default:
				if n, err := strconv.ParseFloat(t, 64); err == nil && n != 0 && n != 1 {
					isErr, resultCode = true, t
				}
			}
		case bool:
			isErr = !r
		}
		// An explicit success still fails on a non-empty error or a negative code.
		if errText != "" || (hasNumCode && codeNum < 0) {
			isErr = true
		}
	} else {
		switch {
		case hasNumCode && codeNum != 0:
			isErr = true
		case errText != "":
			isErr = true
		case msg != "" && !hasNumCode:
			// No result and no code: a bare message is how invapi reports errors.
			isErr = true
		}
	}

	// check_pin answers a wrong PIN with "result":"OK" and the verdict in scope/debug.
	if !isErr {
		for _, t := range []string{scope, debug, msg} {
			if containsAny(strings.ToLower(t), pinStrict) {
				return &Error{Kind: KindPIN, Message: joinNonEmpty(scope, debug, msg)}
			}
		}
		return nil
	}

	text := firstNonEmpty(errText, msg)
	if text == "" && scope != "" && len(scope) < 500 {
		text = scope
	}
	if text == "" {
		text = debug
	}
	if text == "" {
		if r := scalarText(resultVal); r != "" {
			text = "result " + r
		} else {
			text = "request failed"
		}
	}
	if code == "" {
		code = codeOf(f) // a symbolic code such as NO_APPROPRIATE_SERVERS
	}
	if (code == "" || code == "0") && resultCode != "" {
		code = resultCode
	}
	kind := classify(code, text+" "+debug)
	return &Error{Kind: kind, Code: code, Message: text}
}

// numericCode reads "code" as a number (JSON number or numeric string).
func numericCode(v any) (text string, n float64, ok bool) {
	switch c := v.(type) {
	case json.Number:
		f, err := c.Float64()
		return string(c), f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(c), 64)
		if err == nil {
			return strings.TrimSpace(c), f, true
		}
	}
	return "", 0, false
}

func codeOf(f map[string]any) string {
	switch c := f["code"].(type) {
	case json.Number:
		return string(c)
	case string:
		return c
	}
	return ""
}

// textField reads an error/message field: a string, or an object with a message.
func textField(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case map[string]any:
		return firstNonEmpty(textField(t["message"]), textField(t["error"]))
	case []any:
		var parts []string
		for _, it := range t {
			if s := textField(it); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

func keyOf(f map[string]any) string {
	for _, name := range []string{"key", "callback"} {
		switch v := f[name].(type) {
		case string:
			if v != "" {
				return v
			}
		case json.Number:
			if v != "0" {
				return string(v)
			}
		}
	}
	return ""
}

func bodyMessage(fields map[string]any, body []byte, fallback string) string {
	if fields != nil {
		if t := firstNonEmpty(textField(fields["error"]), textField(fields["message"])); t != "" {
			return t
		}
	}
	if len(body) > 0 && body[0] != '<' && body[0] != '{' {
		return fallback + ": " + snippet(body)
	}
	return fallback
}

// snippet is a short single-line excerpt of a body, for error messages.
func snippet(b []byte) string {
	const max = 160
	if len(b) > max {
		b = b[:max]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) >= max-3 {
		s += "..."
	}
	return s
}

// parseRetryAfter reads delta-seconds or an HTTP date; the caller caps it.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func joinNonEmpty(s ...string) string {
	var parts []string
	seen := map[string]bool{}
	for _, v := range s {
		v = strings.TrimSpace(v)
		if v != "" && !seen[v] {
			seen[v] = true
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, ": ")
}
