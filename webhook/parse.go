package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// DefaultMaxBody is the largest request body the receiver reads (64 KiB).
const DefaultMaxBody = 64 << 10

// Limits on what a callback may put into a stored event: the sender is not trusted.
const (
	maxKeys      = 64   // keys per object
	maxItems     = 64   // items per array
	maxDepth     = 5    // nesting
	maxKeyLen    = 128  // bytes per key
	maxStringLen = 1024 // bytes per string value
	maxTextLen   = 2048 // bytes kept of a non-JSON, non-form body
)

// Errors of ParseCallback.
var (
	ErrBodyTooLarge = errors.New("webhook: body too large")
	ErrBadBody      = errors.New("webhook: unreadable body")
)

// Callback is what a request to a webhook path carried, sanitized: secrets redacted
// (see invapi.IsSecretKey), sizes bounded, strings valid UTF-8. The path (which holds the
// URL secret) is never part of it.
type Callback struct {
	Method      string
	ContentType string         // media type without parameters, "" when absent
	Query       map[string]any // query-string parameters
	Body        map[string]any // form fields or a JSON object; a JSON non-object is under "json", other text under "text"
	BodyBytes   int            // size of the body read
}

// Data is the callback as stored in an event's Data.
func (c *Callback) Data() map[string]any {
	d := map[string]any{"method": c.Method}
	if c.ContentType != "" {
		d["content_type"] = c.ContentType
	}
	if len(c.Query) > 0 {
		d["query"] = c.Query
	}
	if len(c.Body) > 0 {
		d["body"] = c.Body
	}
	return d
}

// ParseCallback reads a webhook request the way a freshly installed server or invapi may
// send it: GET or POST; empty, form (urlencoded or multipart), JSON or text body. It
// reads at most maxBody bytes (ErrBodyTooLarge beyond); malformed JSON is kept as text
// rather than refused, because a curl one-liner in a post-install script should not
// lose its event over a quoting mistake.
func ParseCallback(r *http.Request, maxBody int64) (*Callback, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	cb := &Callback{Method: r.Method}
	if q := r.URL.Query(); len(q) > 0 {
		cb.Query = sanitizeValues(q)
	}
	if r.ContentLength > maxBody {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return cb, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	cb.ContentType = truncate(mt, 100)

	if mt == "multipart/form-data" {
		return parseMultipart(r, cb, params["boundary"], maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrBodyTooLarge
		}
		return nil, fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	if int64(len(body)) > maxBody {
		return nil, ErrBodyTooLarge
	}
	cb.BodyBytes = len(body)
	cb.Body = parseBody(mt, body)
	return cb, nil
}

// parseBody interprets a body by its media type, falling back on its shape.
func parseBody(mt string, body []byte) map[string]any {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		(mt != "application/x-www-form-urlencoded" && (trimmed[0] == '{' || trimmed[0] == '['))
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil && !dec.More() {
			if m, ok := v.(map[string]any); ok {
				return sanitizeMap(m, 0)
			}
			return map[string]any{"json": sanitize(v, 0)}
		}
		return map[string]any{"text": textOf(trimmed), "parse_error": "invalid JSON"}
	}
	if mt == "application/x-www-form-urlencoded" || (mt == "" && looksLikeForm(trimmed)) {
		if vals, err := url.ParseQuery(string(trimmed)); err == nil {
			return sanitizeValues(vals)
		}
	}
	return map[string]any{"text": textOf(trimmed)}
}

func looksLikeForm(b []byte) bool {
	return bytes.IndexByte(b, '=') > 0 && !bytes.ContainsAny(b, " \n\t{}<>")
}

func parseMultipart(r *http.Request, cb *Callback, boundary string, maxBody int64) (*Callback, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart without boundary", ErrBadBody)
	}
	lr := &countingReader{r: io.LimitReader(r.Body, maxBody+1)}
	mr := multipart.NewReader(lr, boundary)
	vals := url.Values{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.n > maxBody {
				return nil, ErrBodyTooLarge
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, ErrBodyTooLarge
			}
			return nil, fmt.Errorf("%w: %v", ErrBadBody, err)
		}
		b, err := io.ReadAll(io.LimitReader(p, maxStringLen+1))
		if err == nil {
			_, err = io.Copy(io.Discard, p)
		}
		if err != nil {
			if lr.n > maxBody {
				return nil, ErrBodyTooLarge
			}
			return nil, fmt.Errorf("%w: %v", ErrBadBody, err)
		}
		name := p.FormName()
		if name == "" {
			continue
		}
		if p.FileName() != "" {
			vals.Add(name, fmt.Sprintf("(file %q, not stored)", truncate(p.FileName(), 64)))
			continue
		}
		vals.Add(name, string(b))
	}
	if lr.n > maxBody {
		return nil, ErrBodyTooLarge
	}
	cb.BodyBytes = int(lr.n)
	if len(vals) > 0 {
		cb.Body = sanitizeValues(vals)
	}
	return cb, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sanitizeValues turns url.Values into a map: a single value as a string, several as a list.
func sanitizeValues(v url.Values) map[string]any {
	m := make(map[string]any, len(v))
	for k, vs := range v {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			list := make([]any, len(vs))
			for i, s := range vs {
				list[i] = s
			}
			m[k] = list
		}
	}
	return sanitizeMap(m, 0)
}

// sanitizeMap bounds and redacts an object. Keys beyond maxKeys (in sorted order) are
// dropped and "_truncated" is set.
func sanitizeMap(m map[string]any, depth int) map[string]any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, min(len(keys), maxKeys+1))
	for i, k := range keys {
		if i >= maxKeys {
			out["_truncated"] = true
			break
		}
		key := truncate(k, maxKeyLen)
		if invapi.IsSecretKey(key) || isSecretish(key) {
			out[key] = invapi.Redacted
			continue
		}
		out[key] = sanitize(m[k], depth+1)
	}
	return out
}

// isSecretish catches names invapi's list does not: anything mentioning a key or
// password, except the names that identify keys (key_id, token_view).
func isSecretish(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "key_id", "token_view", "api_key_id", "ssh_key", "keyid":
		return false
	}
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || n == "key" ||
		strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "apikey") || n == "authorization" || n == "cookie"
}

func sanitize(v any, depth int) any {
	if depth > maxDepth {
		return "(nested too deep)"
	}
	switch x := v.(type) {
	case nil, bool, json.Number, float64:
		return x
	case string:
		return truncate(x, maxStringLen)
	case map[string]any:
		return sanitizeMap(x, depth)
	case []any:
		n := min(len(x), maxItems)
		out := make([]any, 0, n+1)
		for _, e := range x[:n] {
			out = append(out, sanitize(e, depth+1))
		}
		if len(x) > maxItems {
			out = append(out, fmt.Sprintf("(%d more)", len(x)-maxItems))
		}
		return out
	default:
		return truncate(fmt.Sprint(x), maxStringLen)
	}
}

// truncate returns s as valid UTF-8 of at most n bytes.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func textOf(b []byte) string {
	if len(b) > maxTextLen {
		b = b[:maxTextLen]
	}
	return truncate(string(b), maxTextLen)
}
