package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want target
	}{
		{"<a@127.0.0.1.12.3>", target{Pid: nodal.Pid{Node: "a@127.0.0.1", ID: 12, Incarnation: 3}}},
		{"<a@host.1.2>", target{Pid: nodal.Pid{Node: "a@host", ID: 1, Incarnation: 2}}},
		{"echo@a@127.0.0.1", target{Name: "echo", Node: "a@127.0.0.1"}},
		{"nodal_ctl@b@h", target{Name: "nodal_ctl", Node: "b@h"}},
	} {
		got, err := parseTarget(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "echo", "@a@h", "echo@", "echo@nohost", "echo@a@h@x", "<a@h.1>", "<a@h.x.1>", "<a@h.1.2"} {
		_, err := parseTarget(bad)
		require.Error(t, err, bad)
	}
}

func TestParseReason(t *testing.T) {
	require.Equal(t, nodal.ReasonKill, parseReason("kill"))
	require.Equal(t, nodal.ReasonKilled, parseReason("killed"))
	require.Equal(t, nodal.ReasonNormal, parseReason("normal"))
	require.Equal(t, nodal.ReasonShutdown, parseReason("shutdown"))
	require.EqualError(t, parseReason("bored"), "bored")
}

func TestListenHostPorts(t *testing.T) {
	got := listenHostPorts([]string{
		"/ip4/127.0.0.1/tcp/4370/p2p/12D3KooWQtQMCB9FWsvJitk11VgXVm75sTmz8mCYgZZWepzT9jdE",
		"/ip6/::1/tcp/4371",
		"/ip4/10.0.0.1/udp/4370/quic-v1",
		"/dns/example.org/tcp/80",
	})
	require.Equal(t, []string{"127.0.0.1:4370", "[::1]:4371", "example.org:80"}, got)
	require.Equal(t, "10.0.0.2:1", pickListen([]string{"127.0.0.1:5", "10.0.0.2:1"}, "10.0.0.2:0"))
	require.Equal(t, "127.0.0.1:5", pickListen([]string{"127.0.0.1:5"}, "0.0.0.0:0"))
}

func TestResolveHost(t *testing.T) {
	got, err := resolveHost(t.Context(), "127.0.0.1:5")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:5", got)
	got, err = resolveHost(t.Context(), "localhost:6")
	require.NoError(t, err)
	require.Contains(t, []string{"127.0.0.1:6", "[::1]:6"}, got)
	_, err = resolveHost(t.Context(), "no-such-host.invalid:1")
	require.Error(t, err)
}
