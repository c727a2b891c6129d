package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/hostkey/hostkey-mcp/invapi/httpx"
)

// addrPolicy decides which addresses a delivery may connect to.
type addrPolicy struct {
	allowPrivate bool
	// public overrides the classification in tests (loopback aliases play the
	// internet); nil means netip's own.
	public func(netip.Addr) bool
}

func (p addrPolicy) isPublic(a netip.Addr) bool {
	if p.public != nil {
		return p.public(a)
	}
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!cgnat.Contains(a) && !a.IsUnspecified()
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ErrRefusedAddress is a destination (or a redirect) resolving to a loopback, private
// or link-local address without --notify-allow-private.
var ErrRefusedAddress = errors.New("refused: the address is loopback, private or link-local (--notify-allow-private allows it)")

// check refuses a non-public address unless allowed.
func (p addrPolicy) check(a netip.Addr) error {
	if p.isPublic(a) || p.allowPrivate {
		return nil
	}
	return fmt.Errorf("%s: %w", a.Unmap(), ErrRefusedAddress)
}

// checkURL is what every URL, configured or redirected to, must satisfy before a
// connection: https, or http to loopback; a literal address checked at once.
func (p addrPolicy) checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !httpx.IsLoopback(u.Hostname()) {
			return fmt.Errorf("%s://%s: https is required except to loopback", u.Scheme, u.Host)
		}
	default:
		return fmt.Errorf("%s://%s: only https (or http to loopback) is delivered to", u.Scheme, u.Host)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		return p.check(a)
	}
	return nil
}

// client is the HTTP client of deliveries. The address is checked after DNS, at the
// moment of connecting (Control), so neither a hostname resolving to a private address
// nor a DNS answer changed between check and connect (rebinding) nor a redirect gets
// through; every redirect target is checked again by checkURL. No proxy from the
// environment: it would connect on the destination's behalf, past the check.
func (p addrPolicy) client(timeout time.Duration) *http.Client {
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("refused: unparseable address %q", address)
			}
			return p.check(ap.Addr())
		},
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if err := p.checkURL(req.URL); err != nil {
				return fmt.Errorf("redirect refused: %w", err)
			}
			return nil
		},
	}
}
