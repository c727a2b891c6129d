package invapi

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// Redacted replaces every secret value in logs and errors.
const Redacted = "[REDACTED]"

// secretNames are secret wherever they appear, at any nesting level. "key" is not here:
// it is the API key only in auth/login (elsewhere it names an async key or an SSH key,
// which callers need to see); the client adds it for the auth module.
var secretNames = map[string]bool{
	"pin": true, "new_pin": true, "old_pin": true,
	"root_pass": true, "password": true, "admin_pass": true, "pass": true, "passwd": true,
	"token": true, "api_key": true, "apikey": true, "secret": true, "whmcs_token": true,
	// URLs that carry hostkey-mcp's own webhook secrets (per-job callback, login alerts).
	"post_install_callback": true, "login_notify_address": true,
}

// minSecretLen is the shortest value replaced inside free text: shorter values (a
// one-digit test PIN) would shred every message and cannot be hidden that way anyway.
const minSecretLen = 4

// IsSecretKey reports whether a parameter name holds a secret: the built-in names, names
// ending in _pass, _password, _pin, _token or _secret, and any name in extra. A wire name
// such as "params[root_pass]" or "ips[]" is judged by its last segment. Case-insensitive.
func IsSecretKey(name string, extra ...string) bool {
	n := strings.ToLower(leafName(name))
	if secretNames[n] {
		return true
	}
	for _, suf := range []string{"_pass", "_password", "_pin", "_token", "_secret"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	for _, e := range extra {
		if strings.EqualFold(leafName(e), n) {
			return true
		}
	}
	return false
}

// leafName returns the last named segment of a PHP wire name: "a[b][]" → "b".
func leafName(name string) string {
	name = strings.TrimSuffix(name, "[]")
	if strings.HasSuffix(name, "]") {
		if i := strings.LastIndexByte(name, '['); i >= 0 {
			return name[i+1 : len(name)-1]
		}
	}
	return name
}

// RedactParams returns a deep copy of params in which the value of every secret key
// (see IsSecretKey) is Redacted. params itself is not modified.
func RedactParams(params map[string]any, extra ...string) map[string]any {
	if params == nil {
		return nil
	}
	out := make(map[string]any, len(params))
	for k, v := range params {
		if IsSecretKey(k, extra...) {
			if v != nil {
				out[k] = Redacted
			}
			continue
		}
		out[k] = redactValue(v, extra)
	}
	return out
}

func redactValue(v any, extra []string) any {
	switch v := v.(type) {
	case map[string]any:
		return RedactParams(v, extra...)
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, s := range v {
			if IsSecretKey(k, extra...) {
				m[k] = Redacted
			} else {
				m[k] = s
			}
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, it := range v {
			out[i] = redactValue(it, extra)
		}
		return out
	}
	return v
}

// RedactString replaces every occurrence of each secret value in s. Values shorter than
// four bytes are left alone (see minSecretLen).
func RedactString(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < minSecretLen {
			continue
		}
		// A message may quote the request as it was sent (form- or URL-encoded) or as
		// JSON: those spellings go too.
		for _, v := range spellings(sec) {
			if strings.Contains(s, v) {
				s = strings.ReplaceAll(s, v, Redacted)
			}
		}
	}
	return s
}

// spellings are the ways a secret can appear in a message quoting a request or a JSON
// body: as is, form-encoded, path-encoded and JSON-escaped (with and without HTML
// escapes), the encoded ones first.
func spellings(sec string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		for _, o := range out {
			if o == v {
				return
			}
		}
		out = append(out, v)
	}
	add(url.QueryEscape(sec))
	add(url.PathEscape(sec))
	if b, err := json.Marshal(sec); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(sec) == nil {
		b := bytes.TrimSpace(buf.Bytes())
		add(string(b[1 : len(b)-1]))
	}
	add(sec)
	return out
}

// RedactQuery redacts the values of secret keys in an encoded form or query string;
// the rest is left byte for byte.
func RedactQuery(q string, extra ...string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if IsSecretKey(name, extra...) {
			parts[i] = k + "=" + url.QueryEscape(Redacted)
		}
	}
	return strings.Join(parts, "&")
}

// RedactURL redacts secret query parameters of a URL string (and any userinfo password).
func RedactURL(raw string, extra ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		base, q, ok := strings.Cut(raw, "?")
		if !ok {
			return raw
		}
		return base + "?" + RedactQuery(q, extra...)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		}
	}
	u.RawQuery = RedactQuery(u.RawQuery, extra...)
	return u.String()
}

// secretValues collects the values of secret keys in params (any depth), for scrubbing
// free text such as an error message that echoes the request.
func secretValues(params map[string]any, extra []string, into []string) []string {
	for k, v := range params {
		if IsSecretKey(k, extra...) {
			into = appendScalars(into, v)
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			into = secretValues(v, extra, into)
		case []any:
			for _, it := range v {
				if m, ok := it.(map[string]any); ok {
					into = secretValues(m, extra, into)
				}
			}
		case map[string]string:
			for kk, s := range v {
				if IsSecretKey(kk, extra...) {
					into = append(into, s)
				}
			}
		}
	}
	return into
}

func appendScalars(into []string, v any) []string {
	switch v := v.(type) {
	case nil:
	case []any:
		for _, it := range v {
			into = appendScalars(into, it)
		}
	case []string:
		into = append(into, v...)
	case map[string]any:
		for _, it := range v {
			into = appendScalars(into, it)
		}
	default:
		var e formEncoder
		encodeValue(&e, "x", v)
		if s, ok := strings.CutPrefix(e.b.String(), "x="); ok {
			if u, err := url.QueryUnescape(s); err == nil {
				s = u
			}
			into = append(into, s)
		}
	}
	return into
}
