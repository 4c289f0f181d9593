package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// TestHarnessBandwidthOnOneLink: two nodes on a link limited to 128 KiB/s
// each way. A 96 KiB call round trip takes at least what the link allows
// (a lower bound the harness enforces; the same call on the link made
// clean is the reference); names registered on n1 while the nodes are
// split reach n2 over the slow link after the heal; and a one-way cut of
// the degraded link (n1's packets stop reaching n2) makes n2's monitor of
// n1's echo fire noconnection, then heals.
func TestHarnessBandwidthOnOneLink(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	const rate, size, names = 128 << 10, 96 << 10, 10
	slow := LinkFaults{Bandwidth: rate}
	opts := suiteOptions()
	opts.Links = []Link{{A: 0, B: 1, Faults: slow}}
	RunBoth(t, 2, opts, func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		text := strings.Repeat("x", size)
		call := func() time.Duration {
			t0 := time.Now()
			r, err := c.Call(ctx, n[0], pids[n[1]], text)
			took := time.Since(t0)
			require.NoError(t, err)
			require.Equal(t, text, r)
			return took
		}
		c.SetLinkFaults(n[0], n[1], LinkFaults{})
		clean := call()
		c.SetLinkFaults(n[0], n[1], slow)
		limited := call()
		// Each way: the text, less the bucket (1/16 s of the rate) that
		// may go at once.
		least := time.Duration(float64(2*(size-rate/16)) / rate * float64(time.Second))
		require.GreaterOrEqual(t, limited, least, "a call over the 128 KiB/s link")
		ratio := "a clean call takes no time on the fake clock"
		if clean > 0 {
			ratio = fmt.Sprintf("limited/clean %.0fx", float64(limited)/float64(clean))
		}

		// Names made on n1 during a split cross the slow link at the heal.
		c.Partition([]string{n[0]}, []string{n[1]})
		c.WaitPartitioned(n...)
		want := map[string]nodal.Pid{}
		for i := range names {
			name := fmt.Sprintf("slow%d", i)
			pid, err := c.SpawnEcho(ctx, n[0], "")
			require.NoError(t, err)
			require.NoError(t, c.Register(ctx, n[0], name, pid))
			want[name] = pid
		}
		before := c.HealReports(n...)
		c.Heal()
		converge := c.Eventually(func() bool {
			got, err := c.Registered(ctx, n[1])
			if err != nil {
				return false
			}
			for name, pid := range want {
				if got[name] != pid {
					return false
				}
			}
			return true
		}, "n2 to see the %d names n1 registered during the split", names)
		moved, _ := c.HealExchange(before, n...)

		// A one-way cut of the degraded link.
		detect := cutOneWay(t, c, pids)
		oneWayHealed := time.Now()
		c.Heal()
		c.WaitMesh()
		c.Logf("measured: link of 128 KiB/s each way: a 96 KiB call round trip %v (at least %v; clean %v; %s); %d names registered during a split on n2 %v after the heal, the heal's reconcilers exchanged %v; one-way cut of the degraded link: n2's monitor fired after %v, mesh back %v after the heal",
			limited.Round(time.Millisecond), least.Round(time.Millisecond), clean.Round(time.Microsecond), ratio, names, converge.Round(time.Millisecond), moved, detect.Round(time.Millisecond), time.Since(oneWayHealed).Round(time.Millisecond))
	})
}
