//go:build unix

package s3test

import (
	"os/exec"
	"syscall"
)

const syscallKill = syscall.SIGKILL

// setProcAttr puts the server in a process group of its own, so that stop
// reaches everything it started.
func setProcAttr(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setDeathSignal(cmd.SysProcAttr)
}

// stop sends sig to the server's process group.
func stop(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, sig)
	}
}
