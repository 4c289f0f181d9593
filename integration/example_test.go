package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nodal-go/nodal"
	"github.com/nodal-go/nodal/integration"
)

// A split test written once: three in-process nodes, n3 split from the
// others, a monitor and an RPC across the split, then the heal. The same
// body runs for real (nodes as OS processes in network namespaces, cuts
// with iptables) on integration.NewRealCluster, or on both with
// integration.RunBoth.
func Example() {
	t := &exampleT{} // in a test: the *testing.T (inside synctest.Test for a fake clock)
	defer t.cleanup()
	ctx := context.Background()
	c := integration.NewCluster(t, 3, integration.Options{})
	n1, n2, n3 := c.Name(0), c.Name(1), c.Name(2)
	echo, err := c.SpawnEcho(ctx, n3, "")
	if err != nil {
		panic(err)
	}
	w, err := c.Monitor(ctx, n1, echo)
	if err != nil {
		panic(err)
	}

	c.Partition([]string{n1, n2}, []string{n3})
	reason, _ := w.WaitDown(time.Now())
	fmt.Println("n1's monitor of the echo on n3:", reason)
	c.WaitMesh(n1, n2) // each side sees only itself
	c.WaitMesh(n3)
	_, err = c.RPC(ctx, n1, n3, "rpc.echo", "hi")
	fmt.Println("rpc n1 -> n3 fails with no connection:", errors.Is(err, nodal.ErrNoConnection))

	c.Heal() // lifts the cuts; heal/, attached to every node, reconnects them
	c.WaitMesh()
	out, err := c.RPC(ctx, n1, n3, "rpc.echo", "hi")
	fmt.Println("rpc n1 -> n3 after the heal:", string(out), err)
	// Output:
	// n1's monitor of the echo on n3: noconnection
	// rpc n1 -> n3 fails with no connection: true
	// rpc n1 -> n3 after the heal: "hi" <nil>
}

// exampleT is what the Example drives the cluster with in place of a
// *testing.T: a failure panics, cleanups run at the end.
type exampleT struct {
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Logf(string, ...any)               {}
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Skip(args ...any)                  { panic(fmt.Sprint(args...)) }
func (t *exampleT) Skipf(format string, args ...any)  { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Failed() bool                      { return false }
func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "example-")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
