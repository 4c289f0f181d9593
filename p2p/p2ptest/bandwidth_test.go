package p2ptest_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal/p2p/p2ptest"
)

const sinkProto = "/nodal/test-sink/1.0.0"

// arrival is how many bytes had arrived at a moment.
type arrival struct {
	at    time.Time
	total int
}

// readNoting reads want bytes from r, noting the total after each read.
func readNoting(r io.Reader, want int) ([]byte, []arrival, error) {
	got := make([]byte, 0, want)
	var log []arrival
	buf := make([]byte, 64<<10)
	for len(got) < want {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 {
			log = append(log, arrival{time.Now(), len(got)})
		}
		if err != nil {
			return got, log, err
		}
	}
	return got, log, nil
}

// requireUnderLimit checks that no more than burst + rate*t had arrived t
// after start at any noted moment (+1 byte: the bucket's float arithmetic
// may round a wait down by a nanosecond).
func requireUnderLimit(t *testing.T, log []arrival, start time.Time, rate, burst int) {
	t.Helper()
	for _, a := range log {
		bound := float64(burst) + float64(rate)*a.at.Sub(start).Seconds() + 1
		require.LessOrEqual(t, float64(a.total), bound, "%d bytes arrived %v after the start", a.total, a.at.Sub(start))
	}
}

// TestBandwidthLibp2pStream: 256 KiB over a libp2p stream from a to b,
// limited to 64 KiB/s a -> b (bucket 4 KiB), on the fake clock: at every
// read what arrived is under the limit, the bytes are intact, and the
// whole takes what the rate allows (give or take one bucket); b -> a has
// no limit and its answer arrives at once.
func TestBandwidthLibp2pStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst, size = 64 << 10, 4 << 10, 256 << 10
		n := p2ptest.New()
		defer n.Close()
		ctx := t.Context()
		a := newHost(t, n, "a@10.0.0.1", nil)
		b := newHost(t, n, "b@10.0.0.2", nil)
		n.SetBandwidth("a@10.0.0.1", "b@10.0.0.2", rate)
		require.Equal(t, rate, n.Bandwidth("a@10.0.0.1", "b@10.0.0.2"))
		require.Zero(t, n.Bandwidth("b@10.0.0.2", "a@10.0.0.1"))

		type result struct {
			got []byte
			log []arrival
			err error
		}
		res := make(chan result, 1)
		b.SetStreamHandler(sinkProto, func(s network.Stream) {
			defer s.Close()
			got, log, err := readNoting(s, size)
			if err == nil {
				_, err = s.Write(make([]byte, size)) // the answer, b -> a
			}
			res <- result{got, log, err}
		})
		require.NoError(t, a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}))
		s, err := a.NewStream(ctx, b.ID(), sinkProto)
		require.NoError(t, err)
		defer s.Close()
		payload := make([]byte, size)
		_, _ = rand.Read(payload)
		start := time.Now()
		_, err = s.Write(payload)
		require.NoError(t, err)
		r := <-res
		took := time.Since(start)
		require.NoError(t, r.err)
		require.True(t, bytes.Equal(payload, r.got), "stream corrupted or reordered")
		requireUnderLimit(t, r.log, start, rate, burst)
		least := time.Duration(float64(size-burst) / rate * float64(time.Second))
		require.GreaterOrEqual(t, took, least-time.Millisecond)
		require.LessOrEqual(t, took, least+time.Second/16, "the limit stalls the stream")
		answered := time.Now()
		_, _, err = readNoting(s, size)
		require.NoError(t, err)
		require.Less(t, time.Since(answered), time.Second/16, "b -> a has no limit")
	})
}

// TestBandwidthMemberlistStreamAndPackets: the limit covers memberlist
// streams (writes wait) and packets (a burst beyond PacketQueue is dropped
// and counted; the others arrive late), on the fake clock.
func TestBandwidthMemberlistStreamAndPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 16_000, 1_500
		n := p2ptest.New()
		defer n.Close()
		a := newTransport(t, n, "a@10.0.0.1", "")
		b := newTransport(t, n, "b@10.0.0.2", "")
		n.SetBandwidth("a@10.0.0.1", "b@10.0.0.2", rate)

		// Packets: 20 of 1,000 bytes at once. The bucket lets the first
		// through now and those that wait at most PacketQueue later.
		start := time.Now()
		for range 20 {
			_, err := a.WriteTo(make([]byte, 1000), b.Addr())
			require.NoError(t, err)
		}
		_, ok := recv(t, b)
		require.True(t, ok, "the bucket's first packet waits for nothing")
		time.Sleep(p2ptest.PacketQueue) // fake time: the queued packets' timers fire
		synctest.Wait()
		got := 1
		for {
			p, ok := recv(t, b)
			if !ok {
				break
			}
			require.Equal(t, a.Addr(), p.From.String())
			require.GreaterOrEqual(t, p.Timestamp, start, "a held packet is stamped when it arrives")
			got++
		}
		st := n.PairStats("a@10.0.0.1", "b@10.0.0.2")
		// 1,500 now, then 16,000/s for 250 ms: 5,500 bytes, 5 packets.
		require.Equal(t, 5, got)
		require.Equal(t, uint64(15), st.DroppedBandwidth)
		require.Equal(t, uint64(5), st.Delivered)

		// A memberlist stream a -> b: 32,000 bytes wait for the bucket.
		time.Sleep(time.Second) // fake time: the bucket fills again
		c, err := a.DialTimeout(b.Addr(), time.Second)
		require.NoError(t, err)
		defer c.Close()
		var srv net.Conn
		select {
		case srv = <-b.StreamCh():
		default:
			t.Fatal("no stream")
		}
		defer srv.Close()
		start = time.Now()
		go func() { _, _ = c.Write(make([]byte, 32_000)) }()
		_, log, err := readNoting(srv, 32_000)
		require.NoError(t, err)
		requireUnderLimit(t, log, start, rate, burst)
		require.GreaterOrEqual(t, time.Since(start), time.Duration(float64(32_000-burst)/rate*float64(time.Second))-time.Millisecond)

		// The other way, and after the limit is removed: no wait.
		n.SetBandwidth("a@10.0.0.1", "b@10.0.0.2", 0)
		start = time.Now()
		go func() { _, _ = c.Write(make([]byte, 32_000)) }()
		_, _, err = readNoting(srv, 32_000)
		require.NoError(t, err)
		require.Zero(t, time.Since(start))
		_, err = b.WriteToAddress(make([]byte, 1000), memberlist.Address{Addr: a.Addr()})
		require.NoError(t, err)
		_, ok = recv(t, a)
		require.True(t, ok)
	})
}
