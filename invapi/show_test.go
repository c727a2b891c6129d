package invapi_test

import (
	"context"
	"slices"
	"testing"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// TestShowServerAgainstTheSimulator: the reader over real HTTP gives what the simulator
// holds for every server: hostname, location, status, condition, addresses, tags.
func TestShowServerAgainstTheSimulator(t *testing.T) {
	e := newSimEnv(t)
	checked := 0
	for _, id := range e.sim.ServerIDs() {
		want, _ := e.sim.Server(id)
		if want.Status == "prepare" {
			continue // an order still being set up has no eq/show yet
		}
		checked++
		got, err := invapi.ShowServer(context.Background(), e.client, id)
		if err != nil {
			t.Fatalf("server %d: %v", id, err)
		}
		if got.ID != id || got.Hostname != want.Hostname || got.Location != want.Location ||
			got.Status != want.Status || got.Condition != want.Condition || !slices.Equal(got.IPs, want.IPs) {
			t.Errorf("server %d: got %+v, simulator has %+v", id, got, want)
		}
		if len(got.Tags) != len(want.Tags) {
			t.Errorf("server %d: tags %v, simulator has %v", id, got.Tags, want.Tags)
		}
		for _, tag := range got.Tags {
			if v, ok := want.Tags[tag.Name]; !ok || v != tag.Value {
				t.Errorf("server %d: tag %v not in %v", id, tag, want.Tags)
			}
		}
	}
	if checked < 2 {
		t.Fatalf("only %d servers read", checked)
	}
}

// TestParseServerInfoDocShapes: the three shapes of the vendor docs. IPMI addresses and
// non-addresses are left out; each address once.
func TestParseServerInfoDocShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    map[string]any
		want []string
		loc  string
	}{
		{"001", map[string]any{"IP": []any{map[string]any{"IP": "192.0.2.10", "main_ip": 1}, map[string]any{"IP": "2001:db8::10"}},
			"IPMI": map[string]any{"interfaces": []any{map[string]any{"IP": "10.9.9.9"}}}, "location": map[string]any{"dc_location": "NL"},
			"server_data": map[string]any{"id": 1}}, []string{"192.0.2.10", "2001:db8::10"}, "NL"},
		{"000", map[string]any{"IP": []any{}, "server_data": map[string]any{"ip": []any{map[string]any{"IP": "192.168.1.1"}}},
			"location": map[string]any{"dc_location": "1"}}, []string{"192.168.1.1"}, "1"},
		{"002", map[string]any{"IP": []any{map[string]any{"IP": "192.168.1.1"}}, "server_data": map[string]any{"ip": "192.168.1.1", "location": "NL"},
			"IPMI": map[string]any{"interfaces": []any{map[string]any{"IP": "192.168.1.100"}}}, "location": map[string]any{"dc_name": "Datacenter 1"}},
			[]string{"192.168.1.1"}, "NL"},
		{"hostname in IP, mapped v4", map[string]any{"IP": []any{map[string]any{"IP": "nl-vmmini"}, map[string]any{"IP": "::ffff:192.0.2.7"}}},
			[]string{"192.0.2.7"}, ""},
	} {
		got, err := invapi.ParseServerInfo(1, tc.f)
		if err != nil || !slices.Equal(got.IPs, tc.want) || got.Location != tc.loc {
			t.Errorf("%s: %+v %v; want IPs %q location %q", tc.name, got, err, tc.want, tc.loc)
		}
	}
	if _, err := invapi.ParseServerInfo(1, nil); err == nil {
		t.Error("a non-object answer was accepted")
	}
}
