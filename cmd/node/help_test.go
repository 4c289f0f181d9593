package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p"
)

// TestHelpListsEveryFlag: start --help and ctl --help print every flag
// with its meaning and default, on stdout, with status 0.
func TestHelpListsEveryFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"start", "--help"}, []string{"name", "cookie", "cookie-file", "listen", "gossip", "advertise", "advertise-gossip", "join", "profile"}},
		{[]string{"start", "-h"}, []string{"name", "listen"}},
		{[]string{"help", "start"}, []string{"name", "advertise"}},
		{[]string{"ctl", "--help"}, []string{"to", "cookie", "cookie-file", "json"}},
		{[]string{"help", "ctl"}, []string{"to", "json"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, 0, run(tc.args, &out, &errb))
			require.Empty(t, errb.String())
			for _, f := range tc.flags {
				require.Regexp(t, `\n  --`+f+`( [A-Z]|\n)`, out.String(), f)
			}
			require.NotContains(t, out.String(), "see nodal help")
		})
	}
	var out bytes.Buffer
	require.Equal(t, 0, run([]string{"start", "--help"}, &out, &out))
	require.Contains(t, out.String(), "(default 127.0.0.1:0)")
	require.Contains(t, out.String(), "(default lan)")
}

// TestHelpDescribesEveryFlag fails when a flag has no meaning written.
func TestHelpDescribesEveryFlag(t *testing.T) {
	for _, cmd := range []string{"start", "ctl"} {
		var out, errb bytes.Buffer
		require.Equal(t, 0, run([]string{cmd, "--help"}, &out, &errb))
		lines := strings.Split(out.String(), "\n")
		n := 0
		for i, l := range lines {
			if strings.HasPrefix(l, "  --") {
				n++
				require.Greater(t, len(strings.TrimSpace(lines[i+1])), 20, "%s %s: no meaning", cmd, l)
			}
		}
		require.Positive(t, n)
	}
}

// TestHelpCtlListsEveryCommand: nodal help ctl names each command that
// checkCtlArgs knows, with its JSON shape.
func TestHelpCtlListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"help", "ctl"}, &out, &errb))
	for _, c := range ctlCommands {
		cmd := strings.Fields(c.Usage)[0]
		require.Contains(t, out.String(), "\n  "+c.Usage+"\n")
		require.Contains(t, out.String(), c.JSON)
		// Every listed command is one ctl knows, and its JSON shape names
		// the keys jsonOf prints.
		require.NotContains(t, checkCtlArgsErr(cmd), "unknown command", cmd)
		var buf bytes.Buffer
		writeJSON(&buf, jsonOf(cmd, ctlResponse{}))
		for _, key := range jsonKeys(buf.String()) {
			require.Contains(t, c.JSON, `"`+key+`"`, "%s: key %s", cmd, key)
		}
	}
	// And every command ctl knows is listed.
	known := map[string]bool{}
	for _, c := range ctlCommands {
		known[strings.Fields(c.Usage)[0]] = true
	}
	for _, cmd := range []string{"info", "nodes", "ping", "spawn", "send", "call", "kill", "processes", "rpc"} {
		require.True(t, known[cmd], cmd)
	}
}

func checkCtlArgsErr(cmd string) string {
	if err := checkCtlArgs(cmd, nil); err != nil {
		return err.Error()
	}
	return ""
}

// jsonKeys returns the top-level keys of a one-line JSON object.
func jsonKeys(s string) []string {
	var keys []string
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			j := strings.IndexByte(s[i+1:], '"') + i + 1
			if depth == 1 && j+1 < len(s) && s[j+1] == ':' {
				keys = append(keys, s[i+1:j])
			}
			i = j
		}
	}
	return keys
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &out, &errb))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], "nodal "), lines[0])
	require.Equal(t, "go "+runtime.Version(), lines[1])
	require.Equal(t, "protocol "+p2p.DistProtocol, lines[2])
}

func TestParseAdvertiseFlags(t *testing.T) {
	base := []string{"--name", "a@10.0.0.1", "--cookie", "c", "--listen", "0.0.0.0:4370"}
	o, err := parseStartFlags(append(base, "--advertise", "10.0.0.1", "--advertise-gossip", "[2001:db8::1]:7946"), env(nil))
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1", o.Advertise)
	require.Equal(t, "[2001:db8::1]:7946", o.AdvertiseGossip)
	for _, tc := range []struct{ flag, v, want string }{
		{"--advertise", "0.0.0.0", "--advertise: p2p: invalid config: AdvertiseAddr: \"0.0.0.0\": a wildcard"},
		{"--advertise", "[::]:4370", "--advertise: p2p: invalid config: AdvertiseAddr: \"[::]:4370\": a wildcard"},
		{"--advertise", "nat.example.com", "--advertise: p2p: invalid config: AdvertiseAddr: \"nat.example.com\": host must be an IP address"},
		{"--advertise-gossip", "0.0.0.0:7946", "--advertise-gossip: p2p: invalid config: AdvertiseGossipAddr"},
	} {
		_, err := parseStartFlags(append(base, tc.flag, tc.v), env(nil))
		var ue *usageError
		require.ErrorAs(t, err, &ue, tc.v)
		require.True(t, strings.HasPrefix(err.Error(), tc.want), "%s: %v", tc.v, err)
	}
	o, err = parseStartFlags(append(base, "--join", "seeds.nodal.svc.cluster.local:7946"), env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"seeds.nodal.svc.cluster.local:7946"}, o.Join)
}

func TestParseDirectPortFlag(t *testing.T) {
	base := []string{"--name", "a@10.0.0.1", "--cookie", "c"}
	for v, want := range map[string]int{"0": 0, "4371": 4371, "off": p2p.DirectOff} {
		o, err := parseStartFlags(append(base, "--direct-port", v), env(nil))
		require.NoError(t, err, v)
		require.Equal(t, want, o.DirectPort, v)
	}
	for _, v := range []string{"-1", "70000", "no"} {
		_, err := parseStartFlags(append(base, "--direct-port", v), env(nil))
		var ue *usageError
		require.ErrorAs(t, err, &ue, v)
		require.Contains(t, err.Error(), "--direct-port", v)
	}
}
