package main

import (
	"testing"
	"time"
)

// TestVisibleLag: the k-th registration to return is visible on a node
// from that node's first sample counting more than k names, and on every
// node from the latest of those.
func TestVisibleLag(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	done := []time.Duration{ms(3), ms(1), ms(2), ms(4)} // returned in the order 1, 2, 3, 4 ms
	polls := [][]countSample{
		{{ms(2), 1}, {ms(5), 3}, {ms(9), 4}}, // b: 1st at 2, 2nd and 3rd at 5, 4th at 9
		{{ms(1), 0}, {ms(6), 2}, {ms(8), 4}}, // c: 1st and 2nd at 6, 3rd and 4th at 8
	}
	// lags, everywhere: 1st max(2-1, 6-1) = 5, 2nd max(5-2, 6-2) = 4,
	// 3rd max(5-3, 8-3) = 5, 4th max(9-4, 8-4) = 5.
	p50, p99 := visibleLag(done, polls)
	if p50 != ms(5) || p99 != ms(5) {
		t.Fatalf("p50 %v p99 %v, want 5ms and 5ms", p50, p99)
	}
	p50, p99 = visibleLag(done, polls[:1]) // b alone: 1, 3, 2, 5
	if p50 != ms(3) || p99 != ms(5) {
		t.Fatalf("b alone: p50 %v p99 %v, want 3ms and 5ms", p50, p99)
	}
}
