package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/schemas"
)

// The README's opening count of tools is the catalog's: it drifted once (107 while the
// catalog held 173).
func TestREADMEActionCountIsTheCatalogs(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("**Every documented invapi action is a tool** (%d of them", len(schemas.Load().Actions))
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %q", want)
	}
}
