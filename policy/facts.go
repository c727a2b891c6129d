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
// confirmation) with invapi's one reader. Tags become "name=value" (or "name" when the
// value is empty).
func ShowFacts(c Caller) FactsFunc {
	return func(ctx context.Context, id int64) (*ServerFacts, error) {
		s, err := invapi.ShowServer(ctx, c, id)
		if err != nil {
			return nil, err
		}
		out := &ServerFacts{ID: id, Hostname: s.Hostname, Location: s.Location, IPs: s.IPs}
		for _, t := range s.Tags {
			out.Tags = append(out.Tags, t.String())
		}
		return out, nil
	}
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
