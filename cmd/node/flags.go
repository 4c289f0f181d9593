package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p"
)

// cookieEnv is the environment variable a cookie may come from.
const cookieEnv = "NODAL_COOKIE"

// newFlagSet returns a flag set that reports errors to the caller instead
// of printing usage.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args and turns a flag error into a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{text: flagHelp(fs)}
		}
		return usagef("%v", err)
	}
	return nil
}

// startOptions are the flags of nodal start.
type startOptions struct {
	Name    string
	Cookie  string
	Listen  string
	Gossip  string
	Join    []string
	Profile p2p.Profile

	Advertise       string // --advertise: libp2p address announced to others
	AdvertiseGossip string // --advertise-gossip: gossip address announced
	DirectPort      int    // --direct-port: the frames' own port (p2p.Advanced.DirectPort)

	Expect []string // --expect: the nodes heal expects (ctl_heal.go)
	// Network, when set, carries the node instead of TCP: an in-process
	// p2ptest network, on which the demo and tests split and heal a cluster.
	Network p2p.Network
}

// parseStartFlags parses and validates nodal start's flags. getenv supplies
// NODAL_COOKIE.
func parseStartFlags(args []string, getenv func(string) string) (startOptions, error) {
	fs := newFlagSet("start")
	var o startOptions
	var cookieFile, join, profile, direct, expect string
	fs.StringVar(&o.Name, "name", "", "node `NAME`, name@host: host a DNS name or an IPv4/IPv6 address (a@10.0.0.1, a@::1) for a long name, one label for a short one (required)")
	fs.StringVar(&o.Cookie, "cookie", "", "cluster `COOKIE`, the shared secret; else $"+cookieEnv+", else --cookie-file")
	fs.StringVar(&cookieFile, "cookie-file", "", "`FILE` holding the cookie (mode 600, like ~/.erlang.cookie)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "libp2p `HOST:PORT` to bind for processes' traffic (0.0.0.0:4370 or [::]:4370 binds every address; port 0 picks one)")
	fs.StringVar(&o.Gossip, "gossip", "127.0.0.1:0", "memberlist gossip `HOST:PORT` to bind, UDP and TCP")
	fs.StringVar(&o.Advertise, "advertise", "", "`HOST[:PORT]` other nodes reach --listen at (NAT, containers, wildcard binds); HOST an IP address, PORT default the bound one; also the gossip host unless --advertise-gossip (default: the bound addresses)")
	fs.StringVar(&o.AdvertiseGossip, "advertise-gossip", "", "`HOST[:PORT]` announced for gossip when it differs from --advertise's host or the bound gossip port")
	fs.StringVar(&direct, "direct-port", "0", "TCP `PORT` of the direct connections that carry frames between node pairs beside --listen (0 picks one; set one to open it in a firewall), or off to keep frames on the libp2p connection")
	fs.StringVar(&join, "join", "", "gossip `HOST:PORT[,...]` of nodes to join; HOST may be a DNS name, looked up again on every join (one name may give many nodes)")
	fs.StringVar(&profile, "profile", "lan", "failure-detection timers `PROFILE`: lan (~5 s to detect a crash), wan (tolerates seconds of latency and loss, ~40 s), local (one machine)")
	fs.StringVar(&expect, "expect", "", "`NODE[,...]`: the nodes the cluster should have, for partition reports and quorum (ctl partitions, ctl quorum); default every node ever seen")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	expected, err := parseExpect(expect)
	if err != nil {
		return o, err
	}
	o.Expect = expected
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.Name == "" {
		return o, usagef("--name is required")
	}
	if err := nodal.ValidateNodeName(o.Name); err != nil {
		return o, usagef("--name: %v", err)
	}
	cookie, err := resolveCookie(o.Cookie, cookieFile, getenv)
	if err != nil {
		return o, err
	}
	o.Cookie = cookie
	if err := checkHostPort(o.Listen); err != nil {
		return o, usagef("--listen: %v", err)
	}
	if err := checkHostPort(o.Gossip); err != nil {
		return o, usagef("--gossip: %v", err)
	}
	if o.Advertise != "" || o.AdvertiseGossip != "" {
		c := p2p.Config{Name: o.Name, Cookie: o.Cookie, AdvertiseAddr: o.Advertise, AdvertiseGossipAddr: o.AdvertiseGossip}
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "AdvertiseGossipAddr:") {
			return o, usagef("--advertise-gossip: %v", err)
		} else if err != nil && strings.Contains(err.Error(), "AdvertiseAddr:") {
			return o, usagef("--advertise: %v", err)
		}
	}
	if o.DirectPort, err = parseDirectPort(direct); err != nil {
		return o, err
	}
	if o.Join, err = parseJoin(join); err != nil {
		return o, err
	}
	if o.Profile, err = parseProfile(profile); err != nil {
		return o, err
	}
	return o, nil
}

// parseDirectPort reads --direct-port: a port number or off.
func parseDirectPort(s string) (int, error) {
	if s == "off" {
		return p2p.DirectOff, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, usagef("--direct-port: %q is not a port (0..65535) or off", s)
	}
	return p, nil
}

// parseProfile maps lan, wan and local onto p2p profiles.
func parseProfile(s string) (p2p.Profile, error) {
	switch s {
	case "lan":
		return p2p.ProfileLAN, nil
	case "wan":
		return p2p.ProfileWAN, nil
	case "local":
		return p2p.ProfileLocal, nil
	}
	return 0, usagef("--profile: %q is not lan, wan or local", s)
}

// parseJoin splits a comma-separated list of gossip addresses.
func parseJoin(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if err := checkHostPort(a); err != nil {
			return nil, usagef("--join: %v", err)
		}
		if port(a) == 0 {
			return nil, usagef("--join: %q: port 0 names no node", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// checkHostPort checks "host:port" with an IP or a host name and a port in
// 0..65535.
func checkHostPort(s string) error {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port", s)
	}
	if h == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	if _, err := strconv.ParseUint(p, 10, 16); err != nil {
		return fmt.Errorf("%q: bad port", s)
	}
	if net.ParseIP(h) == nil {
		for _, c := range h {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return fmt.Errorf("%q: bad host", s)
			}
		}
	}
	return nil
}

// port returns the port of a checked host:port.
func port(s string) int {
	_, p, _ := net.SplitHostPort(s)
	n, _ := strconv.Atoi(p)
	return n
}

// resolveCookie picks the cookie: the flag, else NODAL_COOKIE, else the
// cookie file. It is an error to have none.
func resolveCookie(flagCookie, file string, getenv func(string) string) (string, error) {
	if flagCookie != "" {
		return flagCookie, nil
	}
	if c := strings.TrimSpace(getenv(cookieEnv)); c != "" {
		return c, nil
	}
	if file != "" {
		return readCookieFile(file)
	}
	return "", usagef("a cookie is required: --cookie, %s or --cookie-file", cookieEnv)
}

// readCookieFile reads a cookie file like ~/.erlang.cookie: whitespace
// around the cookie is trimmed, and a file that group or others may read
// is refused, as a shared secret must not be.
func readCookieFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", usagef("--cookie-file: %v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", usagef("--cookie-file: %s is accessible by group or others (mode %04o); chmod 600 it", path, st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", usagef("--cookie-file: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCookieFile+1))
	if err != nil {
		return "", usagef("--cookie-file: %v", err)
	}
	if len(b) > maxCookieFile {
		return "", usagef("--cookie-file: %s is larger than %d bytes", path, maxCookieFile)
	}
	c := strings.TrimSpace(string(b))
	if c == "" {
		return "", usagef("--cookie-file: %s is empty", path)
	}
	return c, nil
}

// maxCookieFile bounds a cookie file.
const maxCookieFile = 4096
