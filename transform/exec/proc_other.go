//go:build !unix

package exec

import "os/exec"

// newGroup does nothing where there are no process groups.
func newGroup(*exec.Cmd) {}

// killGroup kills the process alone where there are no process groups: its
// children may survive it.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
