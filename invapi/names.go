package invapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Parameter names on the wire. invapi is PHP, and PHP rewrites names as it fills $_POST:
// leading spaces go, the name is cut at a NUL byte, ' ' and '.' become '_', an unclosed
// '[' becomes '_', and a later duplicate overwrites an earlier one. So " action",
// "action%00x" and "action." (read as "action_") are not harmless typos: the first two
// replace the real action. The encoder therefore checks names instead of escaping them.

// wireNameGrammar is the only shape of parameter name hostkey-mcp sends: PHP reads such
// a name exactly as written.
const wireNameGrammar = `^[A-Za-z0-9_]+(\[[A-Za-z0-9_]*\])*$`

// maxNameDepth bounds the [index] parts of a name, well below PHP's
// max_input_nesting_level (64), past which PHP deletes the whole variable.
const maxNameDepth = 16

// maxFields stays below PHP's max_input_vars (1000), past which PHP ignores the rest of
// the body (the token among it).
const maxFields = 990

// ParamNameError is a parameter the client refused to send because invapi (PHP) would
// not read its name as written, would read it as a name hostkey-mcp sets itself
// (action, token, pin, the login key), or would merge it with another parameter.
// Nothing was sent. The client returns it inside an *Error of KindInvalidParams.
type ParamNameError struct {
	Name   string // the offending name as it would go on the wire (nested: "filter[a b]")
	ReadAs string // the variable PHP would read it as, when that differs or is reserved
	Reason string // why, in words
}

func (e *ParamNameError) Error() string {
	msg := fmt.Sprintf("parameter name %q is not allowed: %s", e.Name, e.Reason)
	if e.ReadAs != "" {
		msg += fmt.Sprintf("; PHP would read it as %q", e.ReadAs)
		if clientOwned(e.ReadAs) {
			msg += ", which hostkey-mcp sets itself"
		}
	}
	return msg
}

func clientOwned(base string) bool {
	return base == "action" || base == "token" || base == "pin" || base == "key"
}

// reservation says which PHP variables the caller's params may not fill in one request:
// "action" and "token" never (the client writes them), "pin" only as the single
// top-level "pin" holding a scalar (the slot tools.RequestWithPIN fills from the policy's
// PIN), "key" not in the client's own login (there it is the API key the client writes;
// elsewhere, e.g. nat_callback/check's async key or auth_login's key under --auth-tools,
// it is the caller's own parameter and overrides nothing the client set).
type reservation struct{ loginKey bool }

func requestReservation(req *Request) *reservation {
	return &reservation{loginKey: req.loginKey != ""}
}

// CheckParams runs the name checks the client runs before sending req, so a caller can
// refuse early (before asking a human to confirm, before counting a request as sent). It
// returns nil or the client's own refusal: an *Error of KindInvalidParams wrapping a
// *ParamNameError.
func CheckParams(req *Request) error {
	e := &formEncoder{}
	if err := e.params(req.Params, requestReservation(req)); err != nil {
		return invalidParams(req, err)
	}
	return nil
}

func invalidParams(req *Request, err error) *Error {
	return &Error{Module: req.Module, Action: req.Action, Kind: KindInvalidParams, Message: err.Error(), Err: err}
}

// checkNames checks the top-level names of params: grammar, reserved names, and two
// names that would fill the same PHP variable ("params" and "params[x]", "ids" and
// "ids[]"). Nested names are checked as they are written (formEncoder.pair).
func checkNames(keys []string, params map[string]any, res *reservation) error {
	type claim struct {
		key  string
		path []string // the PHP path up to the first append ("[]")
	}
	var claims []claim
	for _, k := range keys {
		if k == "" {
			continue // PHP drops an empty name; nothing is sent
		}
		if _, ok := wireNameDepth(k); !ok {
			return nameError(k)
		}
		path := wirePath(k)
		if res != nil {
			switch base := path[0]; {
			case base == "action" || base == "token":
				return &ParamNameError{Name: k, ReadAs: base, Reason: "hostkey-mcp sends " + base + " itself; remove it from the parameters"}
			case base == "pin" && !(k == "pin" && !isComposite(params[k])):
				return &ParamNameError{Name: k, ReadAs: base, Reason: "the PIN is added by hostkey-mcp after a human confirms, as a single value named pin"}
			case base == "key" && res.loginKey:
				return &ParamNameError{Name: k, ReadAs: base, Reason: "in the login request key is the API key, which hostkey-mcp sends itself"}
			}
		}
		if len(keys) == 1 || sendsNothing(params[k]) {
			continue
		}
		for _, c := range claims {
			if prefixOf(c.path, path) || prefixOf(path, c.path) {
				return &ParamNameError{Name: k, Reason: fmt.Sprintf("PHP would read it into the same variable as %q (one would overwrite or merge into the other); send only one of them", c.key)}
			}
		}
		claims = append(claims, claim{k, path})
	}
	return nil
}

func prefixOf(p, q []string) bool {
	if len(p) > len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// wirePath splits a grammatical name into its base and indexes, up to the first "[]".
func wirePath(name string) []string {
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return []string{name}
	}
	path := []string{name[:i]}
	for rest := name[i:]; rest != ""; {
		j := strings.IndexByte(rest, ']')
		if j < 1 || rest[0] != '[' {
			break // not grammatical: callers check the grammar first
		}
		seg := rest[1:j]
		if seg == "" {
			break
		}
		path = append(path, seg)
		rest = rest[j+1:]
	}
	return path
}

// wireNameDepth reports whether name matches wireNameGrammar with at most maxNameDepth
// [index] parts, and how many it has.
func wireNameDepth(name string) (int, bool) {
	i := 0
	for i < len(name) && wordByte(name[i]) {
		i++
	}
	if i == 0 {
		return 0, false
	}
	depth := 0
	for i < len(name) {
		if name[i] != '[' {
			return depth, false
		}
		i++
		for i < len(name) && wordByte(name[i]) {
			i++
		}
		if i >= len(name) || name[i] != ']' {
			return depth, false
		}
		i++
		depth++
	}
	return depth, depth <= maxNameDepth
}

func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// nameError explains why name fails the grammar, with PHP's reading of it.
func nameError(name string) *ParamNameError {
	if d, ok := wireNameDepth(name); !ok && d > maxNameDepth {
		return &ParamNameError{Name: name, Reason: fmt.Sprintf("it is nested %d levels deep; at most %d are sent", d, maxNameDepth)}
	}
	e := &ParamNameError{Name: name, Reason: "names must match " + wireNameGrammar + " (letters, digits and _, then [index] parts of the same characters)"}
	read := phpVariable(name)
	visible := name
	if i := strings.IndexByte(name, '['); i >= 0 {
		visible = name[:i]
	}
	switch {
	case read == "":
		e.Reason += "; PHP would drop it"
	case read != visible || clientOwned(read):
		e.ReadAs = read
	}
	return e
}

// phpVariable is the top-level variable PHP registers for a form name ("" if it drops
// the pair): leading spaces removed, cut at NUL, ' ' and '.' as '_' before the first
// '[', and a '[' with no ']' after it as '_' along with the rest of the name.
func phpVariable(name string) string {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimLeft(name, " ")
	b := []byte(name)
	for i, c := range b {
		switch c {
		case ' ', '.':
			b[i] = '_'
		case '[':
			if strings.IndexByte(name[i+1:], ']') >= 0 {
				return string(b[:i])
			}
			for j := i; j < len(b); j++ {
				if b[j] == ' ' || b[j] == '.' || b[j] == '[' {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return string(b)
}

// sendsNothing reports whether v encodes to no pair (nil, empty list or map, NaN).
func sendsNothing(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string, json.Number, bool, []byte, int, int64, int32, uint, uint64, uint32:
		return false
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	case []string:
		return len(x) == 0
	case []any:
		for _, it := range x {
			if !sendsNothing(it) {
				return false
			}
		}
		return true
	case map[string]any:
		for k, it := range x {
			if k != "" && !sendsNothing(it) {
				return false
			}
		}
		return true
	}
	probe := &formEncoder{}
	encodeValue(probe, "x", v)
	return probe.fields == 0 && probe.err == nil
}
