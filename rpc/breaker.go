package rpc

import (
	"github.com/lni/goutils/netutil"
	circuit "github.com/lni/goutils/netutil/rubyist/circuitbreaker"
)

// breaker is one callee node's circuit breaker: lni/goutils netutil's
// (cockroach's rpc breaker): it trips on the first connection failure, and
// while tripped lets one trial call through after an exponential backoff
// (0.5 s growing to 1 s, randomised by half); a success closes it. NodeUp
// and a MemberJoined close it too, NodeDown and a failed or left member
// trip it. Errors of the function itself and timeouts of a connected node
// are no connection failures and leave it alone.
type breaker struct{ cb *circuit.Breaker }

func (b *breaker) init()         { b.cb = netutil.NewBreaker() }
func (b *breaker) ready() bool   { return b.cb.Ready() }
func (b *breaker) success()      { b.cb.Success() }
func (b *breaker) fail()         { b.cb.Fail() }
func (b *breaker) trip()         { b.cb.Trip() }
func (b *breaker) reset()        { b.cb.Reset() }
func (b *breaker) tripped() bool { return b.cb.Tripped() }
