package webfetch

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"

	"github.com/quirehq/quire/shared/netguard"
)

// blockedAddr reports whether a is not publicly routable ([netguard.Blocked]).
func blockedAddr(a netip.Addr) bool { return netguard.Blocked(a) }

// guard applies the address rule.
type guard struct {
	allowPrivate bool
	exempt       func(netip.AddrPort) bool // tests only
}

// allowed reports whether connecting to ap is allowed.
func (g guard) allowed(ap netip.AddrPort) bool {
	if g.allowPrivate || (g.exempt != nil && g.exempt(ap)) {
		return true
	}
	return !blockedAddr(ap.Addr())
}

// control is the net.Dialer Control hook: it runs after the socket is created and before it
// connects, with the resolved address, for every connection attempt the Fetcher makes.
func (g guard) control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q", ErrBlockedAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrBlockedAddress, address)
	}
	if !g.allowed(ap) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, ap.Addr().Unmap())
	}
	return nil
}

// checkURL applies the URL rules: http or https, a host, no credentials, and a host that is
// not a refused IP literal or a non-canonical numeric IPv4 form (which resolvers and browsers
// read differently: http://2130706433/ is 127.0.0.1 to some). It returns the host's literal
// address when the host is an IP literal. It sends nothing anywhere.
func (f *Fetcher) checkURL(u *url.URL) (netip.Addr, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return netip.Addr{}, fmt.Errorf("%w: scheme %q (only http and https)", ErrInvalidURL, u.Scheme)
	}
	if u.User != nil {
		return netip.Addr{}, fmt.Errorf("%w: credentials in url", ErrInvalidURL)
	}
	host := u.Hostname()
	if host == "" {
		return netip.Addr{}, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return netip.Addr{}, fmt.Errorf("%w: port %q", ErrInvalidURL, p)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		port := uint16(80)
		if u.Scheme == "https" {
			port = 443
		}
		if p, err := strconv.ParseUint(u.Port(), 10, 16); err == nil {
			port = uint16(p)
		}
		if !f.guard.allowed(netip.AddrPortFrom(a, port)) {
			return a, fmt.Errorf("%w: %s", ErrBlockedAddress, a.Unmap())
		}
		return a, nil
	}
	if a, ok := legacyIPv4(host); ok {
		if !f.guard.allowPrivate && blockedAddr(a) {
			return a, fmt.Errorf("%w: %s (written %q)", ErrBlockedAddress, a, host)
		}
		return a, fmt.Errorf("%w: non-canonical numeric host %q (write it as %s)", ErrInvalidURL, host, a)
	}
	return netip.Addr{}, nil
}

// legacyIPv4 parses the inet_aton forms of an IPv4 address that are not dotted-quad
// decimal ([netguard.LegacyIPv4]).
func legacyIPv4(host string) (netip.Addr, bool) { return netguard.LegacyIPv4(host) }
