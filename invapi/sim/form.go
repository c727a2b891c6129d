package sim

import (
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

// readForm merges the query string and a form-encoded body, whatever the method: the docs
// show GET requests with --data bodies (ip/get_client_ip), and PHP reads both.
func readForm(r *http.Request) (url.Values, error) {
	out := url.Values{}
	for k, vs := range r.URL.Query() {
		out[k] = append(out[k], vs...)
	}
	if r.Body == nil {
		return out, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			// Not a form: drain and ignore (PHP leaves $_POST empty).
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
			return out, nil
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("request body too large")
	}
	body, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, err
	}
	// Body values win over query values of the same name, like PHP's $_REQUEST with
	// request_order "GP".
	for k, vs := range body {
		out[k] = vs
	}
	return out, nil
}

// splitKey splits a PHP form key "a[b][]" into "a" and ["b", ""]. A key that is not
// well-formed is returned whole.
func splitKey(k string) (string, []string) {
	i := strings.IndexByte(k, '[')
	if i <= 0 || !strings.HasSuffix(k, "]") {
		return k, nil
	}
	base, rest := k[:i], k[i:]
	var segs []string
	for len(rest) > 0 {
		if rest[0] != '[' {
			return k, nil
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return k, nil
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return base, segs
}

// phpNest turns flat PHP-style keys into nested values the way PHP fills $_POST:
// "a[]=1&a[]=2" → {"a":["1","2"]}, "params[name]=x" → {"params":{"name":"x"}},
// "backup_schedule[days][]=monday" → {"backup_schedule":{"days":["monday"]}}.
// Maps whose keys are exactly 0..n-1 become arrays.
func phpNest(v url.Values) map[string]any {
	root := map[string]any{}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		base, segs := splitKey(k)
		for _, val := range v[k] {
			insert(root, append([]string{base}, segs...), val)
		}
	}
	return listify(root).(map[string]any)
}

func insert(node map[string]any, path []string, val string) {
	for i, seg := range path {
		if seg == "" {
			seg = strconv.Itoa(nextIndex(node))
		}
		if i == len(path)-1 {
			node[seg] = val
			return
		}
		child, ok := node[seg].(map[string]any)
		if !ok {
			child = map[string]any{}
			node[seg] = child
		}
		node = child
	}
}

func nextIndex(m map[string]any) int {
	n := 0
	for k := range m {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return n
}

func listify(x any) any {
	m, ok := x.(map[string]any)
	if !ok {
		return x
	}
	for k, v := range m {
		m[k] = listify(v)
	}
	if len(m) == 0 {
		return m
	}
	for i := 0; i < len(m); i++ {
		if _, ok := m[strconv.Itoa(i)]; !ok {
			return m
		}
	}
	arr := make([]any, len(m))
	for i := range arr {
		arr[i] = m[strconv.Itoa(i)]
	}
	return arr
}

// args is one request's parameters with the lookups handlers need.
type args struct {
	raw    url.Values
	nested map[string]any
}

func newArgs(v url.Values) *args { return &args{raw: v, nested: phpNest(v)} }

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
