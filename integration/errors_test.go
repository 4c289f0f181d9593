package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/rpc"
)

// Texts node ctl printed in real runs come back as errors that match the
// sentinels they name, and no others.
func TestErrorFromText(t *testing.T) {
	for _, tc := range []struct {
		text   string
		is     []error
		isNot  []error
		reason error
	}{
		{text: "rpc: rpc.echo on n4@10.202.113.5: nodal: no connection to node: n4@10.202.113.5: p2p: no connection to node: unknown node from n4@10.202.113.5",
			is: []error{nodal.ErrNoConnection, rpc.ErrNoConnection}, isNot: []error{nodal.ErrTimeout, rpc.ErrNodeDown}},
		{text: "rpc: rpc.echo on b@h: nodal: no connection to node: rpc: node known to be down (circuit breaker open): b@h",
			is: []error{nodal.ErrNoConnection, rpc.ErrNodeDown}},
		{text: "nodal: call to <n2@10.202.138.3.41.3313099828> failed: noproc",
			is: []error{nodal.ErrNoProc, nodal.ReasonNoProc}, isNot: []error{nodal.ErrNoConnection}},
		{text: "nodal: call to <b@h.1.2> failed: noconnection",
			is: []error{nodal.ReasonNoConnection, nodal.ErrNoConnection}},
		{text: "ask b@h: nodal: timeout: context deadline exceeded",
			is: []error{nodal.ErrTimeout, context.DeadlineExceeded}},
		{text: "the process is a noprocess", isNot: []error{nodal.ErrNoProc, nodal.ReasonNoProc}},
	} {
		err := errorFromText(tc.text)
		require.Equal(t, tc.text, err.Error())
		for _, want := range tc.is {
			require.ErrorIs(t, err, want, tc.text)
		}
		for _, not := range tc.isNot {
			require.False(t, errors.Is(err, not), "%q is %v", tc.text, not)
		}
	}
	require.Equal(t, nodal.ReasonNoConnection, reasonFromText("noconnection"))
	require.Equal(t, nodal.ReasonKilled, reasonFromText("killed"))
	require.Equal(t, "some reason", reasonFromText("some reason").Error())
}
