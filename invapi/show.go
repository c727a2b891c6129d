package invapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Doer sends one request: *Client, or the policy's guarded client.
type Doer interface {
	Do(ctx context.Context, req *Request) (*Response, error)
}

// ServerInfo is what eq/show says about a server, read one way for every user: the
// policy's confirmations and tag scope, the webhook's source check, the workflows.
type ServerInfo struct {
	ID        int64
	Hostname  string // server_data.hostname (free text the account owner chose)
	Location  string // location.dc_location, else server_data.location (the 002 docs)
	Status    string // server_data.status: rent, …
	Condition string // server_data.Condition_Component: power_on, power_off, presale, rent, TT
	// IPs are the server's own addresses, each once, in the order eq/show lists them: the
	// IP list (001 docs, the simulator), then server_data.ip as a list of {IP} (000 docs,
	// whose top-level IP is empty) or a string (002 docs). IPMI addresses are not the
	// server's; values that are not addresses (billing puts hostnames in "IP") are left out.
	IPs  []string
	Tags []Tag
}

// Tag is one entry of eq/show's tags.
type Tag struct{ Name, Value string }

// String is "name=value", or "name" when the value is empty.
func (t Tag) String() string {
	if t.Value == "" {
		return t.Name
	}
	return t.Name + "=" + t.Value
}

// ShowServer reads server id with eq/show (a read: never confirmed, retried).
func ShowServer(ctx context.Context, d Doer, id int64) (*ServerInfo, error) {
	resp, err := d.Do(ctx, &Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{"id": id}})
	if err != nil {
		return nil, err
	}
	return ParseServerInfo(id, resp.Fields)
}

// ParseServerInfo reads an eq/show answer's fields.
func ParseServerInfo(id int64, f map[string]any) (*ServerInfo, error) {
	if f == nil {
		return nil, fmt.Errorf("eq/show %d: not a JSON object", id)
	}
	out := &ServerInfo{ID: id}
	sd, _ := f["server_data"].(map[string]any)
	out.Hostname = text(sd["hostname"])
	out.Status = text(sd["status"])
	out.Condition = text(sd["Condition_Component"])
	if loc, ok := f["location"].(map[string]any); ok {
		out.Location = text(loc["dc_location"])
	}
	if out.Location == "" {
		if s, ok := sd["location"].(string); ok {
			out.Location = s
		}
	}
	seen := map[netip.Addr]bool{}
	var add func(v any)
	add = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, it := range x {
				add(it)
			}
		case map[string]any:
			add(x["IP"])
		case string:
			for _, s := range strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ' ' }) {
				if a, err := netip.ParseAddr(s); err == nil && !seen[a.Unmap()] {
					seen[a.Unmap()] = true
					out.IPs = append(out.IPs, a.Unmap().String())
				}
			}
		}
	}
	add(f["IP"])
	add(sd["ip"])
	if tags, ok := f["tags"].([]any); ok {
		for _, x := range tags {
			if m, ok := x.(map[string]any); ok && text(m["tag"]) != "" {
				out.Tags = append(out.Tags, Tag{Name: text(m["tag"]), Value: text(m["value"])})
			}
		}
	}
	return out, nil
}

// text is a scalar field as text ("" when absent).
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
