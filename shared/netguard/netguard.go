// Package netguard is the address rule that keeps server-side requests (web pages, crawls,
// webhook deliveries) off loopback, private, link-local and other non-public addresses: the
// SSRF guard. WEBPAGE_ALLOW_PRIVATE lifts it for tests and on-prem installations.
package netguard

import (
	"net/netip"
	"strconv"
	"strings"
)

// blockedPrefixes are the address ranges that are refused unless private addresses are
// allowed. IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d)
// IPv6 addresses, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are checked by the IPv4
// address they carry; see [blockedAddr].
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network", incl. unspecified
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT shared address space
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, incl. broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("fc00::/7"),       // unique local (private)
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether a is not publicly routable. IPv6 forms that embed an IPv4
// address are judged by that IPv4 address.
func Blocked(a netip.Addr) bool {
	a = a.Unmap() // ::ffff:a.b.c.d
	if !a.IsValid() {
		return true
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case a.Zone() != "":
			return true // scoped addresses are link- or interface-local
		case nat64Prefix.Contains(a):
			return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return Blocked(netip.AddrFrom4([4]byte(b[2:6])))
		case [12]byte(b[:12]) == [12]byte{}:
			// IPv4-compatible ::a.b.c.d (deprecated), also covers :: and ::1.
			return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// LegacyIPv4 parses the inet_aton forms of an IPv4 address that are not dotted-quad decimal:
// 1 to 4 parts, each decimal, octal (leading 0) or hex (leading 0x), the last part filling the
// remaining bytes ("2130706433", "0x7f.1", "0177.0.0.1", "127.1"). A trailing dot is allowed.
func LegacyIPv4(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	parts := strings.Split(host, ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case p == "":
			return netip.Addr{}, false
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case p == "0x" || p == "0X":
			p, base = "0", 10
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
