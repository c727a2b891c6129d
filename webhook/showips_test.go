package webhook

import (
	"context"
	"slices"
	"testing"

	"github.com/hostkey/hostkey-mcp/invapi"
)

type showFake map[string]any

func (f showFake) Do(context.Context, *invapi.Request) (*invapi.Response, error) {
	return &invapi.Response{Fields: f}, nil
}

// TestEqShowIPsDocumentedShapes: the addresses allowed to call back are read like the
// confirmation reads them; the 000 docs give them under server_data.ip as a list, which
// the webhook's own parser missed (the source check then knew no address).
func TestEqShowIPsDocumentedShapes(t *testing.T) {
	f := showFake{"server_data": map[string]any{"id": 1, "ip": []any{map[string]any{"IP": "192.168.1.1", "status": "active"}}},
		"IP": []any{}, "IPMI": map[string]any{"interfaces": []any{map[string]any{"IP": "10.9.9.9"}}}}
	got, err := EqShowIPs(f)(context.Background(), 1)
	if err != nil || !slices.Equal(got, []string{"192.168.1.1"}) {
		t.Fatalf("%q %v", got, err)
	}
}
