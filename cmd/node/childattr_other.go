//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the caller still kills the child when it ends.
func dieWithParent(*exec.Cmd) {}
