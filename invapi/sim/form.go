package sim

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxBody bounds a request body; invapi requests are small forms.
const maxBody = 1 << 20

// form is one request's parameters as invapi (PHP) sees them, plus the pairs as sent.
type form struct {
	vars *phpArray  // $_REQUEST: $_GET merged with $_POST, PHP's reading of the names
	sent url.Values // the pairs as sent (percent-decoded names and values), for the log
}

// readForm reads the query string and a form-encoded body, whatever the method (the docs
// show GET requests with --data bodies, ip/get_client_ip), the way PHP does: see phpParse.
func readForm(r *http.Request) (*form, error) {
	f := &form{vars: newPHPArray(), sent: url.Values{}}
	get := phpParse([]byte(r.URL.RawQuery), phpParseString, f.sent)
	if r.Body == nil {
		f.vars = get
		return f, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			// Not a form: drain and ignore (PHP leaves $_POST empty).
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
			f.vars = get
			return f, nil
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("request body too large")
	}
	post := phpParse(b, phpParsePost, f.sent)
	// $_REQUEST with request_order "GP": $_POST merged over $_GET.
	get.merge(post)
	f.vars = get
	return f, nil
}

// The PHP parser. invapi is PHP: it reads a form body the way PHP fills $_POST, which is
// not the way Go's url.ParseQuery reads it. The rules, from the PHP manual ("Variables
// From External Sources": dots and spaces in variable names are converted to underscores;
// https://www.php.net/manual/en/language.variables.external.php) and from PHP's source
// (main/php_variables.c: php_register_variable_ex, add_post_var, php_default_treat_data):
//
//   - pairs are split at '&', a name at its first '='; a pair without '=' has the value "";
//     names and values are percent-decoded leniently ('+' is a space, a '%' not followed
//     by two hex digits stays literal, %00 is a NUL byte);
//   - leading spaces of the name are dropped; the name is cut at its first NUL byte;
//   - in the base name (before the first '['), ' ' and '.' become '_';
//   - an empty base name drops the pair;
//   - "a[k]" nests, "a[k][j]" nests deeper, "a[]" appends (next integer index), and an
//     index of one space "a[ ]" appends too; other indexes are kept verbatim (a leading
//     space, dots, even '[': "a[b[c]" is a["b[c"]);
//   - a '[' without a closing ']' becomes '_' together with the rest of the name
//     ("action[" is "action_"), or, below the first level, ends the name;
//   - after a ']' anything but '[' ends the name ("a[b]c" is a[b]);
//   - more than 64 levels (max_input_nesting_level) drop the pair and delete the whole
//     base variable;
//   - keys that are canonical decimal integers become integer keys ("01" stays a string);
//   - a later pair overwrites an earlier one of the same name, keeping its place; a
//     scalar is replaced by an array when a later name nests below it, and the reverse;
//   - after 1000 pairs (max_input_vars) the rest is ignored: $_POST counts every '&'
//     segment (even empty ones) and stops after adding the 1001st; parse_str and the
//     query string stop before the 1001st non-empty one and end at a raw NUL byte.
const (
	phpMaxInputVars    = 1000
	phpMaxNestingLevel = 64
)

type phpParseMode int

const (
	phpParsePost   phpParseMode = iota // $_POST: binary-safe segments
	phpParseString                     // parse_str and $_GET: a C string, strtok on '&'
)

// phpKey is a PHP array key: an integer or a string.
type phpKey struct {
	isInt bool
	i     int64
	s     string
}

func (k phpKey) String() string {
	if k.isInt {
		return strconv.FormatInt(k.i, 10)
	}
	return k.s
}

// phpArray is an ordered PHP array whose values are string or *phpArray.
type phpArray struct {
	keys    []phpKey
	vals    map[phpKey]any
	next    int64 // nNextFreeElement
	hasNext bool  // false: no integer key yet (the next append is 0)
}

func newPHPArray() *phpArray { return &phpArray{vals: map[phpKey]any{}} }

// symKey is a symbol-table key: canonical decimal integers become integer keys
// (ZEND_HANDLE_NUMERIC_STR).
func symKey(s string) phpKey {
	if n, ok := phpNumericKey(s); ok {
		return phpKey{isInt: true, i: n}
	}
	return phpKey{s: s}
}

func phpNumericKey(s string) (int64, bool) {
	d := s
	if d != "" && d[0] == '-' {
		d = d[1:]
	}
	if d == "" || d[0] < '0' || d[0] > '9' || (d[0] == '0' && len(s) > 1) || len(d) > 19 {
		return 0, false
	}
	var u uint64
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
		u = u*10 + uint64(d[i]-'0')
	}
	if s[0] == '-' {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -1<<63 wraps to itself
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// set is zend_symtable_update: an existing key keeps its place.
func (a *phpArray) set(k phpKey, v any) {
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
	if k.isInt && (!a.hasNext || k.i >= a.next) {
		a.hasNext = true
		if k.i == 1<<63-1 {
			a.next = k.i
		} else {
			a.next = k.i + 1
		}
	}
}

// push is zend_hash_next_index_insert; false when the next index is taken (after
// PHP_INT_MAX).
func (a *phpArray) push(v any) (phpKey, bool) {
	k := phpKey{isInt: true}
	if a.hasNext {
		k.i = a.next
	}
	if _, taken := a.vals[k]; taken {
		return k, false
	}
	a.set(k, v)
	return k, true
}

func (a *phpArray) del(k phpKey) {
	if _, ok := a.vals[k]; !ok {
		return
	}
	delete(a.vals, k)
	for i, kk := range a.keys {
		if kk == k {
			a.keys = append(a.keys[:i], a.keys[i+1:]...)
			break
		}
	}
}

// merge is php_autoglobal_merge: src over a, recursively where both hold arrays.
func (a *phpArray) merge(src *phpArray) {
	for _, k := range src.keys {
		sv := src.vals[k]
		if sa, ok := sv.(*phpArray); ok {
			if da, ok := a.vals[k].(*phpArray); ok {
				da.merge(sa)
				continue
			}
		}
		a.set(k, sv)
	}
}

// str returns the top-level string value of name ("" when absent or an array).
func (a *phpArray) str(name string) string {
	s, _ := a.vals[symKey(name)].(string)
	return s
}

// phpURLDecode is php_url_decode.
func phpURLDecode(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// phpParse reads a form the way PHP does (see the rules above). Each pair, decoded but
// with its name as sent, is also added to sent when it is not nil.
func phpParse(data []byte, mode phpParseMode, sent url.Values) *phpArray {
	arr := newPHPArray()
	if mode == phpParseString {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			data = data[:i]
		}
	}
	count := 0
	for len(data) > 0 {
		seg := data
		if i := bytes.IndexByte(data, '&'); i >= 0 {
			seg, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if mode == phpParseString {
			if len(seg) == 0 {
				continue // strtok skips empty tokens
			}
			if count++; count > phpMaxInputVars {
				break
			}
		}
		name, val := seg, []byte(nil)
		if i := bytes.IndexByte(seg, '='); i >= 0 {
			name, val = seg[:i], seg[i+1:]
		}
		n, v := phpURLDecode(name), phpURLDecode(val)
		if sent != nil {
			sent.Add(n, v)
		}
		arr.register(n, v)
		if mode == phpParsePost {
			if count++; count > phpMaxInputVars {
				break
			}
		}
	}
	return arr
}

// register is php_register_variable_ex.
func (a *phpArray) register(name, val string) {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimLeft(name, " ")
	b := []byte(name)
	baseEnd, isArray := len(b), false
	for i, c := range b {
		if c == ' ' || c == '.' {
			b[i] = '_'
		} else if c == '[' {
			baseEnd, isArray = i, true
			break
		}
	}
	if baseEnd == 0 {
		return
	}
	if !isArray {
		a.set(symKey(string(b)), val)
		return
	}
	base := string(b[:baseEnd])
	sym := a       // the array the current index lives in
	index := &base // nil: append
	ip := baseEnd  // at a '['
	for level := 1; ; level++ {
		if level > phpMaxNestingLevel {
			a.del(symKey(base))
			return
		}
		ip++
		start := ip
		var next *string
		if ip < len(b) && b[ip] == ' ' {
			ip++
		}
		if ip < len(b) && b[ip] == ']' {
			next = nil
		} else {
			j := bytes.IndexByte(b[ip:], ']')
			if j < 0 {
				// Not an index: the '[' becomes '_'; at the first level the rest of the
				// name joins the base with ' ', '.', '[' as '_'.
				if level == 1 {
					b[start-1] = '_'
					for k := start; k < len(b); k++ {
						if b[k] == ' ' || b[k] == '.' || b[k] == '[' {
							b[k] = '_'
						}
					}
					s := string(b)
					index = &s
				}
				break
			}
			s := string(b[start : ip+j])
			next = &s
			ip += j
		}
		// Descend into sym[index], creating or replacing it with an array.
		var child *phpArray
		if index == nil {
			child = newPHPArray()
			if _, ok := sym.push(child); !ok {
				return
			}
		} else {
			k := symKey(*index)
			if cur, ok := sym.vals[k].(*phpArray); ok {
				child = cur
			} else {
				child = newPHPArray()
				sym.set(k, child)
			}
		}
		sym, index = child, next
		ip++ // past ']'
		if ip >= len(b) || b[ip] != '[' {
			break
		}
	}
	if index == nil {
		sym.push(val)
		return
	}
	sym.set(symKey(*index), val)
}

// flatten lists the variables as canonical wire names ("a[b][0]"), a list of scalars
// under "a[]" like the client sends it.
func (a *phpArray) flatten(prefix string, out url.Values) {
	if prefix != "" && a.isList() {
		scalars := true
		for _, k := range a.keys {
			if _, ok := a.vals[k].(string); !ok {
				scalars = false
				break
			}
		}
		if scalars {
			for _, k := range a.keys {
				out.Add(prefix+"[]", a.vals[k].(string))
			}
			return
		}
	}
	for _, k := range a.keys {
		name := k.String()
		if prefix != "" {
			name = prefix + "[" + name + "]"
		}
		switch v := a.vals[k].(type) {
		case string:
			out.Add(name, v)
		case *phpArray:
			v.flatten(name, out)
		}
	}
}

// isList is json_encode's test: keys 0..n-1 in order.
func (a *phpArray) isList() bool {
	for i, k := range a.keys {
		if !k.isInt || k.i != int64(i) {
			return false
		}
	}
	return true
}

// plain converts to JSON-like values: string, []any for lists, map[string]any otherwise.
func (a *phpArray) plain() any {
	if a.isList() && len(a.keys) > 0 {
		out := make([]any, len(a.keys))
		for i, k := range a.keys {
			out[i] = plainValue(a.vals[k])
		}
		return out
	}
	out := make(map[string]any, len(a.keys))
	for _, k := range a.keys {
		out[k.String()] = plainValue(a.vals[k])
	}
	return out
}

func plainValue(v any) any {
	if a, ok := v.(*phpArray); ok {
		return a.plain()
	}
	return v
}

// plainMap is plain for a top-level array, always a map.
func (a *phpArray) plainMap() map[string]any {
	out := make(map[string]any, len(a.keys))
	for _, k := range a.keys {
		out[k.String()] = plainValue(a.vals[k])
	}
	return out
}

// ParseForm reads an application/x-www-form-urlencoded body the way PHP fills $_POST
// (and so the way invapi reads it): the top-level variables, nested PHP arrays as
// map[string]any (integer keys in decimal), lists (keys 0..n-1) as []any, values as
// strings. Tests use it to see what invapi would make of a body.
func ParseForm(body []byte) map[string]any {
	return phpParse(body, phpParsePost, nil).plainMap()
}

// args is one request's parameters with the lookups handlers need.
type args struct {
	raw    url.Values
	nested map[string]any
}

func newArgs(vars *phpArray) *args {
	raw := url.Values{}
	vars.flatten("", raw)
	return &args{raw: raw, nested: vars.plainMap()}
}

// get returns the value of a wire name, also accepting the params[...] spelling (001's
// api_keys tables say "name", its curl examples send "params[name]"), and the reverse.
func (a *args) get(name string) string {
	if vs, ok := a.raw[name]; ok && len(vs) > 0 {
		return vs[0]
	}
	if vs, ok := a.raw["params["+name+"]"]; ok && len(vs) > 0 {
		return vs[0]
	}
	if strings.HasPrefix(name, "params[") && strings.HasSuffix(name, "]") {
		inner := name[len("params[") : len(name)-1]
		if vs, ok := a.raw[inner]; ok && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// has reports whether a wire name is present with a non-empty value. For "a[]" and
// object names it looks for any member ("a[]", "a[0]", "a[x][]").
func (a *args) has(wire string) bool {
	if strings.HasSuffix(wire, "[]") {
		base := strings.TrimSuffix(wire, "[]")
		return a.hasPrefix(base) || a.hasPrefix("params["+base+"]")
	}
	if a.get(wire) != "" {
		return true
	}
	return a.hasPrefix(wire) || a.hasPrefix("params["+wire+"]")
}

func (a *args) hasPrefix(base string) bool {
	for k, vs := range a.raw {
		if strings.HasPrefix(k, base+"[") {
			for _, v := range vs {
				if v != "" {
					return true
				}
			}
		}
	}
	return false
}

// values returns every value of a (possibly array) wire name: "a[]", "a[0]"..., or a
// comma-separated "a" (eq/list takes "location=IS,NL").
func (a *args) values(name string) []string {
	var out []string
	base := strings.TrimSuffix(name, "[]")
	for _, cand := range []string{base, "params[" + base + "]"} {
		for k, vs := range a.raw {
			if k == cand || k == cand+"[]" || (strings.HasPrefix(k, cand+"[") && strings.HasSuffix(k, "]")) {
				for _, v := range vs {
					for _, p := range strings.Split(v, ",") {
						if p = strings.TrimSpace(p); p != "" {
							out = append(out, p)
						}
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func (a *args) int(name string) (int64, bool) {
	s := a.get(name)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
