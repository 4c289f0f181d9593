//go:build nodaltrace && linux && amd64

package hoptrace

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// sysGetcpu is getcpu(2) on linux/amd64, the machine the bench runs on.
const sysGetcpu = 309

// Enabled says whether the stamps are compiled in.
const Enabled = true

//go:linkname nanotime runtime.nanotime
func nanotime() int64

var (
	slots [NumHops]atomic.Int64
	mode  atomic.Int32

	mu   sync.Mutex
	out  *bufio.Writer
	file *os.File
	recs int
)

// Stamp notes that h happened now, and on which CPU.
func Stamp(h Hop) {
	slots[h].Store(nanotime())
	if h == Delivered || h == Woken {
		cpu, _, _ := syscall.RawSyscall(sysGetcpu, uintptr(unsafe.Pointer(&cpuBuf[h])), 0, 0)
		_ = cpu
		cpus[h].Store(int32(cpuBuf[h]))
	}
}

var (
	cpuBuf [NumHops]uint32
	cpus   [NumHops]atomic.Int32
)

// WakeMode notes how the owner of a mailbox saw its message (ModeSpin ...).
func WakeMode(m int) { mode.Store(int32(m)) }

// Record writes the slots as the record of side ("caller" or "callee")
// for the call with ref id ref, when NODAL_HOPTRACE names a directory.
func Record(side string, ref uint64) {
	var t [NumHops]int64
	for i := range t {
		t[i] = slots[i].Load()
	}
	m := mode.Load()
	cd, cw := cpus[Delivered].Load(), cpus[Woken].Load()
	mu.Lock()
	defer mu.Unlock()
	if out == nil {
		dir := os.Getenv("NODAL_HOPTRACE")
		if dir == "" {
			return
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("hops-%d.txt", os.Getpid())))
		if err != nil {
			return
		}
		file, out = f, bufio.NewWriterSize(f, 1<<20)
	}
	fmt.Fprintf(out, "%s %d %d", side, ref, m+4*(cd*16+cw))
	for _, v := range t {
		fmt.Fprintf(out, " %d", v)
	}
	out.WriteByte('\n')
	if recs++; recs%4096 == 0 {
		_ = out.Flush()
	}
}

// Flush writes out the records kept so far.
func Flush() {
	mu.Lock()
	defer mu.Unlock()
	if out != nil {
		_ = out.Flush()
		_ = file.Sync()
	}
}
