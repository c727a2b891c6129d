package invapi

import "github.com/hostkey/hostkey-mcp/schemas"

// CatalogResolver resolves module/action through the catalog, so Call knows each
// action's endpoint and method, sends no token where invapi wants none, and retries and
// replays reads only.
func CatalogResolver(cat *schemas.Catalog) Resolver {
	return ResolverFunc(func(module, action string) (Spec, bool) {
		a, ok := cat.Lookup(module, action)
		if !ok {
			return Spec{}, false
		}
		return Spec{Endpoint: a.Endpoint, Method: a.Method(), ReadOnly: a.ReadOnly(), NoAuth: a.NoAuth, SecretKeys: a.SecretFields()}, true
	})
}
