package nodal

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBoxBytes checks that a []byte boxed in place is the []byte it holds
// for type switches, comparisons and formatting, and survives collections
// while only the interface refers to it.
func TestBoxBytes(t *testing.T) {
	boxes := make([]any, 64)
	for i := range boxes {
		hdrs := make([][]byte, 1)
		hdrs[0] = []byte(fmt.Sprintf("payload %d", i))
		boxes[i] = boxBytes(&hdrs[0])
	}
	runtime.GC()
	runtime.GC()
	for i, v := range boxes {
		b, ok := v.([]byte)
		require.True(t, ok)
		require.Equal(t, fmt.Sprintf("payload %d", i), string(b))
		require.Equal(t, []byte(fmt.Sprintf("payload %d", i)), v)
		require.Equal(t, fmt.Sprintf("payload %d", i), fmt.Sprintf("%s", v))
	}
	var h []byte
	require.Equal(t, []byte(nil), boxBytes(&h))
}
