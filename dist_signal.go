package nodal

import (
	"errors"
	"fmt"

	"github.com/nodal-go/nodal/p2p"
)

// A signal between processes of two nodes travels as one frame: its frame
// kind, the sender and target pids (each without its node name when that is
// implied by the connection), then the fields its kind carries, always in the
// order ref, reason, value. One table says which; encodeSignal and
// decodeSignal both read it, so the two directions cannot drift apart.

// sigFields are the fields a signal frame carries after the two pids.
type sigFields uint8

const (
	fRef    sigFields = 1 << iota // the signal's Ref
	fReason                       // an exit reason
	fValue                        // a codec value: the message, reply or request
)

// sigFrame describes one frame kind of a signal.
type sigFrame struct {
	sig    signalKind
	fields sigFields
}

// sigFrames maps each signal frame kind to its signal and fields.
var sigFrames = [...]sigFrame{
	dMsg:        {sigMessage, fValue},
	dReply:      {sigReply, fRef | fValue},
	dReplyDemon: {sigReply, fRef | fValue}, // the reply also ended the dCall's monitor
	dCall:       {sigCall, fRef | fValue},
	dLink:       {sigLink, 0},
	dUnlink:     {sigUnlink, 0},
	dExit:       {sigExit, fReason},
	dLinkExit:   {sigLinkExit, fReason},
	dMonitor:    {sigMonitor, fRef},
	dDemonitor:  {sigDemonitor, fRef},
	dDown:       {sigDown, fRef | fReason},
}

// sigFrameKinds is the inverse of sigFrames (dReply for sigReply; a dropped
// reply becomes dReplyDemon in encodeSignal).
var sigFrameKinds = func() (m [sigCall + 1]byte) {
	for k, f := range sigFrames {
		if f.sig != 0 && m[f.sig] == 0 {
			m[f.sig] = byte(k)
		}
	}
	return m
}()

// signalFrame returns the frame description of kind, if kind is a signal.
func signalFrame(kind byte) (sigFrame, bool) {
	if int(kind) < len(sigFrames) && sigFrames[kind].sig != 0 {
		return sigFrames[kind], true
	}
	return sigFrame{}, false
}

// encodeSignal appends the encoding of s, for the node named peer, to b.
func (d *dist) encodeSignal(b []byte, s signal, peer string) ([]byte, error) {
	var kind byte
	if int(s.kind) < len(sigFrameKinds) {
		kind = sigFrameKinds[s.kind]
	}
	if kind == 0 {
		return nil, fmt.Errorf("nodal: cannot send a %v signal to another node", s.kind)
	}
	value := s.msg
	switch s.kind {
	case sigReply:
		r, _ := s.msg.(CallReply)
		value = r.Reply
		if r.dropped {
			kind = dReplyDemon
		}
	case sigCall:
		r, _ := s.msg.(CallRequest)
		value = r.Req
	}
	f := sigFrames[kind].fields
	b = append(b, kind)
	b = appendRemotePid(b, s.from, d.n.name, d.n.incarnation)
	b = appendRemotePid(b, s.to, peer, 0) // sent by name: see appendRemotePid
	if f&fRef != 0 {
		b = appendRef(b, s.ref)
	}
	if f&fReason != 0 {
		b = appendReason(b, s.reason)
	}
	if f&fValue != 0 {
		return d.codec.AppendValue(b, value)
	}
	return b, nil
}

// decodeSignal decodes the rest of a signal frame of kind from p.
func (d *dist) decodeSignal(p p2p.Peer, kind byte, f sigFrame, dec *decoder) (signal, error) {
	s := signal{
		kind: f.sig,
		from: dec.remotePid(p.Name, p.Incarnation),
		to:   dec.remotePid(d.n.name, d.n.incarnation),
	}
	if s.from.Node != p.Name && !s.from.IsZero() {
		return signal{}, fmt.Errorf("%w: signal from %v relayed by %s", ErrCodec, s.from, p.Name)
	}
	if f.fields&fRef != 0 {
		s.ref = decodeRefOf(dec, p.Name, d.n.name)
	}
	if f.fields&fReason != 0 {
		s.reason = dec.reason()
	}
	if f.fields&fValue != 0 {
		v := d.codec.decodeValue(dec)
		if err := dec.Err(); err != nil && s.kind == sigReply && dec.Len() == 0 {
			// ce is declared here, not above: errors.As makes it escape,
			// and a successful decode should not allocate it.
			if ce := (*CodecError)(nil); errors.As(err, &ce) {
				// The frame is whole (the value, its last field, was read
				// to its end) but this node cannot make the value: the
				// caller is told, not left waiting out its deadline.
				d.decodeErrors.Add(1)
				log.Warnw("undecodable call reply: the caller gets the error", "from", p.Name, "to", s.to, "error", ce)
				s.msg = CallReply{Ref: s.ref, dropped: kind == dReplyDemon, Err: ce}
				return s, nil
			}
		}
		switch s.kind {
		case sigReply:
			s.msg = CallReply{Ref: s.ref, Reply: v, dropped: kind == dReplyDemon}
		case sigCall:
			s.msg = CallRequest{From: From{Pid: s.from, Ref: s.ref, mon: true}, Req: v}
		default:
			s.msg = v
		}
	}
	return s, dec.done()
}

// decodeRefOf reads a Ref (decoder.ref) whose node is usually one of two
// known names (a call's ref names the caller's node: the peer for a
// request, this node for a reply): the known string is used rather than a
// new copy, which saves an allocation per call and per reply.
func decodeRefOf(dec *decoder, a, b string) Ref {
	node := dec.Bytes()
	id := dec.Uvarint()
	inc := dec.Uvarint()
	if dec.Err() != nil {
		return Ref{}
	}
	var name string
	switch string(node) { // compared without a copy
	case a:
		name = a
	case b:
		name = b
	default:
		name = string(node)
	}
	return Ref{Node: name, ID: id, Incarnation: inc}
}
