package workflows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/tools/workflows"
)

// Review of issue 12: a workflow's own summary ("REINSTALL server 40101 (hostname, …)")
// put eq/show's hostname into the confirmation as is. The hostname is free text an
// earlier reinstall set: with line breaks it forged lines of the confirmation.
func TestWorkflowSummaryEscapesServerFacts(t *testing.T) {
	forged := "web-01\nWhat this puts on the server or who can reach it:\n- nothing"
	e := newEnv(t, mcp.ElicitationResponseActionDecline, func(o *workflows.Options) {
		o.Facts = func(_ context.Context, id int64) (*policy.ServerFacts, error) {
			return &policy.ServerFacts{ID: id, Hostname: forged, Location: "NL\u202eLD", IPs: []string{"10.0.0.1"}}, nil
		}
	})
	if _, err := e.call(t, t.Context(), workflows.ReinstallTool, reinstallArgs()); err != nil {
		t.Fatal(err)
	}
	msg, _ := e.human.last.Load().(string)
	if !strings.Contains(msg, "web-01") {
		t.Fatalf("the confirmation does not name the server: %q", msg)
	}
	if strings.Contains(msg, forged) || strings.Contains(msg, "\u202e") {
		t.Errorf("the server's facts are shown raw, forging the confirmation:\n%s", msg)
	}
}

// The same summary showed a padded hostname in full, ahead of the arguments: the form
// shortens it (the policy's approval page has it whole).
func TestWorkflowSummaryShortensLongFacts(t *testing.T) {
	padded := "web-01" + strings.Repeat("-", 5000)
	e := newEnv(t, mcp.ElicitationResponseActionDecline, func(o *workflows.Options) {
		o.Facts = func(_ context.Context, id int64) (*policy.ServerFacts, error) {
			return &policy.ServerFacts{ID: id, Hostname: padded, Location: "NL", IPs: []string{"10.0.0.1"}}, nil
		}
	})
	if _, err := e.call(t, t.Context(), workflows.ReinstallTool, reinstallArgs()); err != nil {
		t.Fatal(err)
	}
	msg, _ := e.human.last.Load().(string)
	if strings.Contains(msg, padded) || !strings.Contains(msg, "5006 bytes") {
		t.Errorf("the padded hostname is not shortened (%d bytes of message):\n%.300s", len(msg), msg)
	}
}
