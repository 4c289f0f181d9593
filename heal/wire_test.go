package heal

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	s := Settings{ReconnectHorizon: time.Hour, PurgePeriod: 2 * time.Hour, Strategy: StrategyKeepReferee, Referee: "r@h", DownIfAlone: false}
	f, err := decodeFrame(encodeHello(s, -42))
	require.NoError(t, err)
	require.Equal(t, kindHello, f.kind)
	require.Equal(t, s, f.settings)
	require.Equal(t, int64(-42), f.started)

	f, err = decodeFrame(encodeReach(7, []string{"a@h", "b@h"}))
	require.NoError(t, err)
	require.Equal(t, uint64(7), f.seq)
	require.Equal(t, []string{"a@h", "b@h"}, f.nodes)

	f, err = decodeFrame(encodeVoteReq(9, "topic", []byte("v"), 1500*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, uint64(9), f.id)
	require.Equal(t, "topic", f.topic)
	require.Equal(t, []byte("v"), f.value)
	require.Equal(t, 1500*time.Millisecond, f.timeout)

	f, err = decodeFrame(encodeVoteResp(9, true))
	require.NoError(t, err)
	require.True(t, f.yes)

	for name, b := range map[string][]byte{
		"empty":         nil,
		"unknown kind":  {99},
		"truncated":     encodeHello(s, 1)[:5],
		"trailing":      append(encodeVoteResp(1, false), 0),
		"bad bool":      {kindVoteResp, 1, 7},
		"huge count":    {kindReach, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"wrong version": {kindHello, 2},
	} {
		_, err := decodeFrame(b)
		require.ErrorIs(t, err, ErrBadFrame, name)
	}
}

// FuzzDecodeFrame: no input panics, and what decodes re-encodes to the
// same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeHello(Settings{ReconnectHorizon: time.Hour, PurgePeriod: time.Hour, Strategy: StrategyStaticQuorum, QuorumSize: 3}, 1))
	f.Add(encodeReach(1, []string{"a@h"}))
	f.Add(encodeVoteReq(1, "t", []byte("value"), time.Second))
	f.Add(encodeVoteResp(1, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		var again []byte
		switch fr.kind {
		case kindHello:
			again = encodeHello(fr.settings, fr.started)
		case kindReach:
			again = encodeReach(fr.seq, fr.nodes)
		case kindVoteReq:
			again = encodeVoteReq(fr.id, fr.topic, fr.value, fr.timeout)
		case kindVoteResp:
			again = encodeVoteResp(fr.id, fr.yes)
		}
		fr2, err := decodeFrame(again)
		require.NoError(t, err)
		require.Equal(t, fr, fr2)
	})
}

// Settings survive the wire exactly, sub-millisecond parts included (they
// are dropped on both sides), so equal configs never refuse each other.
func TestSettingsOnTheWire(t *testing.T) {
	c := Config{ReconnectHorizon: time.Hour + 1500*time.Microsecond}.withDefaults()
	f, err := decodeFrame(encodeHello(c.settings(), 1))
	require.NoError(t, err)
	require.Equal(t, c.settings(), f.settings)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	for name, c := range map[string]Config{
		"purge below horizon": {ReconnectHorizon: time.Hour, PurgePeriod: time.Minute},
		"max below interval":  {ReconnectInterval: time.Second, ReconnectMaxInterval: time.Millisecond},
		"quorum without size": {Strategy: StrategyStaticQuorum},
		"size without quorum": {QuorumSize: 2},
		"referee missing":     {Strategy: StrategyKeepReferee},
		"hook without OnLose": {Action: ActionHook},
		"bad expected":        {Expected: []string{"nohost"}},
		"alone not oldest":    {DownIfAlone: true},
	} {
		require.ErrorIs(t, c.Validate(), ErrInvalidConfig, name)
	}
	for _, s := range strategyNames {
		st, err := ParseStrategy(s)
		require.NoError(t, err)
		require.Equal(t, s, st.String())
	}
	_, err := ParseStrategy("keep-everything")
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestCountedSync(t *testing.T) {
	var synced bool
	var asked []string
	r := CountedSync(func(ctx context.Context) error {
		synced = true
		return errBoom
	}, func(peers []string) Exchange {
		require.True(t, synced, "the exchange is read after the sync")
		asked = peers
		return Exchange{Bytes: 40, Entries: 3, Conflicts: 2}
	})
	x, err := r.Sync(context.Background(), []string{"b@h", "c@h"})
	require.ErrorIs(t, err, errBoom)
	require.Equal(t, []string{"b@h", "c@h"}, asked)
	require.Equal(t, Exchange{Bytes: 40, Entries: 3, Conflicts: 2}, x)
}
