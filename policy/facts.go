package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
)

// ShowFacts is a FactsFunc that reads eq/show through c (a read: it never needs a
// confirmation). Tags become "name=value" (or "name" when the value is empty).
func ShowFacts(c Caller) FactsFunc {
	return func(ctx context.Context, id int64) (*ServerFacts, error) {
		resp, err := c.Do(ctx, &invapi.Request{
			Module: "eq", Action: "show", Endpoint: "eq.php", Method: "POST", ReadOnly: true,
			Params: map[string]any{"id": id},
		})
		if err != nil {
			return nil, err
		}
		return parseShow(id, resp.Fields)
	}
}

func parseShow(id int64, f map[string]any) (*ServerFacts, error) {
	if f == nil {
		return nil, fmt.Errorf("eq/show %d: not a JSON object", id)
	}
	out := &ServerFacts{ID: id}
	if sd, ok := f["server_data"].(map[string]any); ok {
		out.Hostname = str(sd["hostname"])
	}
	if loc, ok := f["location"].(map[string]any); ok {
		out.Location = str(loc["dc_location"])
	}
	if ips, ok := f["IP"].([]any); ok {
		for _, x := range ips {
			if m, ok := x.(map[string]any); ok {
				if ip := str(m["IP"]); ip != "" {
					out.IPs = append(out.IPs, ip)
				}
			}
		}
	}
	if tags, ok := f["tags"].([]any); ok {
		for _, x := range tags {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			name, value := str(m["tag"]), str(m["value"])
			switch {
			case name == "":
			case value == "":
				out.Tags = append(out.Tags, name)
			default:
				out.Tags = append(out.Tags, name+"="+value)
			}
		}
	}
	return out, nil
}

func str(v any) string {
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

// File is a policy file: {"classes": {"eq_reboot": "write", "tag/flip_tag": "read"}}.
// Keys are tool names or module/action (for actions reached through invapi_call).
type File struct {
	Classes map[string]schemas.Class `json:"classes"`
}

var moduleAction = regexp.MustCompile(`^[a-z][a-z0-9_]*/[a-z0-9_]+$`)

// LoadFile reads and checks a policy file against the catalog (nil: schemas.Load()).
func LoadFile(path string, cat *schemas.Catalog) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(b, cat)
}

// ParseFile is LoadFile on bytes.
func ParseFile(data []byte, cat *schemas.Catalog) (*File, error) {
	if cat == nil {
		cat = schemas.Load()
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w (want {\"classes\":{\"eq_reboot\":\"write\"}})", err)
	}
	for k, c := range f.Classes {
		if !c.Valid() {
			return nil, fmt.Errorf("%s: class %q: want read, write or destructive", k, c)
		}
		if _, ok := cat.Tool(k); ok || k == "invapi_call" || moduleAction.MatchString(k) {
			continue
		}
		return nil, fmt.Errorf("%q is neither a tool name nor module/action", k)
	}
	return &f, nil
}
