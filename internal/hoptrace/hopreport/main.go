// Command hopreport joins the hop records that a nodaltrace build of the
// node binary writes (internal/hoptrace) for `node bench call` and prints
// the median of each hop of the round trip:
//
//	go build -tags nodaltrace -o /tmp/node-trace ./cmd/node
//	mkdir -p /tmp/hops && NODAL_HOPTRACE=/tmp/hops /tmp/node-trace bench call --duration 2s
//	go run ./internal/hoptrace/hopreport /tmp/hops
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nodal-go/nodal/internal/hoptrace"
)

type rec struct {
	mode       int
	cpuD, cpuW int // the CPUs the delivery and the wake ran on
	t          [hoptrace.NumHops]int64
}

type point struct {
	callee bool
	hop    hoptrace.Hop
}

// chain is the round trip in order: caller, then callee, then caller. A
// write's end is not in it: loopback hands the bytes over inside the
// write, so the peer's read often returns before the writer's write does;
// the write's own length is printed apart (sideHops).
var chain = []point{
	{false, hoptrace.CallEntry}, {false, hoptrace.Encoded}, {false, hoptrace.WriteStart},
	{true, hoptrace.ReadReturn}, {true, hoptrace.FrameRead}, {true, hoptrace.Decoded}, {true, hoptrace.Delivered},
	{true, hoptrace.Woken}, {true, hoptrace.Received}, {true, hoptrace.ReplyEntry}, {true, hoptrace.Encoded},
	{true, hoptrace.WriteStart},
	{false, hoptrace.ReadReturn}, {false, hoptrace.FrameRead}, {false, hoptrace.Decoded}, {false, hoptrace.Delivered},
	{false, hoptrace.Woken}, {false, hoptrace.Received}, {false, hoptrace.CallReturn},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hopreport DIR")
		os.Exit(2)
	}
	files, _ := filepath.Glob(filepath.Join(os.Args[1], "hops-*.txt"))
	caller, callee := map[uint64]rec{}, map[uint64]rec{}
	for _, f := range files {
		if err := read(f, caller, callee); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var deltas [][]float64 = make([][]float64, len(chain))
	var totals []float64
	var writes [2][]float64
	modes := [2][4]int{}
	sameCPU := [2]int{}
	skipped := 0
	var tailModes [][2]int // each kept round trip's wait modes (caller, callee)
	for ref, c := range caller {
		s, ok := callee[ref]
		if !ok {
			skipped++
			continue
		}
		side := [2]rec{c, s}
		for i := range side {
			if side[i].mode == hoptrace.ModeNone { // no wait: seen when received
				side[i].t[hoptrace.Woken] = side[i].t[hoptrace.Received]
			}
		}
		at := func(p point) int64 {
			if p.callee {
				return side[1].t[p.hop]
			}
			return side[0].t[p.hop]
		}
		// The stamps that order the two processes must be in order, and
		// every stamp inside the call (else a slot is another frame's).
		start, end := at(chain[0]), at(chain[len(chain)-1])
		ok = true
		for _, p := range chain {
			if v := at(p); v < start || v > end {
				ok = false
			}
		}
		for _, k := range []int{3, 12} { // the reads after the writes
			if at(chain[k]) < at(chain[k-1]) {
				ok = false
			}
		}
		if !ok {
			skipped++
			continue
		}
		for i := range side {
			if side[i].mode == hoptrace.ModeSpin && side[i].cpuD == side[i].cpuW {
				sameCPU[i]++
			}
		}
		modes[0][c.mode]++
		modes[1][s.mode]++
		for i := 1; i < len(chain); i++ {
			deltas[i] = append(deltas[i], float64(at(chain[i])-at(chain[i-1]))/1e3)
		}
		tailModes = append(tailModes, [2]int{c.mode, s.mode})
		for i, sd := range side {
			if w := sd.t[hoptrace.WriteEnd] - sd.t[hoptrace.WriteStart]; w >= 0 {
				writes[i] = append(writes[i], float64(w)/1e3)
			}
		}
		totals = append(totals, float64(end-start)/1e3)
	}
	if len(totals) == 0 {
		fmt.Println("no complete round trips")
		return
	}
	fmt.Printf("round trips %d (skipped %d), total p50 %.1f us p90 %.1f us\n", len(totals), skipped, q(totals, .5), q(totals, .9))
	// The slowest 1 %: where their time goes (each hop's mean over them).
	p99 := q(totals, .99)
	var tail []int
	for j, t := range totals {
		if t >= p99 {
			tail = append(tail, j)
		}
	}
	fmt.Printf("%-34s %8s %8s %8s %9s\n", "hop", "p50_us", "p90_us", "mean_us", "p99tail")
	sum := 0.0
	for i := 1; i < len(chain); i++ {
		m := mean(deltas[i])
		sum += m
		tm := 0.0
		for _, j := range tail {
			tm += deltas[i][j] / float64(len(tail))
		}
		fmt.Printf("%-34s %8.2f %8.2f %8.2f %9.2f\n", name(chain[i-1])+" -> "+name(chain[i]), q(deltas[i], .5), q(deltas[i], .9), m, tm)
	}
	var tailParked [2]int
	for _, j := range tail {
		for i := range tailParked {
			if tailModes[j][i] == hoptrace.ModeParked {
				tailParked[i]++
			}
		}
	}
	fmt.Printf("p99tail: the %d round trips at or above the p99 (%.1f us): caller parked in %d, callee in %d\n", len(tail), p99, tailParked[0], tailParked[1])
	fmt.Printf("sum of means %.1f us; mean total %.1f us\n", sum, mean(totals))
	for i, s := range []string{"caller", "callee"} {
		if len(writes[i]) > 0 {
			fmt.Printf("%s write syscall (inside the hop after write_start): p50 %.2f us p90 %.2f us\n", s, q(writes[i], .5), q(writes[i], .9))
		}
	}
	for i, s := range []string{"caller", "callee"} {
		fmt.Printf("%s saw its message: before waiting %d, by spin %d (%d on the deliverer's CPU), after a yield %d, woken from park %d\n",
			s, modes[i][0], modes[i][1], sameCPU[i], modes[i][2], modes[i][3])
	}
}

func name(p point) string {
	if p.callee {
		return "S." + hoptrace.Names[p.hop]
	}
	return "C." + hoptrace.Names[p.hop]
}

func read(path string, caller, callee map[uint64]rec) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3+int(hoptrace.NumHops) {
			continue
		}
		ref, _ := strconv.ParseUint(fs[1], 10, 64)
		var r rec
		m, _ := strconv.Atoi(fs[2])
		r.mode, r.cpuD, r.cpuW = m%4, m/4/16, m/4%16
		for i := range r.t {
			r.t[i], _ = strconv.ParseInt(fs[3+i], 10, 64)
		}
		if fs[0] == "caller" {
			caller[ref] = r
		} else {
			callee[ref] = r
		}
	}
	return sc.Err()
}

func q(v []float64, f float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(int(f*float64(len(s))), len(s)-1)]
}

func mean(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t / float64(len(v))
}
