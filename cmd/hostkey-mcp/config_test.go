package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The policy names no setting (policy.TestPolicyNamesNoSetting): the wiring names it.
func TestPINErrorsNameTheirSetting(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "pin")
	if err := os.WriteFile(loose, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{PIN: "1234", PINFile: loose}, "both HOSTKEY_PIN and --pin-file"},
		{Config{PINFile: loose}, "--pin-file " + loose + ": mode 0644"},
		{Config{PINFile: filepath.Join(dir, "missing")}, "--pin-file "},
		{Config{PIN: "12\n34"}, "HOSTKEY_PIN: "},
	} {
		_, err := loadPIN(&tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.cfg.PINFile, err, tc.want)
		}
	}
}

// Every typed setting is read when the flags are: a bad value stops any command at
// once, naming its flag (or its variable and flag), whether or not the command would
// have used it.
func TestBadSettingsFailAtStartNamingTheirFlag(t *testing.T) {
	for _, tc := range []struct{ flag, env, bad string }{
		{"confirm", "HOSTKEY_CONFIRM", "maybe"},
		{"rate-global", "HOSTKEY_RATE_GLOBAL", "fast"},
		{"rate-destructive", "HOSTKEY_RATE_DESTRUCTIVE", "1:x"},
		{"rate-server", "HOSTKEY_RATE_SERVER", "-1:1"},
		{"rate-session", "HOSTKEY_RATE_SESSION", "2"},
		{"max-pending", "HOSTKEY_MAX_PENDING", "-3"},
		{"servers", "HOSTKEY_SERVERS", "40101,web"},
		{"trusted-proxies", "HOSTKEY_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"log-level", "HOSTKEY_LOG_LEVEL", "loud"},
		{"log-format", "HOSTKEY_LOG_FORMAT", "xml"},
	} {
		for _, src := range []string{"flag", "env"} {
			args, getenv := []string{"tools", "--sandbox", "--" + tc.flag, tc.bad}, env()
			if src == "env" {
				args, getenv = []string{"tools", "--sandbox"}, env(tc.env, tc.bad)
			}
			var out, errb bytes.Buffer
			code := run(t.Context(), args, nil, &out, &errb, getenv)
			msg := errb.String()
			if code == 0 || !strings.Contains(msg, "-"+tc.flag) || !strings.Contains(msg, "want") {
				t.Errorf("%s %s=%q: exit %d, stderr %q; want a failure naming -%s and what it wants", src, tc.flag, tc.bad, code, msg, tc.flag)
			}
		}
	}
}
