package integration

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBadFlagsOneLineError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())
	env := baseEnv("NODAL_COOKIE=c")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no command", env, nil, ""},
		{"unknown command", env, []string{"frobnicate"}, "unknown command"},
		{"start without name", env, []string{"start"}, "--name"},
		{"start bad name", env, []string{"start", "--name", "nohost"}, "name"},
		{"start unknown flag", env, []string{"start", "--name", "a@127.0.0.1", "--colour", "red"}, "colour"},
		{"start no cookie", baseEnv(), []string{"start", "--name", "a@127.0.0.1"}, "cookie"},
		{"start bad profile", env, []string{"start", "--name", "a@127.0.0.1", "--profile", "moon"}, "profile"},
		{"start bad listen", env, []string{"start", "--name", "a@127.0.0.1", "--listen", "nowhere"}, "listen"},
		{"start bad port", env, []string{"start", "--name", "a@127.0.0.1", "--gossip", "127.0.0.1:99999"}, "gossip"},
		{"start bad join", env, []string{"start", "--name", "a@127.0.0.1", "--join", "127.0.0.1"}, "join"},
		{"start busy listen", env, []string{"start", "--name", "a@127.0.0.1", "--listen", busy.Addr().String()}, ""},
		{"ctl without to", env, []string{"ctl", "nodes"}, "--to"},
		{"ctl without command", env, []string{"ctl", "--to", "127.0.0.1:1"}, "command"},
		{"ctl unknown command", env, []string{"ctl", "--to", "127.0.0.1:1", "frob"}, "unknown command"},
		{"ctl bad target", env, []string{"ctl", "--to", "127.0.0.1:1", "call", "nobody", "x"}, "target"},
		{"ctl bad pid", env, []string{"ctl", "--to", "127.0.0.1:1", "kill", "<x>"}, "pid"},
		{"ctl nothing listening", env, []string{"ctl", "--to", closedAddr, "nodes"}, "connection refused"},
		{"bench unknown", env, []string{"bench", "fast"}, "remote or call"},
		{"bench bad senders", env, []string{"bench", "remote", "--senders", "0"}, "senders"},
		{"bench call both", env, []string{"bench", "call", "--calls", "5", "--duration", "1s"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runBinary(t, tc.env, tc.args...)
			require.NotEqual(t, 0, res.Code)
			require.Empty(t, res.Stdout)
			if tc.args == nil {
				require.Contains(t, res.Stderr, "usage")
				return
			}
			require.Equal(t, 1, strings.Count(res.Stderr, "\n"), "one line on stderr: %q", res.Stderr)
			require.Contains(t, res.Stderr, tc.want)
		})
	}
}
