package p2p

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// event is what a recorder saw, in order.
type event struct {
	Kind   string // "up", "frame", "down"
	Node   string
	Inc    uint64
	Data   string
	Reason error
}

func (e event) String() string {
	switch e.Kind {
	case "frame":
		return fmt.Sprintf("frame %s %q", e.Node, e.Data)
	case "down":
		return fmt.Sprintf("down %s: %v", e.Node, e.Reason)
	}
	return e.Kind + " " + e.Node
}

// recorder is a Handler that records every call and checks the ordering
// contract per node as it goes.
type recorder struct {
	mu     sync.Mutex
	events []event
	up     map[string]bool
	errs   []string
}

func newRecorder() *recorder { return &recorder{up: map[string]bool{}} }

func (r *recorder) NodeUp(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up[p.Name] {
		r.errs = append(r.errs, "node up twice without node down: "+p.Name)
	}
	r.up[p.Name] = true
	r.events = append(r.events, event{Kind: "up", Node: p.Name, Inc: p.Incarnation})
}

func (r *recorder) Frame(p Peer, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up[p.Name] {
		r.errs = append(r.errs, "frame before node up: "+p.Name)
	}
	r.events = append(r.events, event{Kind: "frame", Node: p.Name, Inc: p.Incarnation, Data: string(data)})
}

func (r *recorder) NodeDown(p Peer, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up[p.Name] {
		r.errs = append(r.errs, "node down without node up: "+p.Name)
	}
	r.up[p.Name] = false
	r.events = append(r.events, event{Kind: "down", Node: p.Name, Inc: p.Incarnation, Reason: reason})
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// of returns the events about node, in order.
func (r *recorder) of(node string) []event {
	var out []event
	for _, e := range r.snapshot() {
		if e.Node == node {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) frames(node string) []string {
	var out []string
	for _, e := range r.of(node) {
		if e.Kind == "frame" {
			out = append(out, e.Data)
		}
	}
	return out
}

func (r *recorder) isUp(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up[node]
}

func (r *recorder) downs(node string) []error {
	var out []error
	for _, e := range r.of(node) {
		if e.Kind == "down" {
			out = append(out, e.Reason)
		}
	}
	return out
}

func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs, "handler contract violations")
}

// waitUntil polls cond until it holds or timeout passes (fake time in a
// synctest bubble, real time outside). It is a bound on a wait, not a
// timing assertion.
func waitUntil(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stopAll(t testing.TB, hs ...*Host) {
	t.Helper()
	for _, h := range hs {
		if h == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.Stop(ctx)
		cancel()
		require.NoError(t, err)
	}
}

func peerNames(ps []Peer) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func memberNames(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// logCapture collects log lines written through go-log.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logCapture) contains(s string) bool {
	return l.count(s) > 0
}

// waitFor waits until a captured line contains s, and fails the test
// with what was captured if none does within 10 s. A line reaches the
// capture through a pipe, after the code that logs it has moved on (to a
// counter the test may have seen already).
func (l *logCapture) waitFor(t testing.TB, s, what string) {
	t.Helper()
	waitUntil(t, 10*time.Second, func() bool { return l.contains(s) }, "%s: a log line with %q; got %s", what, s, logLines{l})
}

// logLines formats a capture when a failure message is printed.
type logLines struct{ l *logCapture }

func (w logLines) String() string { return w.l.all() }

func (l *logCapture) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ln := range l.lines {
		if strings.Contains(ln, s) {
			n++
		}
	}
	return n
}

func (l *logCapture) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

func isReason(err, target error) bool { return errors.Is(err, target) }

// recvWithin receives from ch, failing the test after d (fake time in a
// synctest bubble): a hang guard with a message, not a timing assertion.
func recvWithin[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
	var zero T
	return zero
}
