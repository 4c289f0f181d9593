// Package heal makes a nodal cluster whole again by itself after a
// partition, and keeps quorum in view.
//
// memberlist alone never reconnects two sides that declared each other
// dead (hashicorp/memberlist#80, #222), and Erlang/OTP does not reconnect
// at all after a split. A heal service on every node:
//
//   - knows the nodes it expects: Config.Expected, or every node it ever
//     saw until that node leaves gracefully or stays lost for PurgePeriod;
//   - reports PartitionDetected and Healed events (Subscribe) and the
//     current view in one call (View: reachable, unreachable, left,
//     refused, majority, the strategy's decision);
//   - keeps trying to reach lost nodes through their last known gossip
//     addresses and Config.Seeds for ReconnectHorizon, so a partition of
//     any length within the horizon heals once the network returns, with
//     no manual Join: the first attempt within a quarter of
//     ReconnectInterval, failed ones doubling the pause up to
//     ReconnectInterval (jitter only shortens it), so two attempts start
//     at most ReconnectInterval apart; after ReconnectSlowAfter (1 h) the
//     pause is ReconnectMaxInterval (30 s, serf's), and any lost node
//     coming back sets every other to an attempt at once;
//   - after a heal, runs the attached Reconcilers (AddReconciler; a
//     registry or groups scope's anti-entropy behind a small adapter) with
//     the nodes that came back, and reports what they exchanged (bytes,
//     entries, conflicts) and how long convergence took in Healed;
//   - applies a split-brain Strategy chosen per cluster (keep-majority,
//     static-quorum, keep-oldest, keep-referee, down-all, or none, the
//     default) once a split has been stable for StableAfter; a losing
//     node pauses (Paused, for the registry and groups to consult), stops,
//     or calls a hook (Action, OnLose), and resumes after the heal;
//   - runs majority votes (Propose, HandleVotes), always under a deadline.
//
// heal sits above the root package and the services (ARCHITECTURE.md's
// layering) and depends on none of the services: they plug in as
// Reconcilers.
//
// # Usage
//
//	h, err := heal.New(node, heal.Config{
//		Expected: []string{"a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3"},
//		Seeds:    []string{"10.0.0.1:7946"},
//		Strategy: heal.StrategyKeepMajority,
//	})
//	...
//	// A registry or groups scope (Sync and ExchangedSinceUp):
//	err = h.AddReconciler("registry", heal.CountedSync(reg.Sync, func(peers []string) heal.Exchange {
//		return heal.Exchange(reg.ExchangedSinceUp(peers...))
//	}))
//	// Or any function of the nodes that came back:
//	err = h.AddReconciler("cache", heal.ReconcilerFunc(func(ctx context.Context, peers []string) (heal.Exchange, error) {
//		return cache.PullFrom(ctx, peers)
//	}))
//	sub := h.Subscribe(0)
//	for ev := range sub.Events() {
//		switch ev := ev.(type) {
//		case heal.PartitionDetected: // ev.Missing
//		case heal.Healed:            // ev.Returned, ev.Exchange, ev.Converged
//		}
//	}
//
// The caller's duties:
//
//  1. Give every node the same ReconnectHorizon, PurgePeriod and strategy
//     settings (Settings). Each heal service sends its Settings to every
//     node it connects to; when two nodes' Settings differ, the newer
//     start of the two (the one that joined the other's cluster) is
//     refused: it pauses (Paused), and neither counts the other in its
//     expected set, quorum, votes or reconcilers. Both get a Refused event
//     and log it at Error, and View.Refused lists the other.
//  2. Give every node the same Expected set, or none: keep-majority and
//     the votes count majorities of it.
//  3. Make Reconcilers idempotent and bounded by ctx: a heal may run them
//     more than once with the same nodes.
//  4. Consult Paused where writes must stop on a losing side.
//
// # Partial partitions
//
// When A and B lose their link but both still reach C, memberlist keeps
// all three members (C answers A's indirect probes of B), so nothing is
// declared failed and nothing cascades: heal never disconnects anyone
// (unlike OTP's prevent_overlapping_partitions, which turns one lost link
// into a full split). A reports B unreachable after ReconnectInterval, once,
// with Lost.Member true and Lost.ReachedBy [C] (every heal service tells
// the others which nodes it is connected to), and the link comes back by
// itself when the network does (the transport redials members).
//
// # Concurrency
//
// All methods are safe for concurrent use. One goroutine (the loop) steps
// the state on every membership or connection change and every quarter of
// ReconnectInterval; reconnect attempts and reconcile rounds run on
// workers it starts, and vote handlers on one voter goroutine. Events are
// handed to subscribers without blocking (a full buffer drops and
// counts). Stop, or Node.Stop, ends them all.
//
// # Guarantees
//
//   - A lost node is tried until it is back or ReconnectHorizon passes,
//     whatever memberlist's dead-node windows; a partition that ends
//     within the horizon heals without a manual Join.
//   - For a node lost less than ReconnectSlowAfter, an attempt starts
//     within ReconnectInterval of the network coming back (attempts are
//     at most that far apart and last at most that long). The cost per
//     lost node at the defaults: about 2,000 attempts in the first hour
//     (each a dial and, when it answers, memberlist's push/pull), then
//     about 140 an hour: some 5,000 over the 24 h horizon, serf's 2,880
//     (30 s for 24 h).
//   - PartitionDetected is emitted once per node lost (not again while it
//     stays lost), Healed once per reconcile round after returns.
//   - Every node of one side computes the same Decision from the same
//     view; with agreed Expected sets, keep-majority, keep-oldest and
//     keep-referee leave exactly one side running on any split into two.
//   - A vote returns by its deadline (ctx's, or Config.VoteTimeout).
package heal
