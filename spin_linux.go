package nodal

import "syscall"

// spinSupported says whether spin can yield the OS thread.
const spinSupported = true

// osYield gives the CPU to another runnable thread, if any (sched_yield).
func osYield() { _, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
