package models

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// URLGuard keeps deliveries away from the server's own network: URLs that
// resolve to loopback, private, link-local (cloud metadata), shared or
// otherwise special addresses are refused when saved and, against DNS
// rebinding, again on every connection, unless AllowPrivate is set
// (CRUMBS_WEBHOOK_ALLOW_PRIVATE=true, for development and tests).
type URLGuard struct {
	AllowPrivate bool
	// Resolve looks up a host's addresses, for the check when a URL is
	// saved and for every connection; nil is the system resolver. Tests
	// set it to make a name resolve as they need (DNS rebinding).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

func (g URLGuard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if g.Resolve != nil {
		return g.Resolve(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// blockedPrefixes are special-purpose ranges netip's predicates miss.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),      // NAT64 reaches IPv4 inside
	netip.MustParsePrefix("64:ff9b:1::/48"),    // local NAT64
	netip.MustParsePrefix("2002::/16"),         // 6to4 embeds any IPv4
	netip.MustParsePrefix("::/96"),             // IPv4-compatible (deprecated): ::127.0.0.1
	netip.MustParsePrefix("::ffff:0:0:0/96"),   // IPv4-translated (SIIT)
	netip.MustParsePrefix("2001::/32"),         // Teredo embeds an IPv4 server and client
	netip.MustParsePrefix("2001:db8::/32"),     // documentation
	netip.MustParsePrefix("100::/64"),          // discard-only
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6
}

// CheckAddr refuses an address a delivery must not reach.
func (g URLGuard) CheckAddr(a netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return fmt.Errorf("%s is a loopback, private, link-local or metadata address", a)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return fmt.Errorf("%s is in the reserved range %s", a, p)
		}
	}
	return nil
}

// CheckURL validates a delivery URL when it is saved: http or https, a
// host, no credentials, and (unless AllowPrivate) every address the host
// resolves to is public.
func (g URLGuard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("must not hold credentials; use a custom header")
	}
	if len(raw) > 2048 {
		return errors.New("at most 2048 characters")
	}
	if g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	if endsInNumber(host) {
		// 2130706433, 0177.0.0.1 or 0x7f.1 are 127.0.0.1 to browsers and
		// to resolvers that parse as inet_aton does, and never a DNS name.
		return fmt.Errorf("%s is not a DNS name; write an IPv4 address in dotted decimal (such as 93.184.216.34)", host)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.resolve(ctx, host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("%s does not resolve", host)
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

// endsInNumber reports whether a host's last label is a number (decimal,
// or hexadecimal with 0x), which makes it an IPv4 address in the WHATWG
// URL standard's reading rather than a name.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		last = l[2:]
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// dial connects through the guard's resolver when it has one: each address
// the host resolves to is tried in turn, and dialControl checks each.
// Without one, the dialer resolves the host itself.
func (g URLGuard) dial(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	if g.Resolve == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, address)
		}
		addrs, err := g.Resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s does not resolve", host)
		}
		var first error
		for _, a := range addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
		}
		return nil, first
	}
}

// dialControl checks the address a connection is about to use, after DNS.
func (g URLGuard) dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused address %q", address)
	}
	if err := g.CheckAddr(ap.Addr()); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	return nil
}
