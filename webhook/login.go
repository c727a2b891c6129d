package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
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

// APIKey is an API key's settings as api_keys/view and api_keys/list show them.
type APIKey struct {
	ID                 int64
	Name               string
	Active             int
	IP                 string
	ServerID           int64
	LoginNotifyMethod  string
	LoginNotifyAddress string
}

// LoginNotifyParams builds the arguments of api_keys/edit (the api_keys_edit tool's
// shape, which the invapi client encodes as params[...]) that point key at alertURL with
// login_notify_method=webhook, keeping its name, active state, IP allow-list and server.
func LoginNotifyParams(key APIKey, alertURL string) map[string]any {
	p := map[string]any{
		"id":                   key.ID,
		"name":                 key.Name,
		"active":               key.Active,
		"login_notify_method":  "webhook",
		"login_notify_address": alertURL,
	}
	if key.IP != "" {
		p["ip"] = key.IP
	}
	if key.ServerID != 0 {
		p["server_id"] = key.ServerID
	}
	return map[string]any{"params": p}
}

// Caller is the part of *invapi.Client the helpers use.
type Caller interface {
	Call(ctx context.Context, module, action string, params map[string]any) (*invapi.Response, error)
}

// ParseAPIKey reads an api_keys/view (or one api_keys/list item) answer.
func ParseAPIKey(fields map[string]any) (APIKey, error) {
	d := fields
	if inner, ok := fields["data"].(map[string]any); ok {
		d = inner
	}
	id, ok := toInt64(d["id"])
	if !ok || id <= 0 {
		return APIKey{}, errors.New("api key: answer has no id")
	}
	k := APIKey{ID: id}
	k.Name, _ = d["name"].(string)
	if n, ok := toInt64(d["active"]); ok {
		k.Active = int(n)
	}
	k.IP, _ = d["ip"].(string)
	k.ServerID, _ = toInt64(d["server_id"])
	k.LoginNotifyMethod, _ = d["login_notify_method"].(string)
	k.LoginNotifyAddress, _ = d["login_notify_address"].(string)
	return k, nil
}

// PointAPIKey reads API key keyID (api_keys/view) and sets its login notifications to
// this receiver's LoginAlertURL (api_keys/edit). api_keys/edit is destructive in the
// catalog: callers (the CLI command or tool) confirm with a human first. Per-server keys
// are refused: the docs want login_notify_method none for them.
func (r *Receiver) PointAPIKey(ctx context.Context, c Caller, keyID int64) (APIKey, error) {
	alert, err := r.LoginAlertURL(ctx)
	if err != nil {
		return APIKey{}, err
	}
	resp, err := c.Call(ctx, "api_keys", "view", map[string]any{"id": keyID})
	if err != nil {
		return APIKey{}, fmt.Errorf("read API key %d: %w", keyID, err)
	}
	key, err := ParseAPIKey(resp.Fields)
	if err != nil {
		return APIKey{}, fmt.Errorf("read API key %d: %w", keyID, err)
	}
	if key.ServerID != 0 {
		return key, fmt.Errorf("API key %d is bound to server %d: invapi's docs say per-server keys use login_notify_method none", keyID, key.ServerID)
	}
	if _, err := c.Call(ctx, "api_keys", "edit", LoginNotifyParams(key, alert)); err != nil {
		return key, fmt.Errorf("point API key %d at the login alert URL: %w", keyID, err)
	}
	key.LoginNotifyMethod, key.LoginNotifyAddress = "webhook", alert
	return key, nil
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
