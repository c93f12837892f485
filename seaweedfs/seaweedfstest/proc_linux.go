package seaweedfstest

import "syscall"

// setDeathSignal has the kernel kill a weed process if the process that
// started it dies first, so a crashed test leaves no server behind.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
