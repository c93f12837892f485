package s3test

import "syscall"

// setDeathSignal has the kernel kill the server if the process that
// started it dies first, so a crashed test leaves no server behind.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
