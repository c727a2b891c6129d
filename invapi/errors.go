package invapi

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrorKind says what went wrong, coarsely enough for callers to decide what to do
// (log in again, ask for the PIN, retry later, give up).
type ErrorKind string

const (
	KindAPI         ErrorKind = "api"          // invapi refused the request (business error)
	KindAuth        ErrorKind = "auth"         // token missing, invalid or expired; bad API key
	KindNotFound    ErrorKind = "not_found"    // the server, key or object does not exist
	KindPIN         ErrorKind = "pin"          // wrong or missing PIN, or PIN brute-force lock
	KindRateLimited ErrorKind = "rate_limited" // HTTP 429 or a rate-limit message
	KindServer      ErrorKind = "server"       // HTTP 5xx
	KindTransport   ErrorKind = "transport"    // network failure before a complete answer
	KindTimeout     ErrorKind = "timeout"      // HTTP client timeout or context deadline
	KindProtocol    ErrorKind = "protocol"     // not a JSON answer: HTML, empty, oversize, redirect
	KindCanceled    ErrorKind = "canceled"     // the caller's context was canceled
	// KindInvalidParams: the client refused the request before sending it, because a
	// parameter name would not reach invapi as written (Err is a *ParamNameError).
	KindInvalidParams ErrorKind = "invalid_params"
)

// Error is the only error type the client returns for a request. Message and Err are
// redacted before the Error is built, so printing it is always safe.
type Error struct {
	Module, Action string
	Kind           ErrorKind
	Code           string // invapi's "code" (or the numeric "result"), as text
	Message        string
	HTTPStatus     int
	RetryAfter     time.Duration // from Retry-After, capped by the retry policy
	Err            error         // underlying cause (network error, ctx error), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invapi ")
	b.WriteString(e.Module)
	if e.Action != "" {
		b.WriteByte('/')
		b.WriteString(e.Action)
	}
	b.WriteString(": ")
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		b.WriteString(": ")
	}
	if e.Code != "" {
		b.WriteString("[code ")
		b.WriteString(e.Code)
		b.WriteString("] ")
	}
	switch {
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(string(e.Kind))
		b.WriteString(" error")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether repeating the same request may succeed. Only transient
// transport-level failures qualify; business, auth and PIN errors never do. The client
// retries reads only, whatever this says.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindTransport, KindTimeout, KindRateLimited, KindServer:
		return true
	}
	return false
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err: the *Error's kind, KindCanceled/KindTimeout for bare
// context errors, "" for nil or foreign errors.
func KindOf(err error) ErrorKind {
	if err == nil {
		return ""
	}
	if e, ok := AsError(err); ok {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	return ""
}

// IsAuth reports whether err means the session token (or API key) was refused.
func IsAuth(err error) bool { return KindOf(err) == KindAuth }

// IsRetryable reports whether err is transient (see Error.Retryable).
func IsRetryable(err error) bool {
	e, ok := AsError(err)
	return ok && e.Retryable()
}

// ctxError turns a done context into the client's error; the ctx error stays in the
// chain so errors.Is(err, context.Canceled) keeps working.
func ctxError(ctx context.Context, module, action string) *Error {
	err := ctx.Err()
	if err == nil {
		err = context.Canceled
	}
	kind := KindCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		kind = KindTimeout
	}
	return &Error{Module: module, Action: action, Kind: kind, Err: err}
}

// Message patterns, lower case. They come from the docs and the public clients; see
// /work/shared/notes/invapi-wire-facts.md.
var (
	authPatterns = []string{
		"authentication required", "invalid token", "invalid hash", "token expired",
		"token has expired", "token is expired", "session expired", "not authenticated",
		"invalid api key",
	}
	// Strict PIN signals: they override a "result":"OK" (check_pin answers that way).
	pinStrict = []string{
		"invalid pin", "wrong pin", "incorrect pin", "blocked for security purposes",
	}
	// Looser PIN signals, used only once the answer is already known to be an error.
	pinLoose = []string{"pin code", "pin is ", "pin not set", "empty pin", "pin required"}

	notFoundPatterns = []string{
		"not found", "no such", "unknown server", "server not exist", "does not exist",
		"nothing found",
	}
	rateLimitPatterns = []string{"too many requests", "rate limit"}
)

func containsAny(s string, pats []string) bool {
	for _, p := range pats {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// classify picks the kind of a business error from its code and message. Unknown
// messages stay KindAPI, which is never retried.
func classify(code, text string) ErrorKind {
	t := strings.ToLower(text)
	switch {
	case containsAny(t, authPatterns):
		return KindAuth
	case code == "-2" && !strings.Contains(t, "action required"):
		// -2 is invapi's auth code, but 000 also shows {"code":-2,"message":"EQ: action
		// required"}: a malformed request that a new login cannot fix.
		return KindAuth
	case containsAny(t, pinStrict) || containsAny(t, pinLoose):
		return KindPIN
	case containsAny(t, rateLimitPatterns):
		return KindRateLimited
	case containsAny(t, notFoundPatterns):
		return KindNotFound
	}
	return KindAPI
}
