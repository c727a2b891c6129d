package stack_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/tools"
	"github.com/hostkey/hostkey-mcp/tools/stack"
	"github.com/hostkey/hostkey-mcp/tools/toolstest"
	"github.com/hostkey/hostkey-mcp/webhook"
	"github.com/hostkey/hostkey-mcp/webhook/store"
)

// countingStore counts the callback jobs the receiver creates.
type countingStore struct {
	store.Store
	jobs atomic.Int32
}

func (c *countingStore) CreateJob(ctx context.Context, j store.Job) error {
	c.jobs.Add(1)
	return c.Store.CreateJob(ctx, j)
}

// The middleware order is the stack's: the policy decides before a callback job (and
// its secret URL) is made, so a refused call leaves no job behind; an allowed one
// carries the callback to invapi.
func TestPolicyDecidesBeforeTheCallbackIsInjected(t *testing.T) {
	args := map[string]any{"id": 40102, "os_id": 210, "root_pass": "Sandbox-pass-1", "location_name": "NL", "hostname": "db-nl-02"}
	for _, tc := range []struct {
		confirm policy.ConfirmMode
		jobs    int32
	}{{policy.ConfirmElicit, 0}, {policy.ConfirmOff, 1}} {
		t.Run(string(tc.confirm), func(t *testing.T) {
			mem, err := store.OpenShared(context.Background(), state.Memory)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = mem.Close() }) // after the stack: it closes only a store it made
			cs := &countingStore{Store: mem}
			st := toolstest.New(t, toolstest.Options{Full: func(o *stack.Options) {
				o.Receiver = webhook.Config{PublicURL: "https://hooks.example.com/hostkey", Store: cs}
				o.Policy.Confirm = tc.confirm
			}})
			res := st.Call(t, "eq_order_instance", args) // no elicitation: an elicit policy refuses
			sent := st.Sent("eq", "order_instance")
			if got := cs.jobs.Load(); got != tc.jobs || len(sent) != int(tc.jobs) {
				t.Fatalf("callback jobs %d, requests sent %d, want %d (%s)", got, len(sent), tc.jobs, toolstest.Text(res))
			}
			if tc.jobs == 1 && !strings.HasPrefix(sent[0].Form.Get("post_install_callback"), "https://hooks.example.com/hostkey/cb/install/") {
				t.Fatalf("invapi did not receive the callback URL: %+v", sent[0].Form)
			}
		})
	}
}

// The instructions say what the settings mean for the model: the workflows when they
// are loaded, the allowlist, read-only, the sandbox.
func TestInstructions(t *testing.T) {
	got := stack.Instructions(stack.Options{
		Selection:      tools.Selection{Toolsets: []string{"servers", "workflows"}},
		Policy:         policy.Options{ReadOnly: true, Servers: []int64{40101}, ServerTags: []string{"web"}},
		SandboxInstall: 20e9,
	})
	for _, want := range []string{"Prefer server_order", "Read-only mode", "Scope: only servers 40101 and servers tagged web", "SANDBOX", "20s"} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q: %s", want, got)
		}
	}
	if got := stack.Instructions(stack.Options{Selection: tools.Selection{Toolsets: []string{"servers"}}}); strings.Contains(got, "server_order") || strings.Contains(got, "Scope:") || strings.Contains(got, "SANDBOX") {
		t.Errorf("instructions name what is not set: %s", got)
	}
}

// Without a receiver store the stack makes one in memory; it serves the receiver and is
// closed with the stack (nobody else holds it).
func TestDefaultStoreClosesWithTheStack(t *testing.T) {
	ts := toolstest.New(t, toolstest.Options{NoConnect: true, Full: func(*stack.Options) {}})
	ctx := context.Background()
	st := ts.Full.Receiver.Store()
	if _, err := ts.Full.Receiver.LastCursor(ctx); err != nil {
		t.Fatal(err)
	}
	ts.Full.Close()
	if err := st.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("the stack's own store after Close: %v, want %v", err, store.ErrClosed)
	}
}
