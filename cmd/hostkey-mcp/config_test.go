package main

import (
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
