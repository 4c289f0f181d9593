package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/heal"
	"github.com/nodal-go/nodal/p2p/p2ptest"
)

// start --expect names the nodes heal expects; ctl partitions and ctl
// quorum show the view: a node expected but never started is unreachable,
// and two of three is still a majority.
func TestCtlPartitionsAndQuorum(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const cookie = "ctl-heal-test-cookie"
	o, err := parseStartFlags([]string{"--name", "ha@127.0.0.1", "--cookie", cookie, "--expect", "ha@127.0.0.1,hb@127.0.0.1,ghost@127.0.0.1"}, env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"ha@127.0.0.1", "hb@127.0.0.1", "ghost@127.0.0.1"}, o.Expect)
	_, err = parseStartFlags([]string{"--name", "ha@127.0.0.1", "--cookie", cookie, "--expect", "nohost"}, env(nil))
	require.ErrorContains(t, err, "--expect")

	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: cookie, Join: join, Expect: o.Expect})
	}
	a := start("ha@127.0.0.1")
	defer stopNode(a.Node)
	b := start("hb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return a.Heal.View().Partitioned && len(a.Heal.View().Reachable) == 2 },
		30*time.Second, 10*time.Millisecond, "a reports the ghost missing")

	ctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmdCtl(ctx, append([]string{"--to", a.Listen, "--cookie", cookie}, args...), env(nil), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := ctl("--json", "partitions")
	require.Equal(t, 0, code, errs)
	var p jsonPartitions
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	require.Equal(t, "ha@127.0.0.1", p.Node)
	require.True(t, p.Partitioned)
	require.Equal(t, []string{"ghost@127.0.0.1", "ha@127.0.0.1", "hb@127.0.0.1"}, p.Expected)
	require.Equal(t, []string{"ha@127.0.0.1", "hb@127.0.0.1"}, p.Reachable)
	require.Len(t, p.Unreachable, 1)
	require.Equal(t, "ghost@127.0.0.1", p.Unreachable[0].Node)

	code, out, errs = ctl("--json", "quorum")
	require.Equal(t, 0, code, errs)
	var q jsonQuorum
	require.NoError(t, json.Unmarshal([]byte(out), &q), out)
	require.Equal(t, jsonQuorum{Node: "ha@127.0.0.1", Expected: 3, Reachable: 2, Majority: true, Strategy: "none"}, q)

	code, out, errs = ctl("quorum")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "ha@127.0.0.1: majority (2 of 3 expected reachable)")
	code, out, errs = ctl("partitions")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "unreachable ghost@127.0.0.1 since")

	code, _, _ = ctl("quorum", "extra")
	require.Equal(t, 2, code)
}

// Nodes started on an in-process network (startOptions.Network, what the
// demo uses to split a local cluster) heal by themselves after a split,
// and ctl partitions then reports a's Healed events: their count, their
// exchanges summed (the same as a subscriber of a's heal service saw) and
// the last one, which names b.
func TestStartedNodesHealOnInProcessNetwork(t *testing.T) {
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := p2ptest.New(p2ptest.WithSeed(1))
	defer net.Close()
	start := func(name string, join ...string) *runningNode {
		return startTestNode(t, ctx, startOptions{Name: name, Cookie: "c", Join: join, Network: net})
	}
	a := start("sa@127.0.0.1")
	defer stopNode(a.Node)
	b := start("sb@127.0.0.1", a.Gossip)
	defer stopNode(b.Node)
	require.Eventually(t, func() bool { return len(a.Heal.View().Reachable) == 2 }, 30*time.Second, 10*time.Millisecond)
	partitions := func(n *runningNode) (jsonPartitions, error) {
		v, err := n.CallName(ctx, n.Name(), ctlServiceName, ctlRequest{Cmd: "partitions"})
		if err != nil {
			return jsonPartitions{}, err
		}
		r, ok := v.(ctlResponse)
		if !ok || r.Error != "" {
			return jsonPartitions{}, fmt.Errorf("ctl partitions: %T %s", v, r.Error)
		}
		return healJSON("partitions", r).(jsonPartitions), nil
	}
	p, err := partitions(a)
	require.NoError(t, err)
	require.Equal(t, jsonHeals{}, p.Heals, "no heal yet")
	sub := a.Heal.Subscribe(64)
	defer sub.Close()

	net.Isolate(a.Name())
	require.Eventually(t, func() bool { return a.Heal.View().Partitioned && b.Heal.View().Partitioned }, time.Minute, 10*time.Millisecond)
	net.Heal()
	require.Eventually(t, func() bool {
		va, vb := a.Heal.View(), b.Heal.View()
		return !va.Partitioned && !vb.Partitioned && len(va.Reachable) == 2 && len(vb.Reachable) == 2
	}, time.Minute, 10*time.Millisecond, "healed with no join")
	var seen []heal.Healed
	var sum heal.Exchange
	require.Eventually(t, func() bool {
		for {
			select {
			case ev := <-sub.Events():
				if hd, ok := ev.(heal.Healed); ok {
					seen = append(seen, hd)
					sum = sum.Add(hd.Exchange)
				}
				continue
			default:
			}
			break
		}
		p, err = partitions(a)
		return err == nil && len(seen) > 0 && p.Heals.Count == len(seen)
	}, time.Minute, 10*time.Millisecond, "ctl partitions to count a's Healed events")
	h := p.Heals
	require.Equal(t, jsonHeals{Count: len(seen), Bytes: sum.Bytes, Entries: sum.Entries, Conflicts: sum.Conflicts, Last: h.Last}, h)
	last := seen[len(seen)-1]
	require.NotNil(t, h.Last)
	require.Equal(t, []string{b.Name()}, h.Last.Returned)
	require.Equal(t, last.Exchange, heal.Exchange{Bytes: h.Last.Bytes, Entries: h.Last.Entries, Conflicts: h.Last.Conflicts})
	var out bytes.Buffer
	writeHealPlain(&out, "partitions", ctlResponse{Result: mustJSON(t, p)})
	require.Contains(t, out.String(), fmt.Sprintf("heals %d: %d bytes", h.Count, h.Bytes))
	require.Contains(t, out.String(), "last heal at ")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
