//go:build linux

package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
)

// partitionsJSON is what "nodal ctl --json partitions" prints.
type partitionsJSON struct {
	Node        string   `json:"node"`
	Partitioned bool     `json:"partitioned"`
	Expected    []string `json:"expected"`
	Reachable   []string `json:"reachable"`
	Unreachable []struct {
		Node      string   `json:"node"`
		Since     string   `json:"since"`
		Member    bool     `json:"member"`
		ReachedBy []string `json:"reached_by"`
		Gossip    string   `json:"gossip"`
		Attempts  int      `json:"attempts"`
		LastError string   `json:"last_error"`
	} `json:"unreachable"`
	Left    []string `json:"left"`
	Refused []string `json:"refused"`
	Heals   ctlHeals `json:"heals"`
}

// TestNetnsSplitHealsWithoutJoin runs a, b and c as "nodal start --expect"
// OS processes in their own network namespaces, cuts a from b and c with
// iptables for longer than memberlist's dead-node gossip window (15 s with
// the local profile), and lifts the cut: the heal service of each node
// makes the cluster whole again, with no join by anyone, and ctl
// partitions shows it at each step.
func TestNetnsSplitHealsWithoutJoin(t *testing.T) {
	requireNetLab(t)
	if testing.Short() {
		t.Skip("holds a split for 30 s; skipped with -short")
	}
	defer leaktest.AfterTest(t)()
	lab := newNetLab(t, "a", "b", "c")
	defer lab.close() // after the nodes stop, before leaktest checks
	c := newCluster(t, fmt.Sprintf("netns-heal-cookie-%d", lab.subnet))
	defer c.close()
	names := []string{"a@" + lab.IP("a"), "b@" + lab.IP("b"), "c@" + lab.IP("c")}
	expect := []string{"--expect", strings.Join(names, ",")}
	nodes := map[string]*nodeProc{}
	nodes["a"] = lab.StartNode(c, "a", expect...)
	nodes["b"] = lab.StartNode(c, "b", append(expect, "--join", nodes["a"].Gossip)...)
	nodes["c"] = lab.StartNode(c, "c", append(expect, "--join", nodes["a"].Gossip)...)
	view := func(key string) partitionsJSON {
		var v partitionsJSON
		lab.CtlJSON(key, nodes[key], &v, "partitions")
		return v
	}
	whole := func() bool {
		for _, key := range []string{"a", "b", "c"} {
			if v := view(key); v.Partitioned || !slices.Equal(v.Reachable, names) {
				return false
			}
		}
		return true
	}
	eventually(t, whole, "the three nodes whole")

	lab.Cut("a", lab.IP("b"))
	lab.Cut("a", lab.IP("c"))
	longWait(t, func() bool {
		va, vb := view("a"), view("b")
		return va.Partitioned && len(va.Reachable) == 1 && len(va.Unreachable) == 2 && !va.Unreachable[0].Member &&
			vb.Partitioned && slices.Equal(vb.Reachable, names[1:])
	}, "both sides see the split")
	time.Sleep(30 * time.Second) // the split lasts beyond the dead-node gossip window
	if v := view("a"); v.Unreachable[0].Attempts == 0 {
		t.Fatalf("a made no reconnect attempt during the split: %+v", v)
	}
	lab.Heal("a")
	start := time.Now()
	longWait(t, whole, "whole again, with no join")
	took := time.Since(start)
	h := view("a").Heals
	t.Logf("whole again %v after the cut was lifted (reconnect interval 2 s, backoff up to 8 s); a reported %d heals, their reconcilers exchanged %d bytes, %d entries",
		took.Round(100*time.Millisecond), h.Count, h.Bytes, h.Entries)
}

// longWait is eventually with a minute's bound: failure detection and the
// reconnect backoff (up to 8 s) take longer than waitTimeout allows.
func longWait(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
