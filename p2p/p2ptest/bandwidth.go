package p2ptest

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// PacketQueue is how long a memberlist packet may wait for a bandwidth
// limit (SetBandwidth) before it is dropped instead, as by a full router
// queue.
const PacketQueue = 250 * time.Millisecond

// SetBandwidth limits the traffic from node from to node to (one
// direction) to bytesPerSecond, with a token bucket of 1/16 s of it (at
// least 1,500 bytes, one packet) that everything going that way draws
// from: libp2p stream writes, memberlist stream writes and memberlist
// packets. The bytes sent that way by time t after the limit is set are
// at most the bucket plus bytesPerSecond*t. A stream write waits for the
// bucket (a slow link holds a fast writer back), in pieces of at most the
// bucket; a packet that would wait more than PacketQueue is dropped and
// counted (Stats.DroppedBandwidth), one that waits less arrives that much
// later. Time is the caller's clock: a synctest bubble's fake one inside
// a bubble. bytesPerSecond 0 removes the limit. Limits hold for nodes
// started later under those names; Heal leaves them (they are a link's
// property, not a fault). SetBandwidth panics if bytesPerSecond is
// negative.
func (n *Network) SetBandwidth(from, to string, bytesPerSecond int) {
	if bytesPerSecond < 0 {
		panic(fmt.Sprintf("p2ptest: bandwidth %d of %s -> %s is negative", bytesPerSecond, from, to))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	k := [2]string{from, to}
	l := n.limits[k]
	switch {
	case bytesPerSecond == 0 || from == to:
		delete(n.limits, k)
	case l == nil:
		n.limits[k] = rate.NewLimiter(rate.Limit(bytesPerSecond), bucketSize(bytesPerSecond))
	case int(l.Limit()) != bytesPerSecond:
		now := time.Now()
		l.SetLimitAt(now, rate.Limit(bytesPerSecond))
		l.SetBurstAt(now, bucketSize(bytesPerSecond))
	}
	n.limited.Store(len(n.limits) > 0)
	log.Infow("network change", "change", fmt.Sprintf("bandwidth %s -> %s %d B/s", from, to, bytesPerSecond))
}

// Bandwidth returns the limit SetBandwidth set from node from to node to,
// in bytes per second; 0 for none.
func (n *Network) Bandwidth(from, to string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.limits[[2]string{from, to}]; l != nil {
		return int(l.Limit())
	}
	return 0
}

// bucketSize is the token bucket of a limit: 1/16 s of it, at least one
// packet.
func bucketSize(bytesPerSecond int) int { return max(bytesPerSecond/16, 1500) }

// reserveLocked takes up to size bytes from -> to from the bandwidth
// bucket and returns how many (at most the bucket) and how long they must
// wait; size and no wait without a limit. Callers hold mu.
func (n *Network) reserveLocked(from, to string, size int) (int, time.Duration) {
	l := n.limits[[2]string{from, to}]
	if l == nil {
		return size, 0
	}
	k := min(size, l.Burst())
	now := time.Now()
	return k, l.ReserveN(now, k).DelayFrom(now)
}

// reservePacketLocked takes a packet of size bytes from -> to from the
// bucket and returns its wait, or false (and takes nothing) if it would
// wait more than PacketQueue. A packet larger than the bucket waits for
// pieces of it in turn. Callers hold mu.
func (n *Network) reservePacketLocked(from, to string, size int) (time.Duration, bool) {
	l := n.limits[[2]string{from, to}]
	if l == nil {
		return 0, true
	}
	now := time.Now()
	var rs []*rate.Reservation
	var wait time.Duration
	for left := size; left > 0; {
		k := min(left, l.Burst())
		r := l.ReserveN(now, k)
		rs = append(rs, r)
		wait = max(wait, r.DelayFrom(now))
		left -= k
	}
	if wait > PacketQueue {
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].CancelAt(now)
		}
		return 0, false
	}
	return wait, true
}

// throttledWrite writes b with write in pieces the bandwidth bucket from
// -> to allows, each after its wait. done, when closed, ends a wait early
// (the write then fails or not as write does).
func (n *Network) throttledWrite(from, to string, b []byte, done <-chan struct{}, write func([]byte) (int, error)) (int, error) {
	if !n.limited.Load() {
		return write(b)
	}
	written := 0
	for len(b) > 0 {
		n.mu.Lock()
		k, wait := n.reserveLocked(from, to, len(b))
		n.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-done:
				t.Stop()
			}
		}
		m, err := write(b[:k])
		written += m
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}

// limitedStream is a libp2p stream whose writes go through the bandwidth
// limit from the host's node to the remote one.
type limitedStream struct {
	network.Stream
	n        *Network
	from, to string
}

// Write implements network.Stream, waiting for the bandwidth limit.
func (s *limitedStream) Write(b []byte) (int, error) {
	return s.n.throttledWrite(s.from, s.to, b, nil, s.Stream.Write)
}

// limit wraps s, a stream of host h with peer p, in the bandwidth limit
// from h's node to p's.
func (h *Host) limit(s network.Stream, p peer.ID) network.Stream {
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	o, ok := n.hosts[p]
	if !ok {
		return s
	}
	return &limitedStream{Stream: s, n: n, from: h.name, to: o.name}
}
