package webfetch

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
)

func TestBlockedAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"10.0.0.1", true},
		{"172.16.5.4", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"::127.0.0.1", true},       // IPv4-compatible
		{"64:ff9b::a00:1", true},    // NAT64 of 10.0.0.1
		{"2002:7f00:1::1", true},    // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", true}, // 6to4 of 169.254.169.254
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"172.32.0.1", false},
		{"100.128.0.1", false},
		{"93.184.216.34", false},
		{"2606:4700:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", false},  // 6to4 of 8.8.8.8
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(tt.addr)
			if got := blockedAddr(a); got != tt.blocked {
				t.Errorf("blockedAddr(%s) = %v, want %v", tt.addr, got, tt.blocked)
			}
		})
	}
}

func TestLegacyIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want string // "" = not a numeric host
	}{
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"10.1", "10.0.0.1"},
		{"169.254.43518", "169.254.169.254"},
		{"127.000.000.001", "127.0.0.1"},
		{"2852039166", "169.254.169.254"},
		{"134744072", "8.8.8.8"},
		{"2130706433.", "127.0.0.1"},
		{"example.com", ""},
		{"1.2.3.4.5", ""},
		{"4294967296", ""}, // 2^32
		{"256.1.1.1", ""},
		{"08.1.1.1", ""}, // 8 is not octal
		{"deadbeef", ""},
		{"1e3", ""},
	}
	for _, tt := range tests {
		got, ok := legacyIPv4(tt.host)
		switch {
		case tt.want == "" && ok:
			t.Errorf("legacyIPv4(%q) = %s, want not numeric", tt.host, got)
		case tt.want != "" && (!ok || got.String() != tt.want):
			t.Errorf("legacyIPv4(%q) = %s, %v, want %s", tt.host, got, ok, tt.want)
		}
	}
}

// TestFetchRefusesBlockedLiterals proves URLs naming a non-public address are refused before
// any connection: the loopback server behind them counts no request, and the other addresses
// are never dialled (a refused literal fails in the URL check, before DNS or connect).
func TestFetchRefusesBlockedLiterals(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, "<p>secret</p>")
	})
	port := srv.addrPort(t).Port()
	f := New(Config{}) // production defaults: private addresses refused
	urls := []string{
		fmt.Sprintf("http://127.0.0.1:%d/", port),
		fmt.Sprintf("http://[::1]:%d/", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		fmt.Sprintf("http://[::ffff:7f00:1]:%d/", port),
		fmt.Sprintf("http://2130706433:%d/", port),
		fmt.Sprintf("http://0x7f000001:%d/", port),
		fmt.Sprintf("http://0177.0.0.1:%d/", port),
		fmt.Sprintf("http://127.1:%d/", port),
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://10.0.0.1/",
		"https://192.168.0.1/",
		"http://172.16.0.1:8080/",
		"http://100.64.0.1/",
		"http://0.0.0.0/",
		"http://[::]/",
		"http://[fe80::1%25eth0]/",
		"http://224.0.0.1/",
		"http://2852039166/", // 169.254.169.254
		"http://167772161/",  // 10.0.0.1
	}
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			_, err := f.Fetch(t.Context(), u)
			if !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("Fetch(%s) error = %v, want ErrBlockedAddress", u, err)
			}
			if !Permanent(err) {
				t.Errorf("Permanent(%v) = false, want true", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := srv.hits.Load(); n != 0 {
			t.Errorf("loopback server got %d requests, want 0", n)
		}
	})
}

// TestFetchRefusesResolvedPrivate proves the connect-time check: host names resolving to a
// non-public address are refused in the dialer, before connect. The names resolve through an
// in-memory DNS server, so nothing leaves the process.
func TestFetchRefusesResolvedPrivate(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, "secret")
	})
	port := srv.addrPort(t).Port()
	dns := newFakeDNS(map[string][]netip.Addr{
		"loopback.test.": {netip.MustParseAddr("127.0.0.1")},
		"metadata.test.": {netip.MustParseAddr("169.254.169.254")},
		"private.test.":  {netip.MustParseAddr("10.0.0.1")},
		"cgnat.test.":    {netip.MustParseAddr("100.64.1.1")},
		"ula.test.":      {netip.MustParseAddr("fd00::1")},
		"mapped.test.":   {netip.MustParseAddr("::ffff:127.0.0.1")},
	})
	f := New(Config{resolver: dns.resolver()})
	t.Cleanup(f.CloseIdleConnections)
	for _, host := range []string{"loopback.test.", "metadata.test.", "private.test.", "cgnat.test.",
		"ula.test.", "mapped.test.", "localhost"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			_, err := f.Fetch(t.Context(), fmt.Sprintf("http://%s:%d/", host, port))
			if !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("Fetch(%s) error = %v, want ErrBlockedAddress", host, err)
			}
			if !Permanent(err) {
				t.Errorf("Permanent(%v) = false", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := srv.hits.Load(); n != 0 {
			t.Errorf("loopback server got %d requests, want 0", n)
		}
	})
}

// TestFetchDNSRebinding: a name that first resolves to an allowed address and then rebinds to
// the metadata address is refused on the next connection.
func TestFetchDNSRebinding(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "close") // every fetch dials (and resolves) anew
		_, _ = fmt.Fprint(w, "public page")
	})
	public := srv.addrPort(t)
	dns := newFakeDNS(map[string][]netip.Addr{
		"rebind.test.": {public.Addr(), netip.MustParseAddr("169.254.169.254")},
	})
	f := New(Config{
		resolver: dns.resolver(),
		// Only the test server's exact address passes as public; the guard is otherwise
		// the production one.
		exempt: func(ap netip.AddrPort) bool { return ap == public },
	})
	t.Cleanup(f.CloseIdleConnections)
	u := fmt.Sprintf("http://rebind.test.:%d/", public.Port())
	page, err := f.Fetch(t.Context(), u)
	if err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	if string(page.Body) != "public page" {
		t.Fatalf("first Fetch body = %q", page.Body)
	}
	f.CloseIdleConnections()
	_, err = f.Fetch(t.Context(), u)
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("second Fetch (rebound) error = %v, want ErrBlockedAddress", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("server hits = %d, want 1", n)
	}
}

// TestFetchRedirectToPrivateRefused: a public page redirecting to a loopback address (literal
// or by name) is refused on that hop.
func TestFetchRedirectToPrivateRefused(t *testing.T) {
	t.Parallel()
	internal := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, "internal secret")
	})
	internalPort := internal.addrPort(t).Port()
	public := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/literal":
			http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/", internalPort), http.StatusFound)
		case "/name":
			http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/", internalPort), http.StatusMovedPermanently)
		case "/mapped":
			http.Redirect(w, r, fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", internalPort), http.StatusTemporaryRedirect)
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/decimal":
			http.Redirect(w, r, fmt.Sprintf("http://2130706433:%d/", internalPort), http.StatusFound)
		}
	})
	publicAddr := public.addrPort(t)
	f := New(Config{exempt: func(ap netip.AddrPort) bool { return ap == publicAddr }})
	t.Cleanup(f.CloseIdleConnections)
	for _, path := range []string{"/literal", "/name", "/mapped", "/metadata", "/decimal"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			_, err := f.Fetch(t.Context(), public.URL+path)
			if !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("Fetch(%s) error = %v, want ErrBlockedAddress", path, err)
			}
		})
	}
	t.Cleanup(func() {
		if n := internal.hits.Load(); n != 0 {
			t.Errorf("internal server got %d requests, want 0", n)
		}
		if n := public.hits.Load(); n != 5 {
			t.Errorf("public server got %d requests, want 5", n)
		}
	})
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	g := guard{}
	for _, addr := range []string{"10.0.0.1:80", "169.254.169.254:80", "[::1]:443", "[::ffff:127.0.0.1]:80"} {
		if err := g.control("tcp", addr, nil); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("control(%s) = %v, want ErrBlockedAddress", addr, err)
		}
	}
	if err := g.control("tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("control(8.8.8.8:443) = %v, want nil", err)
	}
	if err := g.control("udp", "8.8.8.8:53", nil); !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("control(udp) = %v, want ErrBlockedAddress", err)
	}
	allow := guard{allowPrivate: true}
	if err := allow.control("tcp", "10.0.0.1:80", nil); err != nil {
		t.Errorf("AllowPrivate control(10.0.0.1:80) = %v, want nil", err)
	}
}

func TestAllowPrivateLiftsAddressRuleOnly(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, "wiki")
	})
	f := newLocalFetcher(t, Config{})
	if _, err := f.Fetch(t.Context(), srv.URL+"/"); err != nil {
		t.Fatalf("Fetch with AllowPrivate: %v", err)
	}
	port := srv.addrPort(t).Port()
	for _, u := range []string{
		fmt.Sprintf("http://user:pass@127.0.0.1:%d/", port),
		fmt.Sprintf("ftp://127.0.0.1:%d/", port),
		fmt.Sprintf("http://2130706433:%d/", port),
	} {
		if _, err := f.Fetch(t.Context(), u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("Fetch(%s) error = %v, want ErrInvalidURL", u, err)
		}
	}
}
