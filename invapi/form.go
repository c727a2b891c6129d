package invapi

import (
	"encoding/json"
	"fmt"
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
//   - the brackets of the nesting and of top-level wire names are sent literally, as
//     curl does in the docs; map keys below the top level are data, so brackets in
//     them are escaped; everything else is percent-encoded like url.QueryEscape.
func EncodeForm(params map[string]any) string {
	var b strings.Builder
	appendForm(&b, params)
	return b.String()
}

// appendForm writes params to b, '&'-separated from anything b already holds.
func appendForm(b *strings.Builder, params map[string]any) {
	for _, k := range sortedKeys(params) {
		if k == "" {
			continue
		}
		// Top-level keys may be wire names ("params[name]"): their brackets are syntax.
		encodeValue(b, escapeKey(k, true), params[k])
	}
}

// Keys travel through encodeValue already escaped; nested map keys are data, so their
// brackets are escaped and cannot change the structure.
func nestedKey(key, k string) string { return key + "[" + escapeKey(k, false) + "]" }

func escapeKey(s string, keepBrackets bool) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && !(keepBrackets && (s[i] == '[' || s[i] == ']')) {
			var b strings.Builder
			escapeTo(&b, s, keepBrackets)
			return b.String()
		}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func writePair(b *strings.Builder, key, val string) {
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	b.WriteString(key)
	b.WriteByte('=')
	escapeTo(b, val, false)
}

func encodeValue(b *strings.Builder, key string, v any) {
	switch v := v.(type) {
	case nil:
	case string:
		writePair(b, key, v)
	case json.Number:
		writePair(b, key, numberString(v))
	case bool:
		writePair(b, key, strconv.FormatBool(v))
	case int:
		writePair(b, key, strconv.Itoa(v))
	case int64:
		writePair(b, key, strconv.FormatInt(v, 10))
	case int32:
		writePair(b, key, strconv.FormatInt(int64(v), 10))
	case uint:
		writePair(b, key, strconv.FormatUint(uint64(v), 10))
	case uint64:
		writePair(b, key, strconv.FormatUint(v, 10))
	case uint32:
		writePair(b, key, strconv.FormatUint(uint64(v), 10))
	case float64:
		if s, ok := floatString(v, 64); ok {
			writePair(b, key, s)
		}
	case float32:
		if s, ok := floatString(float64(v), 32); ok {
			writePair(b, key, s)
		}
	case []byte:
		writePair(b, key, string(v))
	case []string:
		lk := listKey(key)
		for _, s := range v {
			writePair(b, lk, s)
		}
	case []any:
		encodeList(b, key, v)
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if k != "" {
				encodeValue(b, nestedKey(key, k), v[k])
			}
		}
	case map[string]string:
		for _, k := range sortedKeys(v) {
			if k != "" {
				writePair(b, nestedKey(key, k), v[k])
			}
		}
	default:
		encodeReflect(b, key, v)
	}
}

func listKey(key string) string {
	if strings.HasSuffix(key, "[]") {
		return key
	}
	return key + "[]"
}

func encodeList(b *strings.Builder, key string, items []any) {
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
			encodeValue(b, lk, it)
		}
		return
	}
	base := strings.TrimSuffix(key, "[]")
	for i, it := range items {
		encodeValue(b, base+"["+strconv.Itoa(i)+"]", it)
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
func encodeReflect(b *strings.Builder, key string, v any) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		writePair(b, key, rv.String())
	case reflect.Bool:
		writePair(b, key, strconv.FormatBool(rv.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writePair(b, key, strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		writePair(b, key, strconv.FormatUint(rv.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		if s, ok := floatString(rv.Float(), rv.Type().Bits()); ok {
			writePair(b, key, s)
		}
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			writePair(b, key, string(rv.Bytes()))
			return
		}
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		encodeList(b, key, items)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			writePair(b, key, fmt.Sprint(rv.Interface()))
			return
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		encodeValue(b, key, m)
	default:
		if s, ok := rv.Interface().(fmt.Stringer); ok {
			writePair(b, key, s.String())
			return
		}
		writePair(b, key, fmt.Sprint(rv.Interface()))
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
