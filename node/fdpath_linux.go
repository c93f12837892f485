package node

import (
	"fmt"
	"os"
)

// fdPath returns a path that names f itself, /proc/<pid>/fd/<n>: opening
// it opens the same file, whatever its name leads to now, from this
// process and from the processes it starts (which /proc/self would not
// do), for as long as f is open.
func fdPath(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	var p string
	rc.Control(func(fd uintptr) { p = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd) })
	return p
}
