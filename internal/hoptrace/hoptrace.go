// Package hoptrace stamps the hops of one remote call round trip, for
// accounting where a call's latency goes. It is compiled in only with the
// nodaltrace build tag (on linux/amd64); otherwise every function is an empty
// one the compiler removes, and Enabled is false.
//
// Each OS process keeps one slot per hop, overwritten by the next round
// trip (the call benchmark runs one call at a time). The caller records
// its slots when Call returns, the callee when its Reply has been written,
// both keyed by the call's Ref id; Flush writes the records to
// $NODAL_HOPTRACE/hops-<pid>.txt, and internal/hoptrace/hopreport joins the two
// processes' files (their stamps share the machine's monotonic clock).
package hoptrace

// Hop names one stamp of a round trip.
type Hop uint8

// The hops, in the order they happen on each side.
const (
	CallEntry  Hop = iota // caller: Process.Call entered
	Encoded               // the frame is encoded (request or reply)
	WriteStart            // the batch's Write is entered
	WriteEnd              // the batch's Write returned
	ReadReturn            // the connection's read returned data (decrypted)
	FrameRead             // the frame reader returned the frame
	Decoded               // the frame is decoded into a signal
	Delivered             // the message is in the mailbox (and its owner signalled)
	Woken                 // the owner saw it: after its spin, yield or park
	Received              // ReceiveMatch returned the message
	ReplyEntry            // callee: Process.Reply entered
	CallReturn            // caller: Process.Call returns
	NumHops
)

// Names are the hops' names, as the report prints them.
var Names = [NumHops]string{"call", "encoded", "write_start", "write_end", "read_return",
	"frame_read", "decoded", "delivered", "woken", "received", "reply", "call_return"}

// How the owner of a mailbox came to see the message (WakeMode).
const (
	ModeNone   = 0 // it was there before the wait
	ModeSpin   = 1 // its spin found it
	ModeYield  = 2 // a runtime yield let it arrive
	ModeParked = 3 // it parked and was woken
)
