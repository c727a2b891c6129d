package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/webhook"
)

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

// ParseAPIKey reads an api_keys/view (or one api_keys/list item) answer.
func ParseAPIKey(fields map[string]any) (APIKey, error) {
	d := fields
	if inner, ok := fields["data"].(map[string]any); ok {
		d = inner
	}
	id, ok := schemas.ToInt64(d["id"])
	if !ok || id <= 0 {
		return APIKey{}, errors.New("api key: answer has no id")
	}
	k := APIKey{ID: id}
	k.Name, _ = d["name"].(string)
	if n, ok := schemas.ToInt64(d["active"]); ok {
		k.Active = int(n)
	}
	k.IP, _ = d["ip"].(string)
	k.ServerID, _ = schemas.ToInt64(d["server_id"])
	k.LoginNotifyMethod, _ = d["login_notify_method"].(string)
	k.LoginNotifyAddress, _ = d["login_notify_address"].(string)
	return k, nil
}

// PointAPIKey reads API key keyID (api_keys/view) and sets its login notifications to
// the receiver's LoginAlertURL (api_keys/edit). api_keys/edit is destructive in the
// catalog: callers (the CLI command or tool) confirm with a human first. Per-server keys
// are refused: the docs want login_notify_method none for them.
// d is the *invapi.Client, or cmd's client that runs each request as the catalog tool of
// the same name (so the edit passes the policy).
func PointAPIKey(ctx context.Context, r *webhook.Receiver, d invapi.Doer, keyID int64) (APIKey, error) {
	alert, err := r.LoginAlertURL(ctx)
	if err != nil {
		return APIKey{}, err
	}
	resp, err := d.Do(ctx, &invapi.Request{Module: "api_keys", Action: "view", ReadOnly: true, Params: map[string]any{"id": keyID}})
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
	// The key keeps its name, active state and IP allow-list.
	p := map[string]any{"id": key.ID, "name": key.Name, "active": key.Active,
		"login_notify_method": "webhook", "login_notify_address": alert}
	if key.IP != "" {
		p["ip"] = key.IP
	}
	if _, err := d.Do(ctx, &invapi.Request{Module: "api_keys", Action: "edit", Params: map[string]any{"params": p}}); err != nil {
		return key, fmt.Errorf("point API key %d at the login alert URL: %w", keyID, err)
	}
	key.LoginNotifyMethod, key.LoginNotifyAddress = "webhook", alert
	return key, nil
}
