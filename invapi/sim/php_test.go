package sim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// dump renders a parsed array like the PHP helper in phpDumpScript: a list of
// [type, key, value] with "i"/"s" key types, in PHP's order; hexed turns keys and string
// values into hex, so that any bytes compare exactly.
func dump(a *phpArray, hexed bool) []any {
	out := []any{}
	str := func(s string) string {
		if hexed {
			return hex.EncodeToString([]byte(s))
		}
		return s
	}
	for _, k := range a.keys {
		typ := "s"
		if k.isInt {
			typ = "i"
		}
		var v any
		switch x := a.vals[k].(type) {
		case string:
			v = str(x)
		case *phpArray:
			v = dump(x, hexed)
		}
		out = append(out, []any{typ, str(k.String()), v})
	}
	return out
}

func dumpJSON(a *phpArray, hexed bool) string {
	b, _ := json.Marshal(dump(a, hexed))
	return string(b)
}

// The rules of PHP's request parser, each case checked against PHP 8.2 (parse_str, and
// $_POST through `php -S` for the POST-only rows). See the rules above phpParse and the
// PHP manual, "Variables From External Sources":
// https://www.php.net/manual/en/language.variables.external.php
func TestPHPParseRules(t *testing.T) {
	cases := []struct {
		name, body, want string
		mode             phpParseMode
	}{
		{"plain", "a=1&b=2", `[["s","a","1"],["s","b","2"]]`, phpParsePost},
		{"later duplicate wins, keeps its place", "a=1&b=2&a=3", `[["s","a","3"],["s","b","2"]]`, phpParsePost},
		{"leading spaces dropped", "+action=clear", `[["s","action","clear"]]`, phpParsePost},
		{"smuggled action overrides the real one", "action=list&+action=clear&id=1", `[["s","action","clear"],["s","id","1"]]`, phpParsePost},
		{"NUL cuts the name", "action%00x=1", `[["s","action","1"]]`, phpParsePost},
		{"spaces and dots in the base become _", "a.b+c=1", `[["s","a_b_c","1"]]`, phpParsePost},
		{"but not inside brackets", "a.b[c.d]=1&a+b[c+d]=2", `[["s","a_b",[["s","c.d","1"],["s","c d","2"]]]]`, phpParsePost},
		{"unclosed bracket becomes _", "action[=1", `[["s","action_","1"]]`, phpParsePost},
		{"unclosed bracket converts the rest", "a[b.c d[e=1", `[["s","a_b_c_d_e","1"]]`, phpParsePost},
		{"unclosed bracket deeper ends the name", "a[b][c=1", `[["s","a",[["s","b","1"]]]]`, phpParsePost},
		{"text after ] ends the name", "a[b]c=1&a[x]y[z]=2", `[["s","a",[["s","b","1"],["s","x","2"]]]]`, phpParsePost},
		{"bracket inside an index is data", "a[b[c]]=1", `[["s","a",[["s","b[c","1"]]]]`, phpParsePost},
		{"percent-encoded brackets are brackets", "a%5Bb%5D=1", `[["s","a",[["s","b","1"]]]]`, phpParsePost},
		{"append", "a[]=1&a[]=2", `[["s","a",[["i","0","1"],["i","1","2"]]]]`, phpParsePost},
		{"one space appends too", "a[+]=1&a[+]=2", `[["s","a",[["i","0","1"],["i","1","2"]]]]`, phpParsePost},
		{"two spaces are a key", "a[++]=1", `[["s","a",[["s","  ","1"]]]]`, phpParsePost},
		{"leading space of an index kept", "a[+b]=1", `[["s","a",[["s"," b","1"]]]]`, phpParsePost},
		{"append after an explicit index", "x[]=1&x[5]=2&x[]=3", `[["s","x",[["i","0","1"],["i","5","2"],["i","6","3"]]]]`, phpParsePost},
		{"append after a negative index", "a[-5]=x&a[]=y", `[["s","a",[["i","-5","x"],["i","-4","y"]]]]`, phpParsePost},
		{"a smaller index does not move the next", "a[]=1&a[-3]=q&a[]=z", `[["s","a",[["i","0","1"],["i","-3","q"],["i","1","z"]]]]`, phpParsePost},
		{"no append after PHP_INT_MAX", "a[9223372036854775807]=1&a[]=2", `[["s","a",[["i","9223372036854775807","1"]]]]`, phpParsePost},
		{"canonical integers only", "a[01]=1&a[-0]=2&a[%2B1]=3&a[9223372036854775808]=4&a[-9223372036854775808]=5",
			`[["s","a",[["s","01","1"],["s","-0","2"],["s","+1","3"],["s","9223372036854775808","4"],["i","-9223372036854775808","5"]]]]`, phpParsePost},
		{"numeric top-level name", "7=a", `[["i","7","a"]]`, phpParsePost},
		{"nesting", "a[b][c]=1&a[b][d][]=2", `[["s","a",[["s","b",[["s","c","1"],["s","d",[["i","0","2"]]]]]]]]`, phpParsePost},
		{"scalar replaced by an array", "a=1&a[x]=2", `[["s","a",[["s","x","2"]]]]`, phpParsePost},
		{"array replaced by a scalar", "a[x]=1&a=2", `[["s","a","2"]]`, phpParsePost},
		{"nested scalar replaced by an array", "a[b]=1&a[b][c]=2", `[["s","a",[["s","b",[["s","c","2"]]]]]]`, phpParsePost},
		{"empty base dropped", "[x]=1&+=2&=3&%00a=4", `[]`, phpParsePost},
		{"no = means empty value", "x=1&y", `[["s","x","1"],["s","y",""]]`, phpParsePost},
		{"lenient percent decoding", "a=%zz%4&b=%41+%2B", `[["s","a","%zz%4"],["s","b","A +"]]`, phpParsePost},
		{"POST: raw NUL in a value kept", "a=1&b\x00c=2&d=x\x00y&&e", "[[\"s\",\"a\",\"1\"],[\"s\",\"b\",\"2\"],[\"s\",\"d\",\"x\\u0000y\"],[\"s\",\"e\",\"\"]]", phpParsePost},
		{"parse_str: raw NUL ends the string", "a=1&b\x00c=2", `[["s","a","1"],["s","b",""]]`, phpParseString},
		{"64 levels kept", "a" + strings.Repeat("[x]", 63) + "[k]=1", "", phpParsePost},
		{"65 levels delete the base variable", "a=1&b=2&a" + strings.Repeat("[x]", 65) + "=1", `[["s","b","2"]]`, phpParsePost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := dumpJSON(phpParse([]byte(tc.body), tc.mode, nil), false)
			if tc.want == "" { // 64 levels: check the depth instead
				a := phpParse([]byte(tc.body), tc.mode, nil)
				depth := 0
				for v := any(a); ; depth++ {
					arr, ok := v.(*phpArray)
					if !ok || len(arr.keys) != 1 {
						break
					}
					v = arr.vals[arr.keys[0]]
				}
				if depth != 65 { // the top-level array, "a" and 63 [x] levels, [k]
					t.Fatalf("depth %d: %s", depth, got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("%q\n got %s\nwant %s", tc.body, got, tc.want)
			}
		})
	}
}

func TestPHPParseMaxInputVars(t *testing.T) {
	var b strings.Builder
	for i := range 1005 {
		b.WriteString("&v" + strconv.Itoa(i) + "=1")
	}
	body := b.String()[1:]
	// $_POST adds the 1001st and stops (checked with php -S); parse_str stops before it.
	if n := len(phpParse([]byte(body), phpParsePost, nil).keys); n != 1001 {
		t.Fatalf("POST kept %d variables, want 1001", n)
	}
	if n := len(phpParse([]byte(body), phpParseString, nil).keys); n != 1000 {
		t.Fatalf("parse_str kept %d variables, want 1000", n)
	}
	// $_POST counts empty segments; parse_str skips them.
	body = "&&&" + body
	if n := len(phpParse([]byte(body), phpParsePost, nil).keys); n != 998 {
		t.Fatalf("POST with empty segments kept %d variables, want 998", n)
	}
	if n := len(phpParse([]byte(body), phpParseString, nil).keys); n != 1000 {
		t.Fatalf("parse_str with empty segments kept %d variables, want 1000", n)
	}
}

// The simulator dispatches on PHP's reading of the body: the smuggled action is the one
// it runs and logs.
func TestSimReadsActionLikePHP(t *testing.T) {
	e := newEnv(t)
	acct, _ := e.sim.Keys()
	tok := e.login(acct)
	e.sim.ResetRequests()
	body := "action=list&+action=bogus_action&token=" + tok
	res, err := e.ts.Client().Post(e.ts.URL+"/eq.php", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	reqs := e.sim.Requests()
	if len(reqs) != 1 || reqs[0].Action != "bogus_action" || reqs[0].Vars["action"] != "bogus_action" {
		t.Fatalf("sim read action %q, vars %v; want PHP's reading bogus_action", reqs[0].Action, reqs[0].Vars)
	}
	if got := reqs[0].Form[" action"]; len(got) != 1 || got[0] != "bogus_action" {
		t.Fatalf("log of the pairs as sent: %v", reqs[0].Form)
	}
}

// phpDumpScript reads a JSON list of hex bodies on stdin and prints, for each, PHP's
// parse_str reading as [type, hex key, hex value or nested list].
const phpDumpScript = `function d($v){ if(is_array($v)){ $o=[]; foreach($v as $k=>$x){ $o[]=[is_int($k)?"i":"s", bin2hex((string)$k), d($x)]; } return $o;} return bin2hex($v); }
$out=[]; foreach(json_decode(file_get_contents("php://stdin")) as $h){ $a=[]; parse_str(hex2bin($h), $a); $out[]=d($a); }
echo json_encode($out);`

// phpReadings runs PHP once over bodies. It skips the test when php is not installed,
// except under CI=true, where the differential test must run.
func phpReadings(t testing.TB, bodies [][]byte) []string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php is not installed (apt-get install -y php-cli); CI must run the PHP differential test")
		}
		t.Skip("php not installed: the PHP differential test needs php-cli")
	}
	hexes := make([]string, len(bodies))
	for i, b := range bodies {
		hexes[i] = hex.EncodeToString(b)
	}
	in, _ := json.Marshal(hexes)
	cmd := exec.Command(php, "-n", "-d", "error_reporting=0", "-r", phpDumpScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php: %v: %s", err, stderr.String())
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil || len(raw) != len(bodies) {
		t.Fatalf("php output (%v): %.300s", err, out)
	}
	res := make([]string, len(raw))
	for i, r := range raw {
		res[i] = string(r)
	}
	return res
}

// phpDiffCorpus is the fixed corpus of the differential test: the table's bodies, what
// the client sends, and the smuggling shapes.
func phpDiffCorpus() [][]byte {
	out := [][]byte{}
	for _, s := range []string{
		"a=1&b=2&a=3", "+action=clear", "action=list&+action=clear&id=1&token=t", "action%00x=1", "token%00=x",
		"a.b+c=1", "a.b[c.d]=1&a+b[c+d]=2", "action[=1", "a[b.c d[e=1", "a[b][c=1", "a[b]c=1&a[x]y[z]=2",
		"a[b[c]]=1", "a%5Bb%5D=1", "a[]=1&a[]=2", "a[+]=1&a[+]=2", "a[++]=1", "a[+b]=1", "x[]=1&x[5]=2&x[]=3",
		"a[-5]=x&a[]=y", "a[]=1&a[-3]=q&a[]=z", "a[9223372036854775807]=1&a[]=2",
		"a[01]=1&a[-0]=2&a[%2B1]=3&a[9223372036854775808]=4&a[-9223372036854775808]=5", "7=a&-1=b&0=c&01=d",
		"a[b][c]=1&a[b][d][]=2", "a=1&a[x]=2", "a[x]=1&a=2", "a[b]=1&a[b][c]=2", "[x]=1&+=2&=3&%00a=4",
		"x=1&y", "a=%zz%4&b=%41+%2B", "a=1&b\x00c=2", "&&a=1&&", "=", "&", "%20%20pin=1", "pin.=1", "pin+=1",
		"a[][x]=1&a[][y]=2", "a[x][]=1&a[x][]=2&a[y]=3", "params[name]=x&params[tags][]=p&params=1&params[z]=2",
		"action=search&params[full]=true&params[group][]=1CPU&params[group][]=2CPU&params[location][]=NL&token=abc",
		"a" + strings.Repeat("[x]", 63) + "[k]=1", "a=1&b=2&a" + strings.Repeat("[x]", 65) + "=1",
		"a" + strings.Repeat("[]", 64) + "=1", "a" + strings.Repeat("[]", 65) + "=1",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// randomBody builds a form body from the characters that matter to PHP's parser.
func randomBody(r *rand.Rand) []byte {
	atoms := []string{"a", "b", "action", "token", "pin", "key", "0", "1", "-1", "01", "9223372036854775807",
		"[", "]", "[]", "[x]", "[0]", " ", "+", ".", "_", "=", "&", "%00", "%5B", "%5D", "%20", "%2", "%", "%2E", "\x00", "é"}
	var b bytes.Buffer
	for range 1 + r.IntN(8) {
		for range 1 + r.IntN(6) {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		if r.IntN(4) > 0 {
			b.WriteByte('=')
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		b.WriteByte('&')
	}
	return b.Bytes()
}

// TestPHPDifferential compares the simulator's parser with PHP's own parse_str on the
// fixed corpus and 2000 random bodies. parse_str is php_default_treat_data, the reader of
// the query string; $_POST differs only where TestPHPParseRules says (raw NUL bytes,
// counting against max_input_vars), and shares php_register_variable_ex, which holds all
// the name rules.
func TestPHPDifferential(t *testing.T) {
	bodies := phpDiffCorpus()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		bodies = append(bodies, randomBody(r))
	}
	php := phpReadings(t, bodies)
	for i, b := range bodies {
		if got := dumpJSON(phpParse(b, phpParseString, nil), true); got != php[i] {
			t.Errorf("body %q:\n sim %s\n php %s", b, got, php[i])
		}
	}
}

// FuzzPHPDifferential is the differential test for fuzz-generated bodies (one php run per
// input: slow, so `make fuzz` runs it briefly). As a plain test it runs the seeds.
func FuzzPHPDifferential(f *testing.F) {
	for _, b := range phpDiffCorpus() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 4096 {
			return
		}
		php := phpReadings(t, [][]byte{body})
		if got := dumpJSON(phpParse(body, phpParseString, nil), true); got != php[0] {
			t.Fatalf("body %q:\n sim %s\n php %s", body, got, php[0])
		}
	})
}
