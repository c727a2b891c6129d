package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/policy"
)

// showAnswer answers eq/show with one JSON body, numbers as json.Number like invapi.
type showAnswer string

func (s showAnswer) Do(_ context.Context, req *invapi.Request) (*invapi.Response, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var f map[string]any
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return &invapi.Response{Body: json.RawMessage(s), Fields: f}, nil
}

// TestShowFactsIPsAsTheDocsGiveThem: the confirmation names the server's addresses in
// each shape the vendor docs show eq/show in — the IP list (001 and the simulator), the
// list under server_data.ip with an empty top-level IP (000), a server_data.ip string
// (002) — never an IPMI address, never a value that is not an address, each once. The
// policy's parser read only the top-level list and kept anything in it (it disagreed
// with the webhook's source check, which read server_data and dropped non-addresses).
func TestShowFactsIPsAsTheDocsGiveThem(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"001 IP list", `{"result":"OK","server_data":{"id":7,"hostname":"web-1"},"location":{"dc_location":"NL"},
			"IP":[{"IP":"31.207.44.105","main_ip":1},{"IP":"31.207.44.106","main_ip":0}],
			"IPMI":{"interfaces":[{"IP":"10.9.9.9"}]}}`, []string{"31.207.44.105", "31.207.44.106"}},
		{"000 server_data.ip list", `{"result":"OK","server_data":{"id":7,"hostname":"web-1","ip":[{"IP":"192.168.1.1","status":"active"}]},
			"IP":[],"IPMI":{"interfaces":[]}}`, []string{"192.168.1.1"}},
		{"002 server_data.ip string", `{"result":"OK","server_data":{"id":7,"ip":"192.0.2.5"},
			"IP":[{"IP":"192.0.2.5"},{"IP":"192.0.2.6"}],"IPMI":{"interfaces":[{"IP":"192.168.1.100"}]}}`, []string{"192.0.2.5", "192.0.2.6"}},
		{"not an address", `{"result":"OK","server_data":{"id":7},"IP":[{"IP":"nl-vmmini"},{"IP":"2001:db8::1"},{"IP":"2001:db8::1"}]}`,
			[]string{"2001:db8::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := policy.ShowFacts(showAnswer(tc.body))(context.Background(), 7)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.IPs, tc.want) {
				t.Fatalf("IPs %q, want %q", f.IPs, tc.want)
			}
		})
	}
}
