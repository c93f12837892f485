//go:build !unix

package s3test

import (
	"os"
	"os/exec"
)

const syscallKill = 1

func setProcAttr(*exec.Cmd) {}

// stop kills the server; without process groups, Kill is all there is.
func stop(cmd *exec.Cmd, _ int) {
	if cmd.Process != nil {
		cmd.Process.Signal(os.Kill)
	}
}
