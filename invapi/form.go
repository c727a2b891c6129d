package invapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// EncodeForm encodes JSON-like params as an application/x-www-form-urlencoded body in
// the nested syntax PHP's request parser understands (invapi is PHP):
//
//	{"ips": ["a","b"]}                        ips[]=a&ips[]=b
//	{"params": {"name": "x"}}                 params[name]=x
//	{"backup_schedule": {"days": ["monday"]}} backup_schedule[days][]=monday
//	{"disks": [{"size": 10}]}                 disks[0][size]=10
//
// Rules, chosen so the same params always give the same bytes (golden tests, logs):
//   - map keys are sorted at every level; lists keep their order;
//   - lists of scalars use "[]"; lists holding maps or lists use explicit indices,
//     because PHP starts a new element at every "[]" (a[][x]=1&a[][y]=2 is two items);
//   - a key that already ends in "[]" (a wire name such as "group[]") takes a list
//     as is, so wire-named and nested params encode the same;
//   - bool is "true"/"false": the docs' only boolean on the wire is deploy_notify=true
//     ("true/false"). Flags the docs type as integers (own_os, fix_ip) must be passed as
//     numbers; note that PHP treats the string "false" as true in a bare if();
//   - numbers never use exponents (1e3 is sent as 1000); json.Number integers are kept
//     digit for digit, so large IDs survive;
//   - nil, NaN/Inf, empty keys and empty lists/maps send nothing (PHP cannot express an
//     empty array in a form);
//   - values are percent-encoded like url.QueryEscape; names are checked, not escaped
//     (names.go): every name sent, nested ones included, must match wireNameGrammar,
//     and two params may not fill the same PHP variable. A refused name is a
//     *ParamNameError and nothing is encoded.
func EncodeForm(params map[string]any) (string, error) {
	e := &formEncoder{}
	if err := e.params(params, nil); err != nil {
		return "", err
	}
	return e.b.String(), nil
}

// formEncoder writes pairs, checking every name.
type formEncoder struct {
	b      strings.Builder
	err    *ParamNameError
	fields int
}

// params encodes params (sorted) after the name checks; res nil checks only the grammar
// and collisions (EncodeForm), not the names the client reserves for itself.
func (e *formEncoder) params(params map[string]any, res *reservation) error {
	keys := slices.Sorted(maps.Keys(params))
	if err := checkNames(keys, params, res); err != nil {
		return err
	}
	for _, k := range keys {
		if k != "" {
			encodeValue(e, k, params[k])
		}
	}
	if e.err != nil {
		return e.err
	}
	return nil
}

// pair writes key=val after checking key: nested names are built from data keys.
func (e *formEncoder) pair(key, val string) {
	if e.err != nil {
		return
	}
	if _, ok := wireNameDepth(key); !ok {
		e.err = nameError(key)
		return
	}
	if e.fields++; e.fields > maxFields {
		e.err = &ParamNameError{Name: key, Reason: fmt.Sprintf("the request has more than %d fields; PHP (max_input_vars) would ignore the rest of the body", maxFields)}
		return
	}
	writePair(&e.b, key, val)
}

func nestedKey(key, k string) string { return key + "[" + k + "]" }

// writePair writes a checked (or client-owned) name, which needs no escaping.
func writePair(b *strings.Builder, key, val string) {
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	b.WriteString(key)
	b.WriteByte('=')
	escapeTo(b, val, false)
}

func encodeValue(e *formEncoder, key string, v any) {
	switch v := v.(type) {
	case nil:
	case string:
		e.pair(key, v)
	case json.Number:
		e.pair(key, numberString(v))
	case bool:
		e.pair(key, strconv.FormatBool(v))
	case int:
		e.pair(key, strconv.Itoa(v))
	case int64:
		e.pair(key, strconv.FormatInt(v, 10))
	case int32:
		e.pair(key, strconv.FormatInt(int64(v), 10))
	case uint:
		e.pair(key, strconv.FormatUint(uint64(v), 10))
	case uint64:
		e.pair(key, strconv.FormatUint(v, 10))
	case uint32:
		e.pair(key, strconv.FormatUint(uint64(v), 10))
	case float64:
		if s, ok := floatString(v, 64); ok {
			e.pair(key, s)
		}
	case float32:
		if s, ok := floatString(float64(v), 32); ok {
			e.pair(key, s)
		}
	case []byte:
		e.pair(key, string(v))
	case []string:
		lk := listKey(key)
		for _, s := range v {
			e.pair(lk, s)
		}
	case []any:
		encodeList(e, key, v)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k != "" {
				encodeValue(e, nestedKey(key, k), v[k])
			}
		}
	case map[string]string:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k != "" {
				e.pair(nestedKey(key, k), v[k])
			}
		}
	default:
		encodeReflect(e, key, v)
	}
}

func listKey(key string) string {
	if strings.HasSuffix(key, "[]") {
		return key
	}
	return key + "[]"
}

func encodeList(e *formEncoder, key string, items []any) {
	composite := false
	for _, it := range items {
		if isComposite(it) {
			composite = true
			break
		}
	}
	if !composite {
		lk := listKey(key)
		for _, it := range items {
			encodeValue(e, lk, it)
		}
		return
	}
	base := strings.TrimSuffix(key, "[]")
	for i, it := range items {
		encodeValue(e, base+"["+strconv.Itoa(i)+"]", it)
	}
}

func isComposite(v any) bool {
	switch v.(type) {
	case nil, string, json.Number, bool, []byte,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return false
	case []any, []string, map[string]any, map[string]string:
		return true
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return rv.Type().Elem().Kind() != reflect.Uint8
	case reflect.Map:
		return true
	}
	return false
}

// encodeReflect covers typed slices and maps ([]int64, map[string]int), named scalar
// types and pointers, so callers need not convert to []any first.
func encodeReflect(e *formEncoder, key string, v any) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		e.pair(key, rv.String())
	case reflect.Bool:
		e.pair(key, strconv.FormatBool(rv.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.pair(key, strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.pair(key, strconv.FormatUint(rv.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		if s, ok := floatString(rv.Float(), rv.Type().Bits()); ok {
			e.pair(key, s)
		}
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			e.pair(key, string(rv.Bytes()))
			return
		}
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		encodeList(e, key, items)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			e.pair(key, fmt.Sprint(rv.Interface()))
			return
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		encodeValue(e, key, m)
	default:
		if s, ok := rv.Interface().(fmt.Stringer); ok {
			e.pair(key, s.String())
			return
		}
		e.pair(key, fmt.Sprint(rv.Interface()))
	}
}

func floatString(f float64, bits int) (string, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, bits), true
}

// numberString keeps integer literals verbatim (no float64 round trip for big IDs) and
// rewrites others without an exponent.
func numberString(n json.Number) string {
	s := string(n)
	if isIntLiteral(s) {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	if out, ok := floatString(f, 64); ok {
		return out
	}
	return s
}

func isIntLiteral(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const hexUpper = "0123456789ABCDEF"

// escapeTo is url.QueryEscape writing into b; keepBrackets leaves '[' and ']' literal
// for the PHP key syntax.
func escapeTo(b *strings.Builder, s string, keepBrackets bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		case keepBrackets && (c == '[' || c == ']'):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		}
	}
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}
