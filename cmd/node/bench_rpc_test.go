package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchRPCOnly(t *testing.T) {
	o, err := parseBenchRPCFlags(nil)
	require.NoError(t, err)
	for _, part := range benchRPCParts {
		require.True(t, o.runs(part), part)
	}
	o, err = parseBenchRPCFlags([]string{"--only", "lat,pmap"})
	require.NoError(t, err)
	require.True(t, o.runs("lat"))
	require.True(t, o.runs("pmap"))
	require.False(t, o.runs("tput"))
	_, err = parseBenchRPCFlags([]string{"--only", "lat,nope"})
	var ue *usageError
	require.True(t, errors.As(err, &ue), "got %v", err)
}
