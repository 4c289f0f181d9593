package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd if this process dies first, so
// a crashed demo or bench leaves no node behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
