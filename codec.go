package nodal

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fxamacker/cbor/v2"

	"github.com/nodal-go/nodal/internal/wire"
)

// Codec encodes the values that travel between nodes. Closures, channels and
// arbitrary Go types do not travel: a value crosses the network only if it is
// one of the built-in kinds (nil, bool, int, int64, uint64, float64, string,
// []byte, Pid, Ref, Down, Exit, NodeDown, and exit reasons) or its type was
// registered with RegisterType under a name that every node agrees on.
// Registered types are encoded as deterministic CBOR (RFC 8949 core
// deterministic encoding), except types that encode themselves
// (encoding.BinaryAppender and encoding.BinaryUnmarshaler; see Register).
//
// A []byte message that arrives from another node is not
// copied out of the memory its connection read it into, a chunk of up to
// 64 KiB shared with the frames read with it: a process that keeps such a
// slice for long keeps that chunk alive, and should keep bytes.Clone of it
// instead (Erlang's sub-binaries of a larger binary behave the same way).
//
// A Codec is safe for concurrent use. Registration is expected at start-up;
// it may happen at any time, and a type registered on the receiver later than
// a frame arrives makes that frame undecodable (dropped and counted).
type Codec struct {
	mu     sync.Mutex // serialises registration
	byName atomic.Pointer[map[string]*codecType]
	byType atomic.Pointer[map[reflect.Type]*codecType]
	enc    cbor.EncMode
	dec    cbor.DecMode
}

type codecType struct {
	name   string
	typ    reflect.Type
	binary bool // encodes itself: AppendBinary and UnmarshalBinary, not CBOR
	// typeWord is typ's type word in an interface when an interface holds
	// a typ by pointer (most structs), nil otherwise (pointers, maps and
	// other pointer-shaped types): see box.
	typeWord unsafe.Pointer
}

// newCodecType makes the codecType of t.
func newCodecType(name string, t reflect.Type, binary bool) *codecType {
	ct := &codecType{name: name, typ: t, binary: binary}
	// An interface holding a zero typ has a nil data word exactly when typ
	// is pointer-shaped (stored in the interface itself); otherwise the
	// word points at a zero value.
	z := reflect.Zero(t).Interface()
	if w := (*[2]unsafe.Pointer)(unsafe.Pointer(&z)); w[1] != nil {
		ct.typeWord = w[0]
	}
	return ct
}

// box returns the value ptr (a *typ the decoder just made and filled, that
// nothing else refers to) points at, as an any. For a type an interface
// holds by pointer, the interface's data word is ptr itself, where
// ptr.Elem().Interface() would copy the value into a second allocation:
// one allocation and one copy fewer per decoded value (a call's reply, for
// one). The value must never change afterwards (an interface's value is
// immutable), which holds as ptr goes nowhere else.
func (ct *codecType) box(ptr reflect.Value) any {
	if ct.typeWord == nil {
		return ptr.Elem().Interface()
	}
	var v any
	w := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
	w[0], w[1] = ct.typeWord, ptr.UnsafePointer()
	return v
}

var (
	binaryAppenderType    = reflect.TypeFor[encoding.BinaryAppender]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// DefaultCodec is the codec a node uses when Config.Codec is nil.
var DefaultCodec = NewCodec()

// Codec returns the codec n encodes and decodes remote values with:
// Config.Codec, or DefaultCodec when that is nil. Packages built on a node
// use it to register their wire types and to encode values they carry as
// bytes (as the supervisor does with StartDynamicChild's args).
func (n *Node) Codec() *Codec {
	if n.cfg.Codec != nil {
		return n.cfg.Codec
	}
	return DefaultCodec
}

// maxTypeNameLen bounds a registered type's name, on the wire and at registration.
const maxTypeNameLen = 255

// NewCodec returns a codec that knows only the built-in kinds.
func NewCodec() *Codec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	dec, err := cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 65536,
		MaxMapPairs:      65536,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	c := &Codec{enc: enc, dec: dec}
	byName := map[string]*codecType{}
	byType := map[reflect.Type]*codecType{}
	c.byName.Store(&byName)
	c.byType.Store(&byType)
	return c
}

// RegisterType registers the dynamic type of example under name in the
// DefaultCodec. See (*Codec).Register.
func RegisterType(name string, example any) error {
	return DefaultCodec.Register(name, example)
}

// Register makes values of example's dynamic type encodable under name. Every
// node that receives such values must register the same type under the same
// name. Registering the same type under the same name again is a no-op;
// reusing a name for another type, or a type under another name, is an error
// wrapping ErrCodec.
//
// A type T whose value implements encoding.BinaryAppender and whose pointer
// *T implements encoding.BinaryUnmarshaler encodes itself: the codec writes
// its name and the length-prefixed bytes AppendBinary appends, and the
// receiver hands UnmarshalBinary exactly those bytes (a slice of that
// length, with its capacity clipped; it must copy what it keeps, as
// encoding.BinaryUnmarshaler says) and nothing else. The length is checked
// against the frame before anything is read, so a decoder never reads or
// allocates past its input for such a value; UnmarshalBinary itself must
// bound what it allocates by the bytes it is given (internal/wire's Decoder
// does), and must not keep its receiver: the value it fills is the one
// delivered, without a copy. An error or a panic in either method is a *CodecError, never a
// crash. This is the extension point for the services' own wire types
// (supervisor, registry, groups, rpc). A type that implements only one of
// the two halves is refused, since it could travel one way only; every
// other type is encoded as CBOR.
func (c *Codec) Register(name string, example any) error {
	if name == "" || len(name) > maxTypeNameLen {
		return fmt.Errorf("%w: type name must be 1..%d bytes", ErrCodec, maxTypeNameLen)
	}
	if example == nil {
		return fmt.Errorf("%w: cannot register nil", ErrCodec)
	}
	t := reflect.TypeOf(example)
	if builtinKind(example) != 0 {
		return fmt.Errorf("%w: %v is built in and needs no registration", ErrCodec, t)
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Interface:
		return fmt.Errorf("%w: %v values cannot travel between nodes", ErrCodec, t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	oldName := *c.byName.Load()
	oldType := *c.byType.Load()
	if ct, ok := oldName[name]; ok {
		if ct.typ == t {
			return nil
		}
		return fmt.Errorf("%w: name %q already registered for %v", ErrCodec, name, ct.typ)
	}
	if ct, ok := oldType[t]; ok {
		return fmt.Errorf("%w: %v already registered as %q", ErrCodec, t, ct.name)
	}
	appends := t.Implements(binaryAppenderType)
	unmarshals := reflect.PointerTo(t).Implements(binaryUnmarshalerType)
	switch {
	case appends && !unmarshals:
		return fmt.Errorf("%w: %v implements encoding.BinaryAppender but %v does not implement encoding.BinaryUnmarshaler", ErrCodec, t, reflect.PointerTo(t))
	case unmarshals && !appends:
		return fmt.Errorf("%w: %v implements encoding.BinaryUnmarshaler but %v does not implement encoding.BinaryAppender", ErrCodec, reflect.PointerTo(t), t)
	case !appends:
		// Check that the type encodes at all (e.g. no func fields).
		if _, err := c.enc.Marshal(example); err != nil {
			return fmt.Errorf("%w: %v cannot be encoded: %v", ErrCodec, t, err)
		}
	}
	ct := newCodecType(name, t, appends)
	byName := maps.Clone(oldName)
	byType := maps.Clone(oldType)
	byName[name] = ct
	byType[t] = ct
	c.byName.Store(&byName)
	c.byType.Store(&byType)
	return nil
}

// Types returns the registered type names, sorted.
func (c *Codec) Types() []string {
	return slices.Sorted(maps.Keys(*c.byName.Load()))
}

// Value tags on the wire. Their numbers are part of the protocol.
const (
	tagNil byte = iota + 1
	tagBytes
	tagString
	tagInt
	tagInt64
	tagUint64
	tagFloat64
	tagBool
	tagPid
	tagRef
	tagReason
	tagDown
	tagExit
	tagNodeDown
	tagRegistered
	tagInt32
	tagUint32
	tagUint
	tagCallRequest
	tagIORequest
	_         // 21: reserved, was tagSupRequest (supervisor requests are now registered types); never reuse
	_         // 22: reserved, was tagSupReply; never reuse
	tagBinary // a registered type that encodes itself (encoding.BinaryAppender)
)

// maxValueDepth bounds nesting of built-in containers (a CallRequest
// carrying a CallRequest ...) so that decoding cannot recurse without bound.
const maxValueDepth = 16

func builtinKind(v any) byte {
	switch v.(type) {
	case nil:
		return tagNil
	case []byte:
		return tagBytes
	case string:
		return tagString
	case int:
		return tagInt
	case int64:
		return tagInt64
	case int32:
		return tagInt32
	case uint64:
		return tagUint64
	case uint32:
		return tagUint32
	case uint:
		return tagUint
	case float64:
		return tagFloat64
	case bool:
		return tagBool
	case Pid:
		return tagPid
	case Ref:
		return tagRef
	case Down:
		return tagDown
	case Exit:
		return tagExit
	case NodeDown:
		return tagNodeDown
	case CallRequest:
		return tagCallRequest
	case IORequest:
		return tagIORequest
	}
	return 0
}

// AppendValue appends the encoding of v to b. It fails with an error wrapping
// ErrCodec when v's type is neither built in nor registered, or cannot be
// encoded.
func (c *Codec) AppendValue(b []byte, v any) ([]byte, error) {
	return c.appendValue(b, v, 0)
}

func (c *Codec) appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case []byte:
		b = append(b, tagBytes)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case string:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), x), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), x), nil
	case uint32:
		return binary.AppendUvarint(append(b, tagUint32), uint64(x)), nil
	case uint:
		return binary.AppendUvarint(append(b, tagUint), uint64(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(x)), nil
	case bool:
		return appendBool(append(b, tagBool), x), nil
	case Pid:
		return appendPid(append(b, tagPid), x), nil
	case Ref:
		return appendRef(append(b, tagRef), x), nil
	case Down:
		b = appendRef(append(b, tagDown), x.Ref)
		b = appendPid(b, x.Pid)
		return appendReason(b, x.Reason), nil
	case Exit:
		b = appendPid(append(b, tagExit), x.From)
		return appendReason(b, x.Reason), nil
	case NodeDown:
		b = appendString(append(b, tagNodeDown), x.Node)
		return appendReason(b, x.Reason), nil
	case CallRequest:
		if depth >= maxValueDepth {
			return b, &CodecError{Type: "nodal.CallRequest", Err: errors.New("nested too deep")}
		}
		b = appendPid(append(b, tagCallRequest), x.From.Pid)
		b = appendRef(b, x.From.Ref)
		return c.appendValue(b, x.Req, depth+1)
	case IORequest:
		return appendString(append(b, tagIORequest), x.Text), nil
	}
	if err, ok := v.(error); ok && isReasonValue(err) {
		return appendReason(append(b, tagReason), err), nil
	}
	t := reflect.TypeOf(v)
	ct, ok := (*c.byType.Load())[t]
	if !ok {
		return b, &CodecError{Type: t.String(), Err: ErrUnregisteredType}
	}
	if ct.binary {
		return appendBinary(b, ct, v.(encoding.BinaryAppender))
	}
	data, err := c.enc.Marshal(v)
	if err != nil {
		return b, &CodecError{Type: t.String(), Err: err}
	}
	b = append(b, tagRegistered)
	b = appendString(b, ct.name)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...), nil
}

// DecodeValue decodes one value from the front of b and returns it with the
// number of bytes consumed. Malformed input returns an error wrapping
// ErrCodec; it never panics and allocates at most what b's length justifies.
func (c *Codec) DecodeValue(b []byte) (any, int, error) {
	d := newDecoder(b, false)
	v := c.decodeValue(&d)
	if d.Err() != nil {
		return nil, 0, d.err()
	}
	return v, d.Offset(), nil
}

func (c *Codec) decodeValue(d *decoder) any {
	tag := d.Byte()
	if d.Err() != nil {
		return nil
	}
	switch tag {
	case tagNil:
		return nil
	case tagBytes:
		n := d.Length()
		raw := d.Take(n)
		if d.Err() != nil {
			return nil
		}
		if d.owned {
			return raw[:len(raw):len(raw)] // capacity clipped: appends copy
		}
		out := make([]byte, len(raw))
		copy(out, raw)
		return out
	case tagString:
		return d.Str()
	case tagInt:
		return int(d.Varint())
	case tagInt64:
		return d.Varint()
	case tagInt32:
		v := d.Varint()
		if v < math.MinInt32 || v > math.MaxInt32 {
			d.Fail("int32 out of range")
		}
		return int32(v)
	case tagUint64:
		return d.Uvarint()
	case tagUint32:
		v := d.Uvarint()
		if v > math.MaxUint32 {
			d.Fail("uint32 out of range")
		}
		return uint32(v)
	case tagUint:
		return uint(d.Uvarint())
	case tagFloat64:
		raw := d.Take(8)
		if d.Err() != nil {
			return nil
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(raw))
	case tagBool:
		return d.Bool()
	case tagPid:
		return d.pid()
	case tagRef:
		return d.ref()
	case tagReason:
		return d.reason()
	case tagDown:
		r := d.ref()
		p := d.pid()
		return Down{Ref: r, Pid: p, Reason: d.reason()}
	case tagExit:
		p := d.pid()
		return Exit{From: p, Reason: d.reason()}
	case tagNodeDown:
		n := d.Str()
		return NodeDown{Node: n, Reason: d.reason()}
	case tagCallRequest:
		if d.depth >= maxValueDepth {
			d.Fail("value nested too deep")
			return nil
		}
		p := d.pid()
		r := d.ref()
		d.depth++
		req := c.decodeValue(d)
		d.depth--
		return CallRequest{From: From{Pid: p, Ref: r}, Req: req}
	case tagIORequest:
		return IORequest{Text: d.Str()}
	case tagBinary:
		return c.decodeBinary(d)
	case tagRegistered:
		name := d.Bytes() // looked up without a copy
		n := d.Length()
		raw := d.Take(n)
		if d.Err() != nil {
			return nil
		}
		ct, ok := (*c.byName.Load())[string(name)]
		if !ok {
			d.SetErr(&CodecError{Type: string(name), Err: ErrUnregisteredType})
			return nil
		}
		if ct.binary {
			d.SetErr(&CodecError{Type: ct.name, Err: errors.New("sent as CBOR but registered here as a type that encodes itself")})
			return nil
		}
		ptr := reflect.New(ct.typ)
		if err := c.dec.Unmarshal(raw, ptr.Interface()); err != nil {
			d.SetErr(&CodecError{Type: ct.name, Err: fmt.Errorf("%w: %v", ErrCodec, err)})
			return nil
		}
		return ct.box(ptr)
	}
	d.Fail(fmt.Sprintf("unknown value tag %d", tag))
	return nil
}

// appendBinary appends a value of a type that encodes itself: tagBinary, its
// name, and the length-prefixed bytes of its AppendBinary. The method
// appends after the header and the length is slid in front of its bytes,
// so nothing is copied twice in the common case.
func appendBinary(b []byte, ct *codecType, v encoding.BinaryAppender) (out []byte, err error) {
	orig := len(b)
	b = appendString(append(b, tagBinary), ct.name)
	start := len(b)
	defer func() {
		if r := recover(); r != nil {
			out, err = b[:orig], &CodecError{Type: ct.typ.String(), Err: fmt.Errorf("AppendBinary panicked: %v", r)}
		}
	}()
	data, err := v.AppendBinary(b)
	if err != nil {
		return b[:orig], &CodecError{Type: ct.typ.String(), Err: err}
	}
	if len(data) < start {
		return b[:orig], &CodecError{Type: ct.typ.String(), Err: errors.New("AppendBinary did not append to its argument")}
	}
	n := len(data) - start
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(n))
	data = append(data, hdr[:h]...)
	copy(data[start+h:], data[start:start+n])
	copy(data[start:], hdr[:h])
	return data, nil
}

// decodeBinary decodes a value of a type that encodes itself: its
// UnmarshalBinary gets exactly the bytes its AppendBinary wrote.
func (c *Codec) decodeBinary(d *decoder) (v any) {
	nb := d.Bytes() // looked up without a copy
	raw := d.Take(d.Length())
	if d.Err() != nil {
		return nil
	}
	ct, ok := (*c.byName.Load())[string(nb)]
	if !ok {
		d.SetErr(&CodecError{Type: string(nb), Err: ErrUnregisteredType})
		return nil
	}
	name := ct.name
	if !ct.binary {
		d.SetErr(&CodecError{Type: name, Err: errors.New("sent as a type that encodes itself but registered here for CBOR")})
		return nil
	}
	ptr := reflect.New(ct.typ)
	defer func() {
		if r := recover(); r != nil {
			v = nil
			d.SetErr(&CodecError{Type: name, Err: fmt.Errorf("UnmarshalBinary panicked: %v", r)})
		}
	}()
	if err := ptr.Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(raw); err != nil {
		d.SetErr(&CodecError{Type: name, Err: err})
		return nil
	}
	return ct.box(ptr)
}

// Marshal encodes v as a standalone byte slice.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.AppendValue(nil, v) }

// Unmarshal decodes exactly one value that fills b.
func (c *Codec) Unmarshal(b []byte) (any, error) {
	v, n, err := c.DecodeValue(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCodec, len(b)-n)
	}
	return v, nil
}

// CodecError reports a value that could not be encoded or decoded.
type CodecError struct {
	Type string // Go type (encoding) or registered name (decoding)
	Err  error
}

// Error implements error.
func (e *CodecError) Error() string {
	return fmt.Sprintf("nodal: codec: %s: %v", e.Type, e.Err)
}

// Unwrap returns the cause; CodecError also matches ErrCodec.
func (e *CodecError) Unwrap() []error { return []error{e.Err, ErrCodec} }

// ErrCodec is wrapped by every encoding and decoding error.
var ErrCodec = errors.New("nodal: codec error")

// ErrUnregisteredType means a value's type was not registered with the codec.
var ErrUnregisteredType = errors.New("type not registered with the codec (use nodal.RegisterType)")

// --- primitives shared by the codec and the distribution frames ---
//
// They are thin names for the internal/wire toolkit, kept so that the
// distribution frames (dist*.go, service.go) read as before.

func appendString(b []byte, s string) []byte { return wire.AppendString(b, s) }

func appendBool(b []byte, v bool) []byte { return wire.AppendBool(b, v) }

// appendIdent appends a pid's or ref's (node, id, incarnation). The
// incarnation is a uvarint on the wire, so widening it changes nothing there.
func appendIdent(b []byte, node string, id uint64, inc uint64) []byte {
	return wire.AppendIdent(b, node, id, inc)
}

func appendPid(b []byte, p Pid) []byte { return appendIdent(b, p.Node, p.ID, p.Incarnation) }

func appendRef(b []byte, r Ref) []byte { return appendIdent(b, r.Node, r.ID, r.Incarnation) }

// Reason codes on the wire.
const (
	reasonNil byte = iota
	reasonNormal
	reasonKill
	reasonKilled
	reasonShutdown
	reasonNoProc
	reasonNoConnection
	reasonShutdownWith // ShutdownError{inner}
	reasonPanic        // PanicError: text + stack
	reasonOther        // any other error: its text
)

// maxReasonDepth bounds nested ShutdownError reasons on the wire.
const maxReasonDepth = 8

// isReasonValue reports whether err is one of the reason kinds with a code.
func isReasonValue(err error) bool {
	switch err {
	case ReasonNormal, ReasonKill, ReasonKilled, ReasonShutdown, ReasonNoProc, ReasonNoConnection:
		return true
	}
	switch err.(type) {
	case *ShutdownError, *PanicError, *RemoteError:
		return true
	}
	return false
}

func appendReason(b []byte, err error) []byte { return appendReasonDepth(b, err, 0) }

func appendReasonDepth(b []byte, err error, depth int) []byte {
	switch err {
	case nil:
		return append(b, reasonNil)
	case ReasonNormal:
		return append(b, reasonNormal)
	case ReasonKill:
		return append(b, reasonKill)
	case ReasonKilled:
		return append(b, reasonKilled)
	case ReasonShutdown:
		return append(b, reasonShutdown)
	case ReasonNoProc:
		return append(b, reasonNoProc)
	case ReasonNoConnection:
		return append(b, reasonNoConnection)
	}
	switch e := err.(type) {
	case *ShutdownError:
		if depth < maxReasonDepth {
			return appendReasonDepth(append(b, reasonShutdownWith), e.Reason, depth+1)
		}
	case *PanicError:
		b = appendString(append(b, reasonPanic), fmt.Sprint(e.Value))
		return appendString(b, string(e.Stack))
	}
	return appendString(append(b, reasonOther), err.Error())
}

// RemoteError is an exit reason that arrived from another node and has no
// local equivalent: it keeps the reason's text.
type RemoteError struct{ Text string }

// Error implements error: the reason's text as it left its node.
func (e *RemoteError) Error() string { return e.Text }

// decoder is the wire.Decoder of the codec and the distribution frames, with
// the root's own types on top (pids, refs, reasons, values). The first
// error sticks; err returns it wrapped in ErrCodec.
type decoder struct {
	wire.Decoder
	depth int
	// owned says the input is ours to keep (a frame p2p handed over):
	// decoded []byte values then point into it instead of being copied.
	owned bool
}

func newDecoder(b []byte, owned bool) decoder {
	return decoder{Decoder: wire.NewDecoder(b), owned: owned}
}

// err returns the first error, as an error wrapping ErrCodec.
func (d *decoder) err() error { return codecErr(d.Err()) }

// done returns err, or an error if input is left unread.
func (d *decoder) done() error { return codecErr(d.Done()) }

func codecErr(err error) error {
	if err == nil || errors.Is(err, ErrCodec) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCodec, err)
}

func (d *decoder) pid() Pid {
	node, id, inc := d.Ident()
	return Pid{Node: node, ID: id, Incarnation: inc}
}

func (d *decoder) ref() Ref {
	node, id, inc := d.Ident()
	return Ref{Node: node, ID: id, Incarnation: inc}
}

func (d *decoder) reason() error { return d.reasonDepth(0) }

func (d *decoder) reasonDepth(depth int) error {
	code := d.Byte()
	if d.Err() != nil {
		return nil
	}
	switch code {
	case reasonNil:
		return nil
	case reasonNormal:
		return ReasonNormal
	case reasonKill:
		return ReasonKill
	case reasonKilled:
		return ReasonKilled
	case reasonShutdown:
		return ReasonShutdown
	case reasonNoProc:
		return ReasonNoProc
	case reasonNoConnection:
		return ReasonNoConnection
	case reasonShutdownWith:
		if depth >= maxReasonDepth {
			d.Fail("reason nested too deep")
			return nil
		}
		return &ShutdownError{Reason: d.reasonDepth(depth + 1)}
	case reasonPanic:
		v := d.Str()
		st := d.Str()
		return &PanicError{Value: v, Stack: []byte(st)}
	case reasonOther:
		return &RemoteError{Text: d.Str()}
	}
	d.Fail(fmt.Sprintf("unknown reason code %d", code))
	return nil
}
