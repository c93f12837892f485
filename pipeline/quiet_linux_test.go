package pipeline_test

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// openPTY returns the two ends of a new pseudo-terminal: what is written to
// the terminal end can be read from the controller end.
func openPTY(t *testing.T) (controller, term *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	var unlock int32
	var n uint32
	rc, err := controller.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ioctlErr error
	rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioctlErr = e
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioctlErr = e
		}
	})
	if ioctlErr != nil {
		t.Skipf("no pseudo-terminal: %v", ioctlErr)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { term.Close() })
	return controller, term
}

// A library is quiet unless asked: with no Progress, a run writes nothing
// to stderr even when stderr is a terminal. (Not parallel: it swaps
// os.Stderr.)
func TestRunQuietOnATerminal(t *testing.T) {
	controller, term := openPTY(t)
	t.Setenv("TERM", "xterm")
	saved := os.Stderr
	os.Stderr = term
	defer func() { os.Stderr = saved }()

	rep, err := pipeline.Run(t.Context(), newMemSource(20, 100), insitu.Identity, newMemSink(),
		&pipeline.Options{ProgressInterval: time.Millisecond})
	os.Stderr = saved
	if err != nil || rep.Transformed != 20 {
		t.Fatalf("run: %v\n%s", err, rep)
	}
	// Anything the run wrote to the terminal is waiting on the controller:
	// its last progress call returned before Run did.
	if err := controller.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := controller.Read(buf)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the run wrote %q to the terminal on stderr (read error %v), want nothing", buf[:n], err)
	}
}
