//go:build !unix

package seaweedfstest

import (
	"os"
	"os/exec"
)

type signal int

const (
	sigTerm signal = iota
	sigKill
)

func setProcAttr(*exec.Cmd) {}

// signal kills the process: without process groups and SIGTERM, Kill is
// all there is.
func (p *proc) signal(signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(os.Kill)
	}
}
