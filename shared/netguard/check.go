package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrBlocked: the URL's host is, or resolves to, an address that is not publicly routable.
var ErrBlocked = errors.New("netguard: address not allowed")

// CheckURL refuses a URL whose host is a non-public IP literal, a non-canonical numeric IPv4
// form (http://2130706433/), or a name that resolves to a non-public address, unless
// allowPrivate. A name that does not resolve now is accepted: the guard that matters runs
// again when a connection is made (a name can change what it resolves to). The URL's syntax
// (scheme, host) is the caller's to check.
func CheckURL(ctx context.Context, rawURL string, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("netguard: %w", err)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if Blocked(a) {
			return fmt.Errorf("%w: %s", ErrBlocked, a.Unmap())
		}
		return nil
	}
	if a, ok := LegacyIPv4(host); ok {
		return fmt.Errorf("%w: non-canonical numeric host %q (%s)", ErrBlocked, host, a)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return fmt.Errorf("%w: localhost", ErrBlocked)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if Blocked(a) {
			return fmt.Errorf("%w: %s resolves to %s", ErrBlocked, host, a.Unmap())
		}
	}
	return nil
}
