package p2p

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/nodal-go/nodal/p2p/p2ptest"
	"github.com/stretchr/testify/require"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		long bool
		err  bool
	}{
		{in: "a@127.0.0.1", long: true},
		{in: "a@::1", long: true},
		{in: "node_1-x@host.example.com", long: true},
		{in: "a@host", long: false},
		{in: "a@my-host", long: false},
		{in: "", err: true},
		{in: "a", err: true},
		{in: "@host", err: true},
		{in: "a@", err: true},
		{in: "a@b@c", err: true},
		{in: "a b@host", err: true},
		{in: "a@-host", err: true},
		{in: "a@host..com", err: true},
		{in: "a@ho st", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseName(tc.in)
			if tc.err {
				require.ErrorIs(t, err, ErrInvalidName)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.long, n.Long)
			require.Equal(t, tc.in, n.String())
		})
	}
}

func TestConfigValidate(t *testing.T) {
	defer leaktest.AfterTest(t)()
	good := Config{Name: "a@127.0.0.1", Cookie: "c"}
	require.NoError(t, good.Validate())
	for name, mod := range map[string]func(*Config){
		"Cookie":                func(c *Config) { c.Cookie = "" },
		"Name":                  func(c *Config) { c.Name = "nope" },
		"ListenAddr":            func(c *Config) { c.ListenAddr = "127.0.0.1" },
		"GossipAddr":            func(c *Config) { c.GossipAddr = "x" },
		"Seeds":                 func(c *Config) { c.Seeds = []string{"noport"} },
		"Profile":               func(c *Config) { c.Profile = 9 },
		"Advanced.MaxFrameSize": func(c *Config) { c.Advanced.MaxFrameSize = -1 },
		"Hidden":                func(c *Config) { c.Hidden = true; c.Seeds = []string{"127.0.0.1:1"} },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			mod(&c)
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = Start(context.Background(), c, newRecorder())
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestNameConflicts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := p2ptest.New()
		defer net.Close()
		nodes := startCluster(t, net, 2)
		p2ptest.Eventually(t, 60*time.Second, func() bool { return meshed(nodes) })
		a, b := nodes[0], nodes[1]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		{ // duplicate at join
			_, err := Start(ctx, simConfig(net, b.Self().Name, a.GossipAddr()), newRecorder())
			require.ErrorIs(t, err, ErrNameInUse)
			require.Contains(t, err.Error(), "already in use")
			require.Contains(t, err.Error(), b.Self().Name)
		}
		{ // short name into long cluster
			_, err := Start(ctx, simConfig(net, "c@localhost", a.GossipAddr()), newRecorder())
			require.ErrorIs(t, err, ErrNameMode)
		}
		{ // duplicate at handshake
			cfg := simConfig(net, b.Self().Name)
			cfg.Hidden = true
			imp := startSim(t, cfg)
			_, err := imp.ConnectAddr(ctx, a.ListenAddrs()[0])
			require.ErrorIs(t, err, ErrNameInUse)
			require.Empty(t, imp.rec.snapshot())
			stopSim(t, imp)
		}
		{ // mixed modes at handshake
			cfg := simConfig(net, "ctl@localhost")
			cfg.Hidden = true
			ctl := startSim(t, cfg)
			_, err := ctl.ConnectAddr(ctx, a.ListenAddrs()[0])
			require.ErrorIs(t, err, ErrNameMode)
			stopSim(t, ctl)
		}
		// The cluster was not disturbed: still two members, each up once.
		time.Sleep(20 * time.Second)
		require.True(t, meshed(nodes))
		for _, n := range nodes {
			require.Equal(t, []string{a.Self().Name, b.Self().Name}, memberNames(n.Members()))
		}
		require.Len(t, a.rec.of(b.Self().Name), 1)
		require.Len(t, b.rec.of(a.Self().Name), 1)
		stopSim(t, nodes...)
		settle()
	})
}
