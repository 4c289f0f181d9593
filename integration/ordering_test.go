package integration

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/nodal-go/nodal"
)

// TestOrderingUnderLoad: four processes on a node in the test each send
// numbered messages to one echo on node a (an OS process) as fast as they
// can; the echo prints every message it receives, and a's stdout shows
// every sender's messages complete and in the order sent.
func TestOrderingUnderLoad(t *testing.T) {
	defer leaktest.AfterTest(t)()
	const senders, perSender = 4, 3000
	c := newCluster(t, "order-cookie")
	defer c.close()
	a := c.start("a@127.0.0.1")
	var echo pidJSON
	ctlJSON(t, a, &echo, "spawn", "echo")
	pid, err := nodal.ParsePid(echo.Pid)
	require.NoError(t, err)

	n := startTestNode(t, "t@127.0.0.1", c.cookie, a.Gossip)
	defer stopTestNode(n)
	eventually(t, func() bool { return slices.Equal(n.Nodes(), []string{"a@127.0.0.1"}) }, "t to see a")
	for s := range senders {
		_, err := n.Spawn(func(p *nodal.Process) error {
			for i := range perSender {
				p.Send(pid, fmt.Sprintf("s%d-%d", s, i))
			}
			return nil
		})
		require.NoError(t, err)
	}
	line := regexp.MustCompile(`^echo ` + regexp.QuoteMeta(echo.Pid) + ` got "s(\d+)-(\d+)"$`)
	var next [senders]int
	seen := 0
	eventually(t, func() bool {
		lines := a.Lines()
		for ; seen < len(lines); seen++ {
			m := line.FindStringSubmatch(lines[seen])
			if m == nil {
				continue
			}
			s, _ := strconv.Atoi(m[1])
			i, _ := strconv.Atoi(m[2])
			require.Equal(t, next[s], i, "sender %d: message %d arrived when %d was due", s, i, next[s])
			next[s]++
		}
		for _, v := range next {
			if v != perSender {
				return false
			}
		}
		return true
	}, "all %d messages printed by a", senders*perSender)
}
