package webhook

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ParseCIDRs parses a comma- or space-separated list of CIDRs or bare addresses (a bare
// address is a /32 or /128), as --trusted-proxies gives it.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseHostAddr parses "1.2.3.4", "1.2.3.4:80", "[::1]:80" or "::1".
func parseHostAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the party that sent r. X-Forwarded-For is believed
// only when the connection comes from a trusted proxy, and then only up to the first
// hop (from the right) that is not itself a trusted proxy: a client cannot spoof its way
// past the proxy by sending its own X-Forwarded-For.
func ClientIP(r *http.Request, proxies []netip.Prefix) netip.Addr {
	remote, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !trusted(remote, proxies) {
		return remote
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := remote
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHostAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !trusted(a, proxies) {
			break
		}
	}
	return client
}

// rateKey groups IPv6 senders by /64 (one host usually owns a whole /64).
func rateKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

// limiter is a per-source token bucket with idle eviction and a hard cap on how many
// sources it tracks (past the cap, untracked sources share one bucket).
type limiter struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration

	mu        sync.Mutex
	m         map[netip.Addr]*limEntry
	overflow  *rate.Limiter
	lastSweep time.Time
}

type limEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(limit rate.Limit, burst int) *limiter {
	return &limiter{limit: limit, burst: burst, max: 10000, idle: 5 * time.Minute,
		m: map[netip.Addr]*limEntry{}, overflow: rate.NewLimiter(limit, burst)}
}

func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	if l == nil || l.limit == rate.Inf {
		return true
	}
	k := rateKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for key, e := range l.m {
			if now.Sub(e.seen) > l.idle {
				delete(l.m, key)
			}
		}
		l.lastSweep = now
	}
	e, ok := l.m[k]
	if !ok {
		if len(l.m) >= l.max {
			return l.overflow.AllowN(now, 1)
		}
		e = &limEntry{l: rate.NewLimiter(l.limit, l.burst)}
		l.m[k] = e
	}
	e.seen = now
	return e.l.AllowN(now, 1)
}
