package node

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
)

// storeDir is the store's directory held open for a run of reads (one
// batch GET), so that each object opens with one openat2(2) beneath it
// rather than through the walks of [os.Root] (see [storeDir.open]).
type storeDir struct {
	f   *os.File // the store's directory, opened through the node's root
	fd  int      // f's descriptor, valid while f is open
	off atomic.Bool
}

// openStoreDir opens the node's store directory for fast opens; the
// caller closes it. A nil *storeDir (the directory could not be opened)
// opens nothing fast.
func (n *Node) openStoreDir() *storeDir {
	f, err := n.root.Open(".")
	if err != nil {
		return nil
	}
	d := &storeDir{f: f, fd: -1}
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { d.fd = int(fd) })
	}
	if err != nil || d.fd < 0 {
		f.Close()
		return nil
	}
	return d
}

// close closes the directory; d may be nil.
func (d *storeDir) close() {
	if d != nil {
		d.f.Close()
	}
}

// open opens name's object as stored, for a batch, in five system calls:
// openat2 beneath the store's directory (no link followed; O_NONBLOCK so
// that a FIFO does not block), fstat, fgetxattr of the origin, and, for
// an object of at most small bytes, one read and a close (its bytes come
// back whole in data); a larger one comes back open as body. The object's
// mtime is that of the open file. ok is false when this path cannot answer
// for certain (no openat2, a link, not a regular file, any error, a size
// that changed while it was read): the caller then takes the usual path,
// which gives the exact object or error. The caller has checked that the
// node owns name.
func (d *storeDir) open(name insitu.Name, small int64) (o opened, ok bool) {
	if d == nil || d.off.Load() {
		return opened{}, false
	}
	// Beneath the store's directory however it is reached or moved, and
	// through no link of any kind (a name with one takes the usual path,
	// which tells which links it follows and which it refuses).
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(d.fd, relPath(name), &how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		// No openat2 (an old kernel: ENOSYS; a sandbox: EPERM), or one
		// that knows none of these flags (EINVAL, E2BIG): the rest of the
		// run goes the usual way.
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.E2BIG) {
			d.off.Store(true)
		}
		return opened{}, false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return opened{}, false
	}
	o = opened{size: st.Size, mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec))}
	o.obj.Origin = fdOrigin(fd, name.Key)
	if st.Size > small {
		o.body = os.NewFile(uintptr(fd), relPath(name))
		return o, true
	}
	defer unix.Close(fd)
	o.data = make([]byte, st.Size)
	for k := 0; k < len(o.data); {
		m, err := unix.Read(fd, o.data[k:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil || m <= 0:
			return opened{}, false // shrunk, or failed: the usual path tells
		}
		k += m
	}
	return o, true
}

// fdOrigin returns the valid origin recorded with the open file fd of
// key's object, or "".
func fdOrigin(fd int, key string) string {
	var buf [512]byte
	n, err := unix.Fgetxattr(fd, atomicfile.OriginAttr, buf[:])
	if errors.Is(err, unix.ERANGE) {
		big := make([]byte, 4096)
		n, err = unix.Fgetxattr(fd, atomicfile.OriginAttr, big)
		if err != nil || n <= 0 {
			return ""
		}
		return validOrigin(string(big[:n]), key)
	}
	if err != nil || n <= 0 {
		return "" // none (ENODATA), or a file system that keeps none
	}
	return validOrigin(string(buf[:n]), key)
}
