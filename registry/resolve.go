package registry

import (
	"fmt"
	"strings"
)

// Action is what the owner of a losing registration does to its process.
type Action int

// Actions.
const (
	// Exit ends the loser with a *ConflictError exit signal (trappable).
	Exit Action = iota
	// Notify removes the loser's name and sends it a NameConflict message;
	// it stays alive.
	Notify
)

// Resolution is a resolver's verdict on the claims of one name.
type Resolution struct {
	// Winner is the index of the claim that keeps the name, or -1 when
	// nobody keeps it (every claimant loses).
	Winner int
	// Action is what each loser's owner does to its process.
	Action Action
}

// ResolveFunc chooses among two or more live claims of name (Erlang's
// register_name/3 resolve function). claims are in a canonical order, the
// same on every node. It must be pure and deterministic: every node runs it
// on the claims it sees and must reach the same verdict without talking to
// the others. A resolver that panics or returns an index out of range is
// replaced by the default for that conflict, and counted
// (Stats.ResolverFailures).
type ResolveFunc func(name string, claims []Registration) Resolution

// Names of the built-in resolvers, for Config.Resolvers and WithResolver.
const (
	// LowerNodeExit keeps the claim of the process on the node whose name
	// sorts lowest and exits the others: Erlang's default
	// (global:random_exit_name/3). The default resolver.
	LowerNodeExit = "lower-node-exit"
	// LowerNodeNotify keeps the claim on the lowest node name and notifies
	// the others (global:random_notify_name/3).
	LowerNodeNotify = "lower-node-notify"
	// NotifyAll unregisters every claim and notifies every claimant
	// (global:notify_all_name/3).
	NotifyAll = "notify-all"
	// KeepOldest keeps the earliest registration and exits the others.
	KeepOldest = "keep-oldest"
	// KeepNewest keeps the latest registration and exits the others (syn's
	// default choice).
	KeepNewest = "keep-newest"
)

var builtinNames = [...]string{LowerNodeExit, LowerNodeNotify, NotifyAll, KeepOldest, KeepNewest}

func builtins() map[string]ResolveFunc {
	return map[string]ResolveFunc{
		LowerNodeExit:   func(_ string, c []Registration) Resolution { return Resolution{lowestNode(c), Exit} },
		LowerNodeNotify: func(_ string, c []Registration) Resolution { return Resolution{lowestNode(c), Notify} },
		NotifyAll:       func(string, []Registration) Resolution { return Resolution{-1, Notify} },
		KeepOldest:      func(_ string, c []Registration) Resolution { return Resolution{oldest(c, false), Exit} },
		KeepNewest:      func(_ string, c []Registration) Resolution { return Resolution{oldest(c, true), Exit} },
	}
}

// lowestNode is the first claim whose node name sorts lowest.
func lowestNode(c []Registration) int {
	w := 0
	for i := range c {
		if strings.Compare(c[i].Pid.Node, c[w].Pid.Node) < 0 {
			w = i
		}
	}
	return w
}

// oldest is the first claim with the smallest At (the largest if newest).
func oldest(c []Registration, newest bool) int {
	w := 0
	for i := range c {
		if (!newest && c[i].At < c[w].At) || (newest && c[i].At > c[w].At) {
			w = i
		}
	}
	return w
}

// resolve runs the claims' common resolver, falling back to the default
// when they differ, it is unknown, it panics or its verdict is out of
// range; failed reports the fallback.
func resolve(table map[string]ResolveFunc, def ResolveFunc, name string, claims []Registration) (res Resolution, failed bool, why string) {
	first := resolverName(claims[0].Resolver)
	f := table[first]
	for _, c := range claims[1:] {
		if resolverName(c.Resolver) != first {
			f, why = nil, "claims name different resolvers"
		}
	}
	if f == nil && why == "" {
		why = fmt.Sprintf("resolver %q unknown here", claims[0].Resolver)
	}
	if f != nil {
		res, why = callResolver(f, name, claims)
		if why == "" {
			return res, false, ""
		}
	}
	res, _ = callResolver(def, name, claims)
	return res, true, why
}

func callResolver(f ResolveFunc, name string, claims []Registration) (res Resolution, why string) {
	defer func() {
		if p := recover(); p != nil {
			res, why = Resolution{}, fmt.Sprintf("resolver panicked: %v", p)
		}
	}()
	res = f(name, append([]Registration(nil), claims...)) // the resolver cannot change ours
	if res.Winner < -1 || res.Winner >= len(claims) || (res.Action != Exit && res.Action != Notify) {
		return Resolution{}, fmt.Sprintf("resolver returned %+v for %d claims", res, len(claims))
	}
	return res, ""
}

// resolverName is a registration's resolver: the empty name, which keeps
// the default built-in off the wire and out of memory, is LowerNodeExit.
func resolverName(name string) string {
	if name == "" {
		return LowerNodeExit
	}
	return name
}
