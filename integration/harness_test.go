package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// The project's own suite on the harness: each scenario is one body that
// RunBoth runs in-process (synctest, fake clock) and for real (netns,
// iptables, OS processes; CI runs it as root). Each logs what it
// measured, on lines starting "measured:".

// suiteOptions are the options of the suite's clusters: the binary
// TestMain built, for real mode.
func suiteOptions() Options { return Options{Binary: binary} }

// echoes spawns an echo on every node and returns their pids by node.
func echoes(t *testing.T, c *Cluster, ctx context.Context) map[string]nodal.Pid {
	t.Helper()
	pids := map[string]nodal.Pid{}
	for _, n := range c.Names() {
		pid, err := c.SpawnEcho(ctx, n, "")
		require.NoError(t, err)
		require.Equal(t, n, pid.Node)
		pids[n] = pid
	}
	return pids
}

// TestHarnessSplitMonitorsAndRPC: five nodes split 2/3. A monitor across
// the split fires noconnection and one inside a side does not; each side
// converges on a view of itself only; an RPC across the split fails fast
// with ErrNoConnection (not a timeout: nothing waits out its deadline);
// after the heal the mesh is back and the same RPC works.
func TestHarnessSplitMonitorsAndRPC(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	RunBoth(t, 5, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		sideA, sideB := n[:2], n[2:]
		pids := echoes(t, c, ctx)
		across, err := c.Monitor(ctx, n[0], pids[n[3]])
		require.NoError(t, err)
		inside, err := c.Monitor(ctx, n[0], pids[n[1]])
		require.NoError(t, err)
		back, err := c.Monitor(ctx, n[4], pids[n[0]])
		require.NoError(t, err)
		out, err := c.RPC(ctx, n[0], n[3], "rpc.echo", "before")
		require.NoError(t, err)
		require.JSONEq(t, `"before"`, string(out))

		cut := time.Now()
		c.Partition(sideA, sideB)
		reason, detectA := across.WaitDown(cut)
		require.ErrorIs(t, reason, nodal.ReasonNoConnection)
		reason, detectB := back.WaitDown(cut)
		require.ErrorIs(t, reason, nodal.ReasonNoConnection)
		c.WaitMesh(sideA...)
		c.WaitMesh(sideB...)
		views := time.Since(cut)
		fired, _, _, err := inside.Down(ctx)
		require.NoError(t, err)
		require.False(t, fired, "a monitor inside one side fired")

		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		_, err = c.RPC(rctx, n[0], n[3], "rpc.echo", "during")
		failedIn := time.Since(t0)
		cancel()
		require.ErrorIs(t, err, nodal.ErrNoConnection)
		require.NotErrorIs(t, err, nodal.ErrTimeout, "the call waited out its deadline")
		var oe *OpError
		require.ErrorAs(t, err, &oe)
		require.Equal(t, "rpc", oe.Op)

		c.WaitPartitioned(n...)
		detected := time.Since(cut)
		before := c.HealReports(n...)
		healed := time.Now()
		c.Heal()
		c.WaitMesh()
		converge := time.Since(healed)
		c.Eventually(func() bool {
			out, err := c.RPC(ctx, n[0], n[3], "rpc.echo", "after")
			return err == nil && string(out) == `"after"`
		}, "rpc across the healed split")
		moved, _ := c.HealExchange(before, n...)
		c.Logf("measured: split 2/3: monitor across fired after %v (side A) and %v (side B), both sides' views converged after %v, heal reported the split on every node after %v; rpc across the split failed in %v (%v); mesh back %v after the heal; the heal's reconcilers exchanged %v (summed over the %d nodes)",
			detectA.Round(time.Millisecond), detectB.Round(time.Millisecond), views.Round(time.Millisecond), detected.Round(time.Millisecond), failedIn.Round(time.Millisecond), err, converge.Round(time.Millisecond), moved, len(n))
	})
}

// TestHarnessKillRestartFreeze: a monitor fires noconnection on a SIGKILL;
// the node restarted has a new incarnation, the pid of its previous start
// is dead (noproc) and a new echo answers. A node frozen longer than
// failure detection (every other node has dropped it) fires monitors with
// noconnection, and once resumed rejoins with the same incarnation: its
// processes, which outlived the freeze, answer again.
func TestHarnessKillRestartFreeze(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	RunBoth(t, 3, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		oldInc, err := c.Incarnation(ctx, n[1])
		require.NoError(t, err)

		w, err := c.Monitor(ctx, n[0], pids[n[1]])
		require.NoError(t, err)
		killed := time.Now()
		c.Kill(n[1])
		reason, detectKill := w.WaitDown(killed)
		require.ErrorIs(t, reason, nodal.ReasonNoConnection)
		dropped := c.WaitMesh(n[0], n[2])

		restarted := time.Now()
		c.Restart(n[1])
		c.WaitMesh()
		rejoin := time.Since(restarted)
		inc, err := c.Incarnation(ctx, n[1])
		require.NoError(t, err)
		require.NotEqual(t, oldInc, inc, "a restart is a new incarnation")
		_, err = c.Call(ctx, n[0], pids[n[1]], "to the dead")
		require.ErrorIs(t, err, nodal.ErrNoProc, "a pid of the previous start")
		pid, err := c.SpawnEcho(ctx, n[1], "")
		require.NoError(t, err)
		require.Equal(t, inc, pid.Incarnation)
		r, err := c.Call(ctx, n[0], pid, "back")
		require.NoError(t, err)
		require.Equal(t, "back", r)

		wf, err := c.Monitor(ctx, n[0], pids[n[2]])
		require.NoError(t, err)
		frozen := time.Now()
		c.Freeze(n[2])
		reason, detectFreeze := wf.WaitDown(frozen)
		require.ErrorIs(t, reason, nodal.ReasonNoConnection)
		c.WaitMesh(n[0], n[1]) // both dropped it: frozen longer than failure detection
		droppedFrozen := time.Since(frozen)
		thawed := time.Now()
		c.Thaw(n[2])
		c.WaitMesh()
		back := time.Since(thawed)
		inc2, err := c.Incarnation(ctx, n[2])
		require.NoError(t, err)
		require.Equal(t, pids[n[2]].Incarnation, inc2, "a frozen node is the same start")
		r, err = c.Call(ctx, n[0], pids[n[2]], "thawed")
		require.NoError(t, err, "the echo outlived the freeze")
		require.Equal(t, "thawed", r)
		c.Logf("measured: kill: monitor fired after %v, the others dropped the node after %v; restart: meshed again after %v (incarnation %d -> %d); freeze: monitor fired after %v, dropped by all after %v; thaw: meshed again after %v",
			detectKill.Round(time.Millisecond), (dropped + detectKill).Round(time.Millisecond), rejoin.Round(time.Millisecond), oldInc, inc,
			detectFreeze.Round(time.Millisecond), droppedFrozen.Round(time.Millisecond), back.Round(time.Millisecond))
	})
}

// TestHarnessOneWayCut: n1's packets stop reaching n2 (n1 still hears
// n2). n2 loses n1: its monitor of n1's echo fires noconnection, and the
// connection of the pair cannot live either way; n3, whose links are
// whole, keeps both. After the heal the mesh is back.
func TestHarnessOneWayCut(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	RunBoth(t, 3, suiteOptions(), func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		cut := time.Now()
		detect := cutOneWay(t, c, pids)
		lost := time.Since(cut)
		require.True(t, c.Sees(n[2], n[0], n[1]), "n3 lost a node it still reaches both ways")
		healed := time.Now()
		c.Heal()
		c.WaitMesh()
		c.Logf("measured: one-way cut n1 -> n2: n2's monitor fired after %v, the pair dropped each other after %v while n3 kept both; mesh back %v after the heal",
			detect.Round(time.Millisecond), lost.Round(time.Millisecond), time.Since(healed).Round(time.Millisecond))
	})
}

// cutOneWay cuts n1 -> n2 (the first two nodes) one way and waits for
// n2's monitor of n1's echo (pids, from echoes) to fire noconnection and
// for the pair to drop each other; it returns how long the monitor took.
func cutOneWay(t *testing.T, c *Cluster, pids map[string]nodal.Pid) time.Duration {
	t.Helper()
	ctx := context.Background()
	n := c.Names()
	w, err := c.Monitor(ctx, n[1], pids[n[0]])
	require.NoError(t, err)
	cut := time.Now()
	c.Cut(n[0], n[1], OneWay)
	reason, detect := w.WaitDown(cut)
	require.ErrorIs(t, reason, nodal.ReasonNoConnection)
	c.Eventually(func() bool {
		p1, err1 := c.Peers(ctx, n[0])
		p2, err2 := c.Peers(ctx, n[1])
		return err1 == nil && err2 == nil && !slices.Contains(p1, n[1]) && !slices.Contains(p2, n[0])
	}, "n1 and n2 to drop each other")
	return detect
}

// TestHarnessLatencyOnOneLink: 100 ms is added each way on the link
// n1-n2 only. A round trip n1 -> n2 takes at least the 200 ms the link
// adds (a lower bound the harness enforces), n1 -> n3 does not pay it,
// calls across the slow link work, and no node drops another.
func TestHarnessLatencyOnOneLink(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	opts := suiteOptions()
	opts.Links = []Link{{A: 0, B: 1, Faults: LinkFaults{Latency: 100 * time.Millisecond}}}
	RunBoth(t, 3, opts, func(t *testing.T, c *Cluster) {
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		var slow, fast []time.Duration
		for i := range 10 {
			d, err := c.Ping(ctx, n[0], n[1])
			require.NoError(t, err)
			slow = append(slow, d)
			d, err = c.Ping(ctx, n[0], n[2])
			require.NoError(t, err)
			fast = append(fast, d)
			r, err := c.Call(ctx, n[0], pids[n[1]], "slow "+strconv.Itoa(i))
			require.NoError(t, err)
			require.Equal(t, "slow "+strconv.Itoa(i), r)
		}
		slices.Sort(slow)
		slices.Sort(fast)
		require.GreaterOrEqual(t, slow[0], 200*time.Millisecond, "a round trip over the slow link")
		require.True(t, c.Sees(n[0], n[1], n[2]) && c.Sees(n[1], n[0], n[2]), "a node was dropped over a slow link")
		ratio := "a clean round trip takes no time on the fake clock"
		if f := fast[len(fast)/2]; f > 0 {
			ratio = fmt.Sprintf("slow/clean %.0fx", float64(slow[len(slow)/2])/float64(f))
		}
		c.Logf("measured: ping over the link with 2x100 ms added: median %v (min %v); over a clean link: median %v; %s",
			slow[len(slow)/2].Round(time.Millisecond), slow[0].Round(time.Millisecond), fast[len(fast)/2].Round(time.Microsecond), ratio)
	})
}

// chaosSeed is NODAL_CHAOS_SEED if set, else a new one (printed, so a
// failing run can be replayed).
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv("NODAL_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return v
	}
	return rand.Uint64()
}

// chaosDuration is NODAL_CHAOS_DURATION (a Go duration) if set, else 1
// minute (15 s with -short).
func chaosDuration(t *testing.T) time.Duration {
	if s := os.Getenv("NODAL_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err)
		return d
	}
	if testing.Short() {
		return 15 * time.Second
	}
	return time.Minute
}

// TestHarnessChaos: about a minute of random splits, isolations, one-way
// cuts, kills with restarts, and freezes, seeded (the seed is printed;
// NODAL_CHAOS_SEED replays one). Then everything heals and the invariants
// hold: every node sees every other; every monitor of an echo on a node
// that was killed fired with noconnection; every echo of a node never
// killed answers calls from every node; restarted nodes have new
// incarnations.
func TestHarnessChaos(t *testing.T) {
	defer leaktest.AfterTest(t)() // after both modes: their clusters are closed by then
	seed := chaosSeed(t)
	d := chaosDuration(t)
	RunBoth(t, 5, suiteOptions(), func(t *testing.T, c *Cluster) {
		c.Logf("chaos seed %d (NODAL_CHAOS_SEED=%d replays it), for %v", seed, seed, d)
		rng := rand.New(rand.NewPCG(seed, 0x6861726e657373))
		ctx := context.Background()
		n := c.Names()
		pids := echoes(t, c, ctx)
		incs := map[string]uint64{}
		watches := map[string][]*Watch{} // by the node of the monitored echo
		for _, from := range n {
			for _, to := range n {
				if from != to {
					w, err := c.Monitor(ctx, from, pids[to])
					require.NoError(t, err)
					watches[to] = append(watches[to], w)
				}
			}
			inc, err := c.Incarnation(ctx, from)
			require.NoError(t, err)
			incs[from] = inc
		}
		killed := map[string]bool{}
		frozen := ""
		steps := 0
		start := time.Now()
		pick := func() string { return n[rng.IntN(len(n))] }
		for time.Since(start) < d {
			steps++
			switch k := rng.IntN(6); {
			case k == 0:
				perm := rng.Perm(len(n))
				cutAt := 1 + rng.IntN(len(n)-1)
				var a, b []string
				for i, p := range perm {
					if i < cutAt {
						a = append(a, n[p])
					} else {
						b = append(b, n[p])
					}
				}
				c.Partition(a, b)
			case k == 1:
				c.Isolate(pick())
			case k == 2:
				a, b := pick(), pick()
				if a != b {
					c.Cut(a, b, OneWay)
				}
			case k == 3:
				x := pick()
				if x != frozen {
					killed[x] = true
					c.Restart(x) // a kill then a new start
				}
			case k == 4:
				if frozen == "" {
					frozen = pick()
					c.Freeze(frozen)
				} else {
					c.Thaw(frozen)
					frozen = ""
				}
			default:
				c.Heal()
			}
			// Pacing between faults, not a wait for an outcome.
			time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		}
		if frozen != "" {
			c.Thaw(frozen)
		}
		healed := time.Now()
		c.Heal()
		converge := c.WaitMesh()

		fired := 0
		for node := range killed {
			for _, w := range watches[node] {
				if !slices.Contains(n, w.From) || killed[w.From] {
					continue // the watcher died with its own node
				}
				reason, _ := w.WaitDown(healed)
				require.ErrorIs(t, reason, nodal.ReasonNoConnection, "monitor on %s of %v", w.From, w.Target)
				fired++
			}
			inc, err := c.Incarnation(ctx, node)
			require.NoError(t, err)
			require.NotEqual(t, incs[node], inc, "%s restarted with its old incarnation", node)
		}
		calls := 0
		for _, to := range n {
			if killed[to] {
				continue
			}
			for _, from := range n {
				c.Eventually(func() bool {
					r, err := c.Call(ctx, from, pids[to], "after chaos")
					return err == nil && r == "after chaos"
				}, "%s to call the echo on %s after the chaos", from, to)
				calls++
			}
		}
		var names []string
		for x := range killed {
			names = append(names, x)
		}
		slices.Sort(names)
		c.Logf("measured: chaos seed %d: %d steps in %v; killed and restarted %v; mesh of %d back %v after the final heal; %d monitors of killed nodes' echoes fired noconnection; %d calls to surviving echoes answered",
			seed, steps, time.Since(start).Round(time.Second), names, len(n), converge.Round(time.Millisecond), fired, calls)
	})
}
