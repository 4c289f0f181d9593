package nodal

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzFramesFastPath checks dist.Frames' fast path for messages
// (decodeLocalMsg) against the general decoder (decodeSignal) on arbitrary
// frames: whatever the fast path takes, the general path decodes to the
// same target and value; whatever it calls malformed, the general path
// refuses too. Neither panics.
func FuzzFramesFastPath(f *testing.F) {
	n, err := Start(context.Background(), Config{})
	require.NoError(f, err)
	f.Cleanup(func() { _ = n.Stop(context.Background()) })
	d := newDist(n, DefaultCodec)
	from := Pid{Node: frameBenchPeer.Name, ID: 99, Incarnation: frameBenchPeer.Incarnation}
	to := Pid{Node: n.name, ID: 1234, Incarnation: n.incarnation}
	// Each pid with its incarnation implied (a frame sent on a link) or
	// spelled out (one sent by node name).
	for _, inc := range [][2]uint64{{frameBenchPeer.Incarnation, n.incarnation}, {0, 0}, {frameBenchPeer.Incarnation, 0}, {0, n.incarnation}} {
		for _, v := range []any{make([]byte, 32), []byte{}, "text", 7, Pid{Node: "x@h", ID: 1}, nil} {
			fr := append([]byte{dMsg}, appendRemotePid(nil, from, frameBenchPeer.Name, inc[0])...)
			fr = appendRemotePid(fr, to, n.name, inc[1])
			fr, err = DefaultCodec.AppendValue(fr, v)
			require.NoError(f, err)
			for i := range fr { // and every cut of it
				f.Add(fr[:i+1])
			}
		}
	}
	f.Add([]byte{dMsg, 0, 1, 7, 0, 1, 1, tagBytes, 3, 'a', 'b'})
	f.Add([]byte{dMsg, pidImplied, 1, pidImplied, 1, tagBytes, 2, 'a', 'b'})
	f.Add([]byte{dMsg, pidImplied, 0x80, pidImplied, 0x80, tagBytes, 1, 'a'})
	f.Add([]byte{dMsgSame, tagBytes, 2, 'a', 'b'})
	f.Add([]byte{dMsgSame, tagBytes, 3, 'a'})
	f.Add([]byte{dMsgSame})
	// Cut right after the target pid: no value.
	head := append([]byte{dMsg}, appendRemotePid(nil, from, frameBenchPeer.Name, frameBenchPeer.Incarnation)...)
	f.Add(appendRemotePid(head, to, n.name, n.incarnation))
	f.Add([]byte{dMsg, 0, 0x80, 0, 0, 0, 0, 0, 0, 0})
	// A head taken from an earlier frame of the stream (msgHead): a frame
	// that starts with it decodes as it does without it.
	primed := append([]byte{dMsg}, appendRemotePid(nil, from, frameBenchPeer.Name, frameBenchPeer.Incarnation)...)
	primed = appendRemotePid(primed, to, n.name, n.incarnation)
	primed = append(primed, tagBytes, 1, 'x')
	f.Fuzz(func(t *testing.T, fr []byte) {
		var box, pbox []byte
		var head, phead msgHead
		_, _, pok, perr := d.decodeLocalMsg(primed, &pbox, &phead)
		require.True(t, pok)
		require.NoError(t, perr)
		require.NotEmpty(t, phead.b)
		if len(fr) > 0 && fr[0] == dMsgSame {
			// It stands for the head before it: with none, it is refused;
			// after primed, it decodes as that head followed by its value.
			_, _, ok, err := d.decodeLocalMsg(fr, &box, &head)
			require.True(t, ok)
			require.ErrorIs(t, err, errSameHead)
			var fbox []byte
			var fhead msgHead
			full := append(append([]byte(nil), phead.b...), fr[1:]...)
			fid, fv, fok, ferr := d.decodeLocalMsg(full, &fbox, &fhead)
			pid, pv, pok, perr := d.decodeLocalMsg(fr, &pbox, &phead)
			require.True(t, pok)
			if len(fr) == 1 {
				require.ErrorIs(t, perr, errSameHead)
				return
			}
			if !fok { // a malformed []byte, which the general path reports
				require.Error(t, perr, "%x", fr)
				return
			}
			require.Equal(t, ferr == nil, perr == nil, "%x", fr)
			if perr == nil {
				require.Equal(t, fid, pid)
				require.Equal(t, fv, pv)
			}
			return
		}
		id, v, ok, err := d.decodeLocalMsg(fr, &box, &head)
		pid, pv, pok, perr := d.decodeLocalMsg(fr, &pbox, &phead)
		require.Equal(t, ok, pok, "with a head from before: %x", fr)
		require.Equal(t, err == nil, perr == nil, "with a head from before: %x", fr)
		if ok && err == nil {
			require.Equal(t, id, pid)
			require.Equal(t, v, pv)
		}
		if !ok {
			return // left to the general path, which the codec's fuzzing covers
		}
		dec := newDecoder(fr, true)
		kind := dec.Byte()
		sf, isSig := signalFrame(kind)
		require.True(t, isSig)
		s, gerr := d.decodeSignal(frameBenchPeer, kind, sf, &dec)
		if err != nil {
			require.Error(t, gerr, "fast path refused %x, general path took it", fr)
			return
		}
		require.NoError(t, gerr, "fast path took %x", fr)
		require.Equal(t, sigMessage, s.kind)
		require.True(t, n.isLocal(s.to))
		require.Equal(t, s.to.ID, id)
		require.Equal(t, s.msg, v)
	})
}
