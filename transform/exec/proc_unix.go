//go:build unix

package exec

import (
	"os/exec"
	"syscall"
)

// newGroup makes cmd start in a process group of its own.
func newGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills every process in the group of the started cmd, whose
// leader it is; it is safe to call after the leader was reaped, as the
// group's id is not reused while a member lives.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
