package rpc

import (
	"fmt"
	"time"

	"github.com/nodal-go/nodal/internal/wire"
)

// Frame kinds on the service's frames. Their numbers are part of the
// protocol.
const (
	kindCall  byte = 1 // a call: a reply is expected
	kindCast  byte = 2 // a cast: no reply
	kindReply byte = 3
)

// Request flags.
const (
	flagJSON byte = 1 << iota // args and result are JSON, not codec values
)

// Reply classes. Their numbers are part of the protocol.
const (
	classOK        byte = 1 // rest: the result
	classFunc      byte = 2 // text, sentinel name
	classPanic     byte = 3 // value, stack
	classKilled    byte = 4 // reason, self-exit
	classNoFunc    byte = 5 // text
	classBadArgs   byte = 6 // text
	classLimit     byte = 7 // text
	classLastClass      = classLimit
)

// Bounds on what a frame may carry.
const (
	maxFuncName = 256
	maxText     = 64 << 10
)

// request is a decoded call or cast frame. Args aliases the frame.
type request struct {
	kind    byte
	id      uint64
	flags   byte
	timeout time.Duration // 0: none
	fn      string
	args    []byte
}

// appendRequestHeader appends a request frame up to its arguments, which
// follow to the end of the frame.
func appendRequestHeader(b []byte, kind byte, id uint64, flags byte, timeout time.Duration, fn string) []byte {
	b = append(b, kind)
	b = wire.AppendUvarint(b, id)
	b = append(b, flags)
	b = wire.AppendUvarint(b, uint64(max(timeout, 0)))
	return wire.AppendString(b, fn)
}

// decodeRequest decodes a call or cast frame; it never panics.
func decodeRequest(b []byte) (request, error) { return decodeRequestIn(b, nil) }

// decodeRequestIn is decodeRequest whose function name, when funcs holds
// it, is funcs' own string rather than a new one.
func decodeRequestIn(b []byte, funcs map[string]*function) (request, error) {
	d := wire.NewDecoder(b)
	var r request
	r.kind = d.Byte()
	if d.Err() == nil && r.kind != kindCall && r.kind != kindCast {
		d.Fail("not a request")
	}
	r.id = d.Uvarint()
	r.flags = d.Byte()
	t := d.Uvarint()
	if t > uint64(1<<62) {
		d.Fail("timeout out of range")
	}
	r.timeout = time.Duration(t)
	if n := d.Length(); d.Err() == nil && n > maxFuncName {
		d.Fail("function name too long")
	} else {
		raw := d.Take(n)
		if f, ok := funcs[string(raw)]; ok {
			r.fn = f.info.Name
		} else {
			r.fn = string(raw)
		}
	}
	if err := d.Err(); err != nil {
		return request{}, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	r.args = d.Rest()
	return r, nil
}

// reply is a decoded reply frame. Payload aliases the frame: for classOK
// the result, for the other classes the fields decodeReplyError reads.
type reply struct {
	id          uint64
	incarnation uint64 // the caller's incarnation the reply is for
	class       byte
	payload     []byte
	err         error // set instead of a frame for local failures (node down, stop)
}

func appendReplyHeader(b []byte, id, incarnation uint64, class byte) []byte {
	b = append(b, kindReply)
	b = wire.AppendUvarint(b, id)
	b = wire.AppendUvarint(b, incarnation)
	return append(b, class)
}

// appendReplyError appends a whole error reply of class with its two fields.
func appendReplyError(b []byte, id, incarnation uint64, class byte, s1 string, s2 string, flag bool) []byte {
	b = appendReplyHeader(b, id, incarnation, class)
	b = wire.AppendString(b, clip(s1))
	b = wire.AppendString(b, clip(s2))
	return wire.AppendBool(b, flag)
}

func clip(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}

// decodeReply decodes a reply frame's header; it never panics.
func decodeReply(b []byte) (reply, error) {
	d := wire.NewDecoder(b)
	var r reply
	if k := d.Byte(); d.Err() == nil && k != kindReply {
		d.Fail("not a reply")
	}
	r.id = d.Uvarint()
	r.incarnation = d.Uvarint()
	r.class = d.Byte()
	if d.Err() == nil && (r.class == 0 || r.class > classLastClass) {
		d.Fail("unknown reply class")
	}
	if err := d.Err(); err != nil {
		return reply{}, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	r.payload = d.Rest()
	return r, nil
}

// decodeReplyError turns a reply of a failure class into its error; it
// never panics.
func decodeReplyError(class byte, payload []byte) error {
	d := wire.NewDecoder(payload)
	s1, s2 := d.Str(), d.Str()
	flag := d.Bool()
	if err := d.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	switch class {
	case classFunc:
		return &FuncError{Text: s1, Sentinel: s2, sentinel: sentinelByName(s2)}
	case classPanic:
		return &PanicError{Value: s1, Stack: s2}
	case classKilled:
		return &KilledError{Reason: s1, SelfExit: flag}
	case classNoFunc:
		return fmt.Errorf("%w: %s", ErrNoFunction, s1)
	case classBadArgs:
		return fmt.Errorf("%w: %s", ErrBadArgs, s1)
	case classLimit:
		return fmt.Errorf("%w: %s", ErrSystemLimit, s1)
	}
	return fmt.Errorf("%w: reply class %d", ErrBadFrame, class)
}

// gaveUp reports whether rep is the function's own context.DeadlineExceeded.
func (rep reply) gaveUp() bool {
	if rep.err != nil || rep.class != classFunc {
		return false
	}
	fe, ok := decodeReplyError(rep.class, rep.payload).(*FuncError)
	return ok && fe.Sentinel == "context.deadline"
}
