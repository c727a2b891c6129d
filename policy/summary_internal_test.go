package policy

import (
	"strings"
	"testing"
)

// A value that reads differently than it is (a right-to-left override, a zero-width
// character, a carriage return that rewinds the line) is never shown raw: the form
// describes it and the page shows it with those characters escaped.
func TestArgumentsThatHideTextAreEscaped(t *testing.T) {
	for _, v := range []string{
		"web-01\u202e10.0.0.1",       // right-to-left override
		"ssh-ed25519 AAAA\u200bevil", // zero-width space
		"good-key\rssh-ed25519 EVIL", // carriage return
	} {
		a := argView{name: "ssh_key", value: v, isString: true, consequential: true}
		if !a.long() {
			t.Errorf("%q is shown inline", v)
		}
		for _, full := range []bool{false, true} {
			out := a.render(full, "on the approval page")
			if strings.ContainsAny(out, "\u202e\u200b\r") {
				t.Errorf("full=%v: raw hidden characters in %q", full, out)
			}
			if !strings.Contains(out, "SHA-256 "+sha256Hex(v)) {
				t.Errorf("full=%v: no hash in %q", full, out)
			}
		}
	}
	// Plain short values stay inline and quoted.
	a := argView{name: "hostname", value: "web-01.example", isString: true, consequential: true}
	if a.long() || a.render(false, "") != `hostname = "web-01.example"` {
		t.Errorf("plain value: %q", a.render(false, ""))
	}
	// Secrets are named only.
	s := argView{name: "root_pass", value: secretShown("root_pass", "Passw0rd!"), secret: true}
	if out := s.render(true, ""); strings.Contains(out, "Passw0rd") || !strings.Contains(out, "root_pass") {
		t.Errorf("secret: %q", out)
	}
	if out := secretShown("post_install_callback", "https://evil.example/cb/s3cr3t-token"); !strings.Contains(out, "evil.example") || strings.Contains(out, "s3cr3t") {
		t.Errorf("secret URL: %q", out)
	}
}
