package rpc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeRequest: a request frame decodes without panicking, and what
// encodes decodes back.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(append(appendRequestHeader(nil, kindCall, 7, flagJSON, time.Second, "node.info"), 1, 2, 3))
	f.Add(appendRequestHeader(nil, kindCast, 1, 0, 0, ""))
	f.Add([]byte{kindCall, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{kindCall, 1, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFrame)
			return
		}
		again := append(appendRequestHeader(nil, r.kind, r.id, r.flags, r.timeout, r.fn), r.args...)
		r2, err := decodeRequest(again)
		require.NoError(t, err)
		require.Equal(t, r, r2)
	})
}

// FuzzDecodeReply: a reply frame and its error payload decode without
// panicking, and what encodes decodes back.
func FuzzDecodeReply(f *testing.F) {
	f.Add(append(appendReplyHeader(nil, 3, 9, classOK), 5))
	f.Add(appendReplyError(nil, 3, 9, classFunc, "lookup failed", "test.notfound", false))
	f.Add(appendReplyError(nil, 1, 2, classPanic, "kaboom", "main.f\n\tf.go:1\n", false))
	f.Add(appendReplyError(nil, 1, 2, classKilled, "killed", "", true))
	f.Add([]byte{kindReply, 1, 1, classLimit, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReply(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFrame)
			return
		}
		again := append(appendReplyHeader(nil, r.id, r.incarnation, r.class), r.payload...)
		r2, err := decodeReply(again)
		require.NoError(t, err)
		require.Equal(t, r, r2)
		if r.class != classOK {
			e := decodeReplyError(r.class, r.payload)
			require.Error(t, e)
			_ = e.Error()
			_ = r.gaveUp()
		}
	})
}
