// Package httpx is the one set of HTTP helpers every listener and client of hostkey-mcp
// uses: the loopback check, serving with timeouts and a graceful stop, and the bearer
// and Origin guard. It is a leaf: it imports nothing of this module, so policy, webhook,
// invapi, tools and cmd may all import it. It sits under invapi, the lowest layer that
// speaks HTTP, rather than in a new top-level folder.
package httpx

import (
	"net"
	"strings"
)

// IsLoopback reports whether s — a host, a host:port or a [v6]:port — names this
// machine's loopback interface: "localhost" or a loopback address (IPv4-mapped too). An
// empty host (":8080" binds every interface) is not loopback. Uses: plain http allowed
// only to loopback, listeners that serve this machine only, DNS-rebinding checks of Host
// and Origin.
func IsLoopback(s string) bool {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.Trim(s, "[]")
	if strings.EqualFold(s, "localhost") {
		return true
	}
	ip := net.ParseIP(s)
	return ip != nil && ip.IsLoopback()
}
