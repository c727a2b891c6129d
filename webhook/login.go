package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// LoginAlertURL is <public-url>/alerts/login/<token>: the address to give an API key as
// login_notify_address. The token is generated on first start and kept in the store;
// treat the URL as a secret.
func (r *Receiver) LoginAlertURL(ctx context.Context) (string, error) {
	if r.public == "" {
		return "", ErrNoPublicURL
	}
	tok, err := r.store.Secret(ctx, loginSecretName, func() (string, error) { return newSecret() })
	if err != nil {
		return "", err
	}
	return r.public + "/alerts/login/" + tok, nil
}

// RotateLoginToken replaces the login-alert token; the old URL stops working at once.
// Point the API keys at the new LoginAlertURL afterwards.
func (r *Receiver) RotateLoginToken(ctx context.Context) error {
	tok, err := newSecret()
	if err != nil {
		return err
	}
	if err := r.store.SetSecret(ctx, loginSecretName, tok); err != nil {
		return err
	}
	h := sha256.Sum256([]byte(tok))
	r.loginHash.Store(&h)
	return nil
}

// Caller is the part of *invapi.Client EqShowIPs uses.
type Caller interface {
	Call(ctx context.Context, module, action string, params map[string]any) (*invapi.Response, error)
}

// EqShowIPs is a ServerIPLookup that reads a server's addresses from eq/show
// (the "IP" list; IPMI addresses are not callers and are left out).
func EqShowIPs(c Caller) ServerIPLookup {
	return func(ctx context.Context, id int64) ([]string, error) {
		resp, err := c.Call(ctx, "eq", "show", map[string]any{"id": id})
		if err != nil {
			return nil, err
		}
		return IPsFromShow(resp.Fields), nil
	}
}

// IPsFromShow extracts the server's IP addresses from an eq/show answer.
func IPsFromShow(fields map[string]any) []string {
	var out []string
	seen := map[netip.Addr]bool{}
	add := func(v any) {
		s := ""
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			s = string(x)
		}
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			if a, err := netip.ParseAddr(strings.TrimSpace(f)); err == nil && !seen[a.Unmap()] {
				seen[a.Unmap()] = true
				out = append(out, a.Unmap().String())
			}
		}
	}
	for _, key := range []string{"IP", "ip", "ips", "IPs"} {
		switch list := fields[key].(type) {
		case []any:
			for _, item := range list {
				switch it := item.(type) {
				case map[string]any:
					for _, k := range []string{"IP", "ip", "address"} {
						add(it[k])
					}
				default:
					add(it)
				}
			}
		case string:
			add(list)
		}
	}
	if sd, ok := fields["server_data"].(map[string]any); ok {
		for _, k := range []string{"ip", "IP", "main_ip"} {
			add(sd[k])
		}
	}
	return out
}
