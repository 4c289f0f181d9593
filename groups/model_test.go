package groups

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// A model-based test after pg's and syn's property suites: random joins
// (new members, and members joining again: pg's multiplicity), leaves
// (and leaves of non-members), kills of member processes, partitions
// (one node isolated, or one pair cut with the third seeing both),
// restarts with a new incarnation (graceful, and after a crash the others
// only saw as a node down), graceful leaves and heals, on three nodes,
// against a sequential model: a multiset of memberships.
//
// Checked, once the cluster has settled (conditions with deadlines, on
// synctest's fake clock):
//   - after every heal, on every node: Members of every group, WhichGroups
//     and LocalMembers equal the model (dead processes gone, a restarted
//     node's old pids gone, the members an unreachable node hid shown again);
//   - during a split, and while a node is down: each node sees exactly the
//     memberships of the nodes it can reach (and its own);
//   - at every such point: every node's scope monitor and group monitor,
//     its events applied in order to its snapshot, reproduce the node's
//     Members (no Left of a pid that is not a member, so no event out of
//     order or lost, and none extra), with causes that fit the pid (a local
//     pid only joins or leaves locally or by exit, a remote one only by
//     remote, node down or up, or purge).
//
// The seed is in the subtest's name and in every failure message.
func TestModel(t *testing.T) {
	var total modelStats
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { total.add(runModel(t, seed)) })
		})
	}
	if t.Failed() {
		return
	}
	t.Logf("all seeds: %+v", total)
	// The operations the invariants are about did happen.
	s := total
	require.NotZero(t, s.rejoins, "no pid joined a group twice")
	require.NotZero(t, s.exitLeaves, "no member was killed")
	require.NotZero(t, s.shownAgain, "no hidden member reappeared on a heal")
	require.NotZero(t, s.restarts, "no restart")
	require.NotZero(t, s.crashes, "no crash restart")
	require.NotZero(t, s.leaves, "no Leave")
	require.NotZero(t, s.notJoined, "no Leave of a non-member")
	require.NotZero(t, s.departures, "no graceful leave")
	require.NotZero(t, s.splitChecks, "no split checked")
	require.NotZero(t, s.longPurges, "no split outlasted the permanent-down period and purged")
}

// modelStats counts what one run did.
type modelStats struct {
	joins, rejoins, leaves, notJoined, exitLeaves int
	splitChecks, heals, shownAgain, events        int
	restarts, crashes, departures, maxMembers     int
	longSplits, longPurges                        int
}

func (s *modelStats) add(o modelStats) {
	s.joins += o.joins
	s.rejoins += o.rejoins
	s.leaves += o.leaves
	s.notJoined += o.notJoined
	s.exitLeaves += o.exitLeaves
	s.splitChecks += o.splitChecks
	s.heals += o.heals
	s.shownAgain += o.shownAgain
	s.events += o.events
	s.restarts += o.restarts
	s.crashes += o.crashes
	s.departures += o.departures
	s.longSplits += o.longSplits
	s.longPurges += o.longPurges
	s.maxMembers = max(s.maxMembers, o.maxMembers)
}

// A short permanent-down period, so that a long split purges on fake time
// without memberlist probing for the default's 20 minutes.
const (
	modelPermdown     = 30 * time.Second
	modelSyncInterval = 5 * time.Second
)

// mship is one membership in the model: pid joined group on node.
type mship struct {
	group string
	pid   nodal.Pid
	node  int
}

// replay follows one monitor: its snapshot, with every event applied.
type replay struct {
	m     *Monitor
	group *string // nil for a scope monitor
	self  nodal.Pid
	held  map[string]map[nodal.Pid]int
	n     int
}

func newReplay(m *Monitor, group *string, self nodal.Pid, snap map[string][]nodal.Pid) *replay {
	p := &replay{m: m, group: group, self: self, held: map[string]map[nodal.Pid]int{}}
	for g, ps := range snap {
		for _, pid := range ps {
			p.inc(g, pid)
		}
	}
	return p
}

func (p *replay) inc(g string, pid nodal.Pid) {
	if p.held[g] == nil {
		p.held[g] = map[nodal.Pid]int{}
	}
	p.held[g][pid]++
}

// drain applies the events in the monitor's buffer; it fails on an event
// that cannot follow the ones before it.
func (p *replay) drain(t *testing.T, where string) {
	t.Helper()
	for {
		select {
		case ev, ok := <-p.m.Events():
			require.True(t, ok, "%s: monitor ended: %v", where, p.m.Err())
			p.apply(t, where, ev)
		default:
			return
		}
	}
}

func (p *replay) apply(t *testing.T, where string, ev Event) {
	t.Helper()
	p.n++
	if p.group != nil {
		require.Equal(t, *p.group, ev.Group, "%s: event %v on a monitor of %q", where, ev, *p.group)
	}
	require.NotEmpty(t, ev.Pids, "%s: event without pids", where)
	require.True(t, slices.IsSortedFunc(ev.Pids, nodal.Pid.Compare), "%s: %v: pids not in order", where, ev)
	for _, pid := range ev.Pids {
		local := pid.Node == p.self.Node && pid.Incarnation == p.self.Incarnation
		switch {
		case local && ev.Kind == Joined:
			require.Equal(t, CauseLocal, ev.Cause, "%s: %v: a local join", where, ev)
		case local:
			require.Contains(t, []Cause{CauseLocal, CauseExit}, ev.Cause, "%s: %v: a local leave", where, ev)
		case ev.Kind == Joined:
			require.Contains(t, []Cause{CauseRemote, CauseNodeUp}, ev.Cause, "%s: %v: a remote join", where, ev)
		default:
			require.Contains(t, []Cause{CauseRemote, CauseNodeDown, CausePurged}, ev.Cause, "%s: %v: a remote leave", where, ev)
		}
		switch ev.Kind {
		case Joined:
			p.inc(ev.Group, pid)
		case Left:
			g := p.held[ev.Group]
			require.Positive(t, g[pid], "%s: event %d, %v: %v leaves but is not a member here (an event lost or out of order)", where, p.n, ev, pid)
			g[pid]--
			if g[pid] == 0 {
				delete(g, pid)
			}
			if len(g) == 0 {
				delete(p.held, ev.Group)
			}
		default:
			t.Fatalf("%s: %v: unknown kind", where, ev)
		}
	}
}

// view returns the replayed members, in the form of viewOf.
func (p *replay) view() map[string][]nodal.Pid {
	out := map[string][]nodal.Pid{}
	for g, ps := range p.held {
		for pid, k := range ps {
			for range k {
				out[g] = append(out[g], pid)
			}
		}
		slices.SortFunc(out[g], nodal.Pid.Compare)
	}
	return out
}

// viewOf returns a scope's visible members of every group (or of group
// only).
func viewOf(s *Scope, group *string) map[string][]nodal.Pid {
	out := map[string][]nodal.Pid{}
	if group != nil {
		if ps := s.Members(*group); ps != nil {
			out[*group] = ps
		}
		return out
	}
	for _, g := range s.WhichGroups() {
		if ps := s.Members(g); ps != nil {
			out[g] = ps
		}
	}
	return out
}

// nonNil makes an empty slice non-nil, for comparing lists only.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// mismatch holds the last difference a settling condition saw; the
// failure message prints it.
type mismatch struct{ s string }

func (m *mismatch) String() string { return m.s }

func runModel(t *testing.T, seed uint64) modelStats {
	names := []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"}
	c := startCluster(t, int64(seed)+200, Config{PermdownPeriod: modelPermdown, SyncInterval: modelSyncInterval}, names...)
	defer c.stop()
	rng := rand.New(rand.NewPCG(seed, 10))
	groupNames := []string{"g0", "g1", "g2", "g3"}
	watched := "g0" // each node also runs a Monitor of this group

	var st modelStats
	var model []mship
	procs := make([][]nodal.Pid, len(names)) // live processes of each node's current start
	down := make([]bool, len(names))         // left the cluster gracefully, not restarted yet
	split := false
	replays := make([][]*replay, len(names))
	where := func(step int, what string) string { return fmt.Sprintf("seed %d step %d (%s)", seed, step, what) }

	watch := func(i int) {
		s := c.scopes[i]
		self := nodal.Pid{Node: c.nodes[i].Name(), Incarnation: c.nodes[i].Incarnation()}
		snap, m, err := s.MonitorScope()
		require.NoError(t, err)
		gsnap, gm, err := s.Monitor(watched)
		require.NoError(t, err)
		g := map[string][]nodal.Pid{}
		if gsnap != nil {
			g[watched] = gsnap
		}
		replays[i] = []*replay{newReplay(m, nil, self, snap), newReplay(gm, &watched, self, g)}
	}
	for i := range names {
		watch(i)
	}
	running := func() []int {
		var out []int
		for i := range names {
			if !down[i] {
				out = append(out, i)
			}
		}
		return out
	}
	reach := func(i, j int) bool {
		return i == j || (!down[j] && c.net.Reachable(names[i], names[j]) && c.net.Reachable(names[j], names[i]))
	}
	// expected returns what node i should see: the memberships of the
	// nodes it reaches.
	expected := func(i int, localOnly bool) map[string][]nodal.Pid {
		out := map[string][]nodal.Pid{}
		for _, m := range model {
			if (localOnly && m.node != i) || !reach(i, m.node) {
				continue
			}
			out[m.group] = append(out[m.group], m.pid)
		}
		for g := range out {
			slices.SortFunc(out[g], nodal.Pid.Compare)
		}
		return out
	}
	hidden := func() int { // memberships some running node cannot see now
		k := 0
		for _, m := range model {
			for _, i := range running() {
				if !reach(i, m.node) {
					k++
					break
				}
			}
		}
		return k
	}

	// settle waits until every running node shows what the model says it
	// reaches, then checks its monitors replay to it.
	settle := func(step int, what string) {
		t.Helper()
		w := where(step, what)
		last := &mismatch{}
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			for _, i := range running() {
				if got, want := viewOf(c.scopes[i], nil), expected(i, false); !maps.EqualFunc(got, want, slices.Equal) {
					last.s = fmt.Sprintf("%s sees %v, model %v", names[i], got, want)
					return false
				}
			}
			return true
		}, "%s: every node sees its reachable nodes' members: last %v", w, last)
		for _, i := range running() {
			s := c.scopes[i]
			require.Equal(t, nonNil(slices.Sorted(maps.Keys(expected(i, false)))), nonNil(s.WhichGroups()), "%s: %s WhichGroups", w, names[i])
			local := expected(i, true)
			for _, g := range groupNames {
				require.Equal(t, nonNil(local[g]), nonNil(s.LocalMembers(g)), "%s: %s LocalMembers(%s)", w, names[i], g)
			}
		}
		// The views are still; the monitors' events of them are in their
		// buffers (they are sent under the index's lock).
		p2ptest.Eventually(t, 10*time.Second, func() bool {
			for _, i := range running() {
				for _, p := range replays[i] {
					p.drain(t, fmt.Sprintf("%s: %s", w, names[i]))
					if got, want := p.view(), viewOf(c.scopes[i], p.group); !maps.EqualFunc(got, want, slices.Equal) {
						last.s = fmt.Sprintf("%s: monitor (group %v) replays to %v, Members %v", names[i], p.group, got, want)
						return false
					}
				}
			}
			return true
		}, "%s: monitors replay to Members: last %v", w, last)
	}

	// noZombies checks, once the whole cluster is up and settled, that
	// every node's replicated state holds exactly the model's memberships:
	// nothing dead, left or of an old start kept out of sight.
	noZombies := func(step int, what string) {
		t.Helper()
		last := &mismatch{}
		p2ptest.Eventually(t, 30*time.Second, func() bool {
			for i, s := range c.scopes {
				var live []mship
				require.NoError(t, s.rep.Update(ctx10(t), func(st *repState) error {
					for _, d := range st.Map().LiveDots() {
						g, m, _ := st.Map().Lookup(d)
						live = append(live, mship{group: g, pid: m.Pid, node: slices.Index(names, m.Pid.Node)})
					}
					return nil
				}))
				if len(live) != len(model) {
					last.s = fmt.Sprintf("%s holds %v, model %v", names[i], live, model)
					return false
				}
			}
			return true
		}, "%s: the replicated state is the model: last %v", where(step, what), last)
	}

	// memberOf returns the model's memberships of node i (indexes).
	memberOf := func(i int) []int {
		var out []int
		for k, m := range model {
			if m.node == i {
				out = append(out, k)
			}
		}
		return out
	}
	count := func(g string, pid nodal.Pid) int {
		k := 0
		for _, m := range model {
			if m.group == g && m.pid == pid {
				k++
			}
		}
		return k
	}
	localCount := func(i int, g string, pid nodal.Pid) int {
		k := 0
		for _, p := range c.scopes[i].LocalMembers(g) {
			if p == pid {
				k++
			}
		}
		return k
	}
	join := func(step, i int, g string, pids ...nodal.Pid) {
		require.NoError(t, c.scopes[i].Join(ctx10(t), g, pids...), where(step, "join"))
		for _, pid := range pids {
			model = append(model, mship{group: g, pid: pid, node: i})
		}
		for _, pid := range pids {
			require.Equal(t, count(g, pid), localCount(i, g, pid), "%s: a join is visible locally when it returns", where(step, "join"))
		}
		st.joins += len(pids)
		st.maxMembers = max(st.maxMembers, len(model))
	}
	// leave removes one membership of each of pids (pg's leave): an error
	// only if none was a member.
	leave := func(step, i int, g string, pids ...nodal.Pid) {
		err := c.scopes[i].Leave(ctx10(t), g, pids...)
		left := 0
		for _, pid := range pids {
			if k := slices.Index(model, mship{g, pid, i}); k >= 0 {
				model = slices.Delete(model, k, k+1)
				left++
			}
		}
		if left == 0 {
			var nj *NotJoinedError
			require.ErrorAs(t, err, &nj, where(step, "leave of non-members"))
			require.Equal(t, &NotJoinedError{Group: g, Pid: pids[0]}, nj)
			st.notJoined++
			return
		}
		require.NoError(t, err, where(step, "leave"))
		for _, pid := range pids {
			require.Equal(t, count(g, pid), localCount(i, g, pid), "%s: a leave is visible locally when it returns", where(step, "leave"))
		}
		st.leaves += left
	}
	forget := func(i int) { // node i's start is gone: its processes and memberships
		model = slices.DeleteFunc(model, func(m mship) bool { return m.node == i })
		procs[i] = nil
	}
	stopNode := func(i int) {
		for _, p := range replays[i] {
			p.m.Stop()
		}
		replays[i] = nil
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.nodes[i].Stop(ctx))
		p2ptest.Eventually(t, 60*time.Second, func() bool {
			for j, n := range c.nodes {
				if j == i || down[j] {
					continue
				}
				for _, m := range n.Members() {
					if m.Name == names[i] && m.Incarnation == c.nodes[i].Incarnation() && m.State == nodal.MemberStateAlive {
						return false
					}
				}
			}
			return true
		}, "%s: the stopped start is seen gone", where(-1, names[i]))
	}
	startNode := func(i int) {
		var seeds []string
		for j, n := range c.nodes {
			if j != i && !down[j] {
				seeds = append(seeds, n.GossipAddr())
			}
		}
		c.restartAt(i, seeds)
		down[i] = false
		watch(i)
	}

	for step := range 120 {
		up := running()
		i := up[rng.IntN(len(up))]
		g := groupNames[rng.IntN(len(groupNames))]
		calm := !split && len(up) == len(names)
		switch op := rng.IntN(20); {
		case op < 6: // join new processes, or ones already members elsewhere (one call, one to three pids, maybe one twice)
			pids := make([]nodal.Pid, 1+max(0, rng.IntN(6)-3))
			for k := range pids {
				if len(procs[i]) > 0 && rng.IntN(2) == 0 {
					pids[k] = procs[i][rng.IntN(len(procs[i]))]
				} else {
					pids[k] = idle(t, c.nodes[i])
					procs[i] = append(procs[i], pids[k])
				}
			}
			join(step, i, g, pids...)
		case op == 6: // join again: pg's multiplicity
			if ms := memberOf(i); len(ms) > 0 {
				m := model[ms[rng.IntN(len(ms))]]
				join(step, i, m.group, m.pid)
				st.rejoins++
			}
		case op < 9: // leave one membership
			if ms := memberOf(i); len(ms) > 0 {
				m := model[ms[rng.IntN(len(ms))]]
				leave(step, i, m.group, m.pid)
			}
		case op == 9: // leave several pids at once, members of g or not
			if len(procs[i]) == 0 {
				break
			}
			pids := make([]nodal.Pid, 1+rng.IntN(3))
			for k := range pids {
				pids[k] = procs[i][rng.IntN(len(procs[i]))]
			}
			leave(step, i, g, pids...)
		case op < 12: // kill a process: it leaves every group
			if len(procs[i]) == 0 {
				break
			}
			k := rng.IntN(len(procs[i]))
			pid := procs[i][k]
			procs[i] = slices.Delete(procs[i], k, k+1)
			before := len(model)
			model = slices.DeleteFunc(model, func(m mship) bool { return m.pid == pid })
			if len(model) < before {
				st.exitLeaves++
			}
			c.nodes[i].Exit(pid, nodal.ReasonKill)
		case op < 14 && calm: // a partition: one node alone, or one pair cut
			j := (i + 1 + rng.IntN(len(names)-1)) % len(names)
			if rng.IntN(2) == 0 {
				c.net.Isolate(names[i])
			} else {
				c.net.Partition(names[i], names[j])
			}
			split = true
			settle(step, "split")
			st.splitChecks++
		case op == 14 && calm: // restart: a new incarnation, the old one's pids gone
			forget(i)
			stopNode(i)
			startNode(i)
			c.waitMesh()
			settle(step, "restart")
			st.restarts++
		case op == 15 && calm: // crash: the others only see it go down, then it restarts
			forget(i)
			c.net.Isolate(names[i])
			stopNode(i)
			down[i] = true
			settle(step, "crashed") // the others hide its members
			c.net.Heal()
			startNode(i)
			c.waitMesh()
			settle(step, "restart after a crash")
			st.crashes++
		case op == 16 && calm: // graceful leave: it stays out until the next heal
			forget(i)
			stopNode(i)
			down[i] = true
			settle(step, "left")
			st.departures++
		case op == 16 && split: // a long split: the unreachable are purged, not only hidden
			purged := func() (n uint64) {
				for _, s := range c.scopes {
					n += s.Stats().Purged
				}
				return n
			}
			before := purged()
			time.Sleep(c.cfg.PermdownPeriod + 2*modelSyncInterval)
			settle(step, "long split")
			st.longSplits++
			st.longPurges += int(purged() - before)
		case op >= 17 && (split || len(up) < len(names)): // heal and check
			settle(step, "before heal")
			shown := hidden()
			for k := range names {
				if down[k] {
					startNode(k)
				}
			}
			c.net.Heal()
			c.rejoinAll()
			split = false
			c.syncAll()
			settle(step, "heal")
			noZombies(step, "heal")
			st.shownAgain += shown
			st.heals++
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
	for k := range names {
		if down[k] {
			startNode(k)
		}
	}
	c.net.Heal()
	c.rejoinAll()
	c.syncAll()
	settle(120, "final heal")
	noZombies(120, "final heal")
	for _, rs := range replays {
		for _, p := range rs {
			st.events += p.n
		}
	}
	t.Logf("seed %d: %+v", seed, st)
	return st
}

// restartAt starts node i again under its name (a new incarnation),
// joined to seeds, and runs the scope on it.
func (c *cluster) restartAt(i int, seeds []string) {
	c.t.Helper()
	name := c.nodes[i].Name()
	cfg := nodal.DefaultLocalConfig(name, testCookie)
	cfg.P2P.Network = c.net
	cfg.Seeds = seeds
	n, err := nodal.Start(context.Background(), cfg)
	require.NoError(c.t, err, "restart %s", name)
	s, err := New(n, c.cfg)
	require.NoError(c.t, err)
	c.nodes[i], c.scopes[i] = n, s
}

// rejoinAll joins every node that misses another to all the others until
// the mesh is whole and runs the scope everywhere.
func (c *cluster) rejoinAll() {
	c.t.Helper()
	p2ptest.Eventually(c.t, 60*time.Second, func() bool {
		ok := true
		for i, n := range c.nodes {
			if len(n.Nodes()) == len(c.nodes)-1 {
				continue
			}
			ok = false
			var seeds []string
			for j, o := range c.nodes {
				if j != i {
					seeds = append(seeds, o.GossipAddr())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = n.Join(ctx, seeds...)
			cancel()
		}
		return ok
	}, "mesh whole after heal")
	c.waitMesh()
}

// syncAll runs Sync on every scope.
func (c *cluster) syncAll() {
	c.t.Helper()
	for _, s := range c.scopes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Sync(ctx)
		cancel()
		require.NoError(c.t, err)
	}
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
