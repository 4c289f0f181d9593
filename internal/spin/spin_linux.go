package spin

import "syscall"

// Supported says whether spin can yield the OS thread.
const Supported = true

// Yield gives the CPU to another runnable thread, if any (sched_yield).
func Yield() { _, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
