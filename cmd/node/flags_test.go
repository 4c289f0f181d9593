package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseStartFlags(t *testing.T) {
	noEnv := env(nil)
	o, err := parseStartFlags([]string{"--name", "a@127.0.0.1", "--cookie", "c", "--listen", "127.0.0.1:4370",
		"--gossip", "127.0.0.1:7946", "--join", "127.0.0.1:7947, 10.0.0.2:7946", "--profile", "wan"}, noEnv)
	require.NoError(t, err)
	require.Equal(t, startOptions{Name: "a@127.0.0.1", Cookie: "c", Listen: "127.0.0.1:4370", Gossip: "127.0.0.1:7946",
		Join: []string{"127.0.0.1:7947", "10.0.0.2:7946"}, Profile: p2p.ProfileWAN}, o)

	o, err = parseStartFlags([]string{"-name=b@host"}, env(map[string]string{cookieEnv: " envcookie\n"}))
	require.NoError(t, err)
	require.Equal(t, "envcookie", o.Cookie)
	require.Equal(t, "127.0.0.1:0", o.Listen)
	require.Equal(t, "127.0.0.1:0", o.Gossip)
	require.Equal(t, p2p.ProfileLAN, o.Profile)
	require.Nil(t, o.Join)

	for name, args := range map[string][]string{
		"no name":          {"--cookie", "c"},
		"bad name":         {"--name", "a", "--cookie", "c"},
		"no cookie":        {"--name", "a@h"},
		"bad listen":       {"--name", "a@h", "--cookie", "c", "--listen", "4370"},
		"listen no host":   {"--name", "a@h", "--cookie", "c", "--listen", ":4370"},
		"bad gossip port":  {"--name", "a@h", "--cookie", "c", "--gossip", "127.0.0.1:70000"},
		"bad host":         {"--name", "a@h", "--cookie", "c", "--gossip", "a b:1"},
		"join no port":     {"--name", "a@h", "--cookie", "c", "--join", "127.0.0.1"},
		"join port 0":      {"--name", "a@h", "--cookie", "c", "--join", "127.0.0.1:0"},
		"join empty item":  {"--name", "a@h", "--cookie", "c", "--join", "127.0.0.1:1,"},
		"bad profile":      {"--name", "a@h", "--cookie", "c", "--profile", "LAN"},
		"unknown flag":     {"--name", "a@h", "--cookie", "c", "--verbose"},
		"extra argument":   {"--name", "a@h", "--cookie", "c", "extra"},
		"missing flag arg": {"--name"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseStartFlags(args, noEnv)
			var ue *usageError
			require.True(t, errors.As(err, &ue), "want a usage error, got %v", err)
		})
	}
}

func TestCookieSources(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "cookie")
	require.NoError(t, os.WriteFile(good, []byte("\n  from-file \t\n"), 0o600))
	open := filepath.Join(dir, "open")
	require.NoError(t, os.WriteFile(open, []byte("secret"), 0o600))
	require.NoError(t, os.Chmod(open, 0o640))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, maxCookieFile+1), 0o600))
	withEnv := env(map[string]string{cookieEnv: "from-env"})
	noEnv := env(nil)

	for _, tc := range []struct {
		name        string
		flag, file  string
		getenv      func(string) string
		want, error string
	}{
		{name: "flag wins", flag: "from-flag", file: good, getenv: withEnv, want: "from-flag"},
		{name: "env before file", file: good, getenv: withEnv, want: "from-env"},
		{name: "file trimmed", file: good, getenv: noEnv, want: "from-file"},
		{name: "none", getenv: noEnv, error: "cookie is required"},
		{name: "group readable", file: open, getenv: noEnv, error: "group or others"},
		{name: "empty file", file: empty, getenv: noEnv, error: "empty"},
		{name: "big file", file: big, getenv: noEnv, error: "larger"},
		{name: "missing file", file: filepath.Join(dir, "nope"), getenv: noEnv, error: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveCookie(tc.flag, tc.file, tc.getenv)
			if tc.error != "" {
				require.ErrorContains(t, err, tc.error)
				require.NotContains(t, err.Error(), "secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseCtlArgs(t *testing.T) {
	noEnv := env(nil)
	o, err := parseCtlArgs([]string{"--to", "127.0.0.1:4370", "--cookie", "c", "--json", "spawn", "echo", "--name", "e1"}, noEnv)
	require.NoError(t, err)
	require.Equal(t, ctlOptions{To: "127.0.0.1:4370", Cookie: "c", JSON: true, Cmd: "spawn", Args: []string{"echo", "--name", "e1"}}, o)

	o, err = parseCtlArgs([]string{"--to", "127.0.0.1:4370", "spawn", "echo", "--name=e2", "--json"}, env(map[string]string{cookieEnv: "e"}))
	require.NoError(t, err)
	require.Equal(t, ctlOptions{To: "127.0.0.1:4370", Cookie: "e", JSON: true, Cmd: "spawn", Args: []string{"echo", "--name", "e2"}}, o)

	o, err = parseCtlArgs([]string{"--to", "h:1", "--cookie", "c", "send", "e1@a@h", "some text"}, noEnv)
	require.NoError(t, err)
	require.Equal(t, []string{"e1@a@h", "some text"}, o.Args)

	for name, args := range map[string][]string{
		"no to":             {"--cookie", "c", "nodes"},
		"bad to":            {"--to", "h", "--cookie", "c", "nodes"},
		"no cookie":         {"--to", "h:1", "nodes"},
		"no command":        {"--to", "h:1", "--cookie", "c"},
		"unknown command":   {"--to", "h:1", "--cookie", "c", "reboot"},
		"nodes with arg":    {"--to", "h:1", "--cookie", "c", "nodes", "x"},
		"ping no node":      {"--to", "h:1", "--cookie", "c", "ping"},
		"ping bad node":     {"--to", "h:1", "--cookie", "c", "ping", "nohost"},
		"spawn nothing":     {"--to", "h:1", "--cookie", "c", "spawn"},
		"spawn bad option":  {"--to", "h:1", "--cookie", "c", "spawn", "echo", "--nom", "x"},
		"spawn dangling":    {"--to", "h:1", "--cookie", "c", "spawn", "echo", "--name"},
		"send no text":      {"--to", "h:1", "--cookie", "c", "send", "<a@h.1.2>"},
		"call bad target":   {"--to", "h:1", "--cookie", "c", "call", "e1", "x"},
		"kill bad pid":      {"--to", "h:1", "--cookie", "c", "kill", "a@h"},
		"kill too many":     {"--to", "h:1", "--cookie", "c", "kill", "<a@h.1.2>", "r", "x"},
		"processes with ar": {"--to", "h:1", "--cookie", "c", "processes", "all"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseCtlArgs(args, noEnv)
			var ue *usageError
			require.True(t, errors.As(err, &ue), "want a usage error, got %v", err)
		})
	}
}

func TestParseBenchFlags(t *testing.T) {
	o, err := parseBenchFlags("remote", []string{"--senders", "4", "--size", "1024", "--duration", "2s"})
	require.NoError(t, err)
	require.Equal(t, benchOptions{Senders: 4, Size: 1024, Duration: 2 * time.Second}, o)
	o, err = parseBenchFlags("call", []string{"--calls", "500"})
	require.NoError(t, err)
	require.Equal(t, 500, o.Calls)
	o, err = parseBenchFlags("call", nil)
	require.NoError(t, err)
	require.Equal(t, benchOptions{Senders: 1, Size: 32, Duration: 5 * time.Second}, o)
	for name, tc := range map[string]struct {
		kind string
		args []string
	}{
		"unknown kind":   {"fast", nil},
		"zero senders":   {"remote", []string{"--senders", "0"}},
		"huge size":      {"remote", []string{"--size", "100000000"}},
		"zero duration":  {"remote", []string{"--duration", "0s"}},
		"calls remote":   {"remote", []string{"--calls", "3"}},
		"both for call":  {"call", []string{"--calls", "3", "--duration", "1s"}},
		"negative calls": {"call", []string{"--calls", "-1"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseBenchFlags(tc.kind, tc.args)
			var ue *usageError
			require.True(t, errors.As(err, &ue), "want a usage error, got %v", err)
		})
	}
}

func TestParseUpLine(t *testing.T) {
	u, err := parseUpLine("node a@127.0.0.1 up listen=127.0.0.1:4370 gossip=127.0.0.1:7946 incarnation=42\n")
	require.NoError(t, err)
	require.Equal(t, upInfo{Name: "a@127.0.0.1", Listen: "127.0.0.1:4370", Gossip: "127.0.0.1:7946", Incarnation: 42}, u)
	for _, bad := range []string{"", "hello", "node a@h up listen=x:1 gossip=y:2", "node a@h up listen=x:1 gossip=y:2 incarnation=z",
		"node a@h down listen=x:1 gossip=y:2 incarnation=1"} {
		_, err := parseUpLine(bad)
		require.Error(t, err, bad)
	}
}
