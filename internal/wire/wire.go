// Package wire holds the primitives of nodal's binary formats: the readers
// and writers of varints, length-prefixed strings and bytes, bools, and the
// (node, id, incarnation) ident that pids and refs share. The root
// package's codec and distribution frames use it, and so do the services'
// own wire types (registry, groups, rpc, the supervisor's management
// calls), so no package writes another decoder. crdt/ keeps its own
// encoding: it must not depend on anything outside the standard library.
//
// # Usage
//
// Writers are Append functions that grow a byte slice, in the style of
// encoding/binary's AppendUvarint:
//
//	b = wire.AppendString(b, name)
//	b = wire.AppendIdent(b, node, id, incarnation)
//
// A Decoder reads the same primitives back in the same order:
//
//	d := wire.NewDecoder(b)
//	name := d.Str()
//	node, id, inc := d.Ident()
//	if err := d.Done(); err != nil { ... }
//
// # Concurrency
//
// The Append functions are pure. A Decoder is a small value owned by one
// goroutine; it is not safe for concurrent use.
//
// # Guarantees
//
// A Decoder never panics, whatever its input. Its first error sticks: every
// read after it returns the zero value, so a caller checks Err (or Done)
// once at the end. A length read from the input is checked against what is
// left of the input before anything is allocated or sliced, so a decoder
// never allocates more than its input's size justifies.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error a Decoder reports.
var ErrMalformed = errors.New("wire: malformed input")

// AppendUvarint appends v as an unsigned varint (encoding/binary's format).
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a zig-zag signed varint (encoding/binary's format).
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendBytes appends v with a uvarint length prefix.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendString appends s with a uvarint length prefix; Decoder.Str reads it.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBool appends v as one byte, 1 or 0.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendIdent appends the (node, id, incarnation) triple that identifies a
// pid or a ref: the node name as a string, then id and incarnation as
// uvarints.
func AppendIdent(b []byte, node string, id, incarnation uint64) []byte {
	b = AppendString(b, node)
	b = binary.AppendUvarint(b, id)
	return binary.AppendUvarint(b, incarnation)
}

// Decoder reads the primitives the Append functions write, with bounds
// checks and a sticky first error. The zero Decoder reads an empty input.
type Decoder struct {
	b   []byte
	off int
	err error
}

// NewDecoder returns a Decoder that reads b from its start. The values it
// returns may alias b (Take, Bytes); b must not change while they are used.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// NewDecoderAt returns a Decoder that reads b from offset off. An offset
// outside b is an error (the Decoder's Err).
func NewDecoderAt(b []byte, off int) Decoder {
	d := Decoder{b: b, off: off}
	if off < 0 || off > len(b) {
		d.off = 0
		d.Fail("offset out of range")
	}
	return d
}

// Err returns the first error the Decoder met, or nil. It wraps ErrMalformed.
func (d *Decoder) Err() error { return d.err }

// Offset returns the number of bytes read so far.
func (d *Decoder) Offset() int { return d.off }

// Len returns the number of bytes left to read.
func (d *Decoder) Len() int { return len(d.b) - d.off }

// Rest returns the bytes left to read, without consuming them.
func (d *Decoder) Rest() []byte { return d.b[d.off:] }

// Done returns Err, or an error if any input is left unread.
func (d *Decoder) Done() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)-d.off)
	}
	return nil
}

// Fail records a malformed-input error naming msg and the current offset,
// unless an error is already recorded.
func (d *Decoder) Fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, msg, d.off)
	}
}

// SetErr records err as the Decoder's error unless one is already recorded
// or err is nil. Its reads then return zero values.
func (d *Decoder) SetErr(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.Fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// Take reads the next n bytes and returns them as a sub-slice of the input
// with its capacity clipped, so appending to it never writes into the
// input. A negative n or one beyond the input is an error.
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.Fail("length exceeds input")
		return nil
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return s
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.Fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// Length reads a uvarint length prefix and checks it against what is left
// of the input, so that nothing is ever allocated beyond the input's size.
func (d *Decoder) Length() int { return d.bounded(1, "length exceeds input") }

// Count reads a uvarint count of items that each take at least minSize
// bytes (minSize >= 1) and checks it against what is left of the input, so
// a caller may allocate count items.
func (d *Decoder) Count(minSize int) int { return d.bounded(max(minSize, 1), "count exceeds input") }

// bounded reads a uvarint n and checks that n items of size bytes fit in
// what is left of the input.
func (d *Decoder) bounded(size int, what string) int {
	v := d.Uvarint()
	if d.err != nil {
		return 0
	}
	rem := uint64(len(d.b) - d.off)
	if v > rem || (size > 1 && v > rem/uint64(size)) { // no division on the common path
		d.Fail(what)
		return 0
	}
	return int(v)
}

// Bytes reads a length-prefixed byte string (AppendBytes) as a sub-slice of
// the input, capacity clipped; copy it to keep it beyond the input's life.
func (d *Decoder) Bytes() []byte { return d.Take(d.Length()) }

// Str reads a length-prefixed string (AppendString). The string is a copy.
func (d *Decoder) Str() string { return string(d.Bytes()) }

// Bool reads a bool written by AppendBool; a byte other than 0 or 1 is an
// error.
func (d *Decoder) Bool() bool {
	c := d.Byte()
	if d.err != nil {
		return false
	}
	switch c {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail("bad bool")
	return false
}

// Ident reads the (node, id, incarnation) triple written by AppendIdent.
func (d *Decoder) Ident() (node string, id, incarnation uint64) {
	node = d.Str()
	id = d.Uvarint()
	incarnation = d.Uvarint()
	if d.err != nil {
		return "", 0, 0
	}
	return node, id, incarnation
}
