package nodal

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func nodeNameGen() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		name := rapid.StringMatching(`[a-zA-Z0-9_-]{1,12}`).Draw(t, "name")
		host := rapid.StringMatching(`[a-z0-9_-]{1,8}(\.[a-z0-9_-]{1,8}){0,3}`).Draw(t, "host")
		return name + "@" + host
	})
}

// Pids print like Erlang's <node.id.creation> and parse back, long names
// (hosts with dots) included.
func TestPidStringParseRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := Pid{
			Node:        nodeNameGen().Draw(t, "node"),
			ID:          rapid.Uint64().Draw(t, "id"),
			Incarnation: rapid.Uint64().Draw(t, "inc"),
		}
		got, err := ParsePid(p.String())
		if err != nil || got != p {
			t.Fatalf("ParsePid(%q) = %v, %v", p.String(), got, err)
		}
		r := Ref(p)
		gr, err := ParseRef(r.String())
		if err != nil || gr != r {
			t.Fatalf("ParseRef(%q) = %v, %v", r.String(), gr, err)
		}
	})
}

func TestPidFormat(t *testing.T) {
	p := Pid{Node: "a@host", ID: 42, Incarnation: 3}
	require.Equal(t, "<a@host.42.3>", p.String())
	require.Equal(t, "#Ref<a@host.17.3>", Ref{Node: "a@host", ID: 17, Incarnation: 3}.String())
	require.True(t, Pid{}.IsZero())
	require.False(t, p.IsZero())
	require.True(t, Ref{}.IsZero())
}

func TestParsePidRejectsMalformed(t *testing.T) {
	for _, s := range []string{
		"", "<>", "a@host.1.2", "<a@host.1.2", "<a@host.1>", "<a@host..1.2>", "<a@host.x.2>",
		"<a@host.1.18446744073709551616>", "<host.1.2>", "<a@host.-1.2>", "<@host.1.2>",
	} {
		_, err := ParsePid(s)
		require.ErrorIs(t, err, ErrBadPid, s)
	}
	for _, s := range []string{"", "#Ref<>", "<a@host.1.2>", "#Ref<a@host.1>"} {
		_, err := ParseRef(s)
		require.ErrorIs(t, err, ErrBadRef, s)
	}
}

func TestValidateNodeName(t *testing.T) {
	for _, ok := range []string{"a@b", "nonode@nohost", "node-1@host.example.com", "a_b@10.0.0.1"} {
		require.NoError(t, ValidateNodeName(ok), ok)
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	long[1] = '@'
	for _, bad := range []string{"", "ab", "a@", "@b", "a@b@c", "a.b@c", "a@.b", "a@b.", "a@b c", string(long)} {
		require.ErrorIs(t, ValidateNodeName(bad), ErrBadNodeName, bad)
	}
}

func TestPidCompare(t *testing.T) {
	a := Pid{Node: "a@h", ID: 2, Incarnation: 1}
	require.Equal(t, 0, a.Compare(a))
	require.Equal(t, -1, a.Compare(Pid{Node: "b@h", ID: 1}))
	require.Equal(t, 1, a.Compare(Pid{Node: "a@h", ID: 1, Incarnation: 9}))
	require.Equal(t, -1, a.Compare(Pid{Node: "a@h", ID: 2, Incarnation: 2}))
}

// BenchmarkValidateNodeName is the check every service frame's send makes
// (an rpc call and its reply each), for a name with an IPv4 host.
func BenchmarkValidateNodeName(b *testing.B) {
	for b.Loop() {
		if err := ValidateNodeName("bench-b@127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}
