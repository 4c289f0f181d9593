package p2ptest

// Stats counts what the network did with memberlist packets and stream
// dials. Network.Stats gives totals and Network.PairStats one direction
// between two node names. The counters only grow.
type Stats struct {
	// Delivered counts packets put on the receiver's packet channel.
	Delivered uint64
	// DroppedCut counts packets lost to Partition, Split or Isolate.
	DroppedCut uint64
	// DroppedRate counts packets lost to a Drop rate.
	DroppedRate uint64
	// DroppedDown counts packets sent to an address where no transport is
	// live (never started, or shut down).
	DroppedDown uint64
	// DroppedFull counts packets lost because the receiver's packet channel
	// was full.
	DroppedFull uint64
	// DroppedBandwidth counts packets lost because a bandwidth limit
	// (SetBandwidth) would have held them more than PacketQueue.
	DroppedBandwidth uint64

	// StreamsOpened counts stream dials that were accepted.
	StreamsOpened uint64
	// StreamsRefused counts stream dials to an address with no live
	// transport or with a full accept backlog.
	StreamsRefused uint64
	// StreamsUnreachable counts stream dials lost to a cut or a Drop rate.
	StreamsUnreachable uint64
	// StreamsSevered counts open streams closed because a cut (or a Drop
	// rate of 1) came between their ends or an end shut down.
	StreamsSevered uint64
}

// Dropped is the number of packets lost for any reason.
func (s Stats) Dropped() uint64 {
	return s.DroppedCut + s.DroppedRate + s.DroppedDown + s.DroppedFull + s.DroppedBandwidth
}
