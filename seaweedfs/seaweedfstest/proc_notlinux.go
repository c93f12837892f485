//go:build unix && !linux

package seaweedfstest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
