package source

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// dirStat stats the files of one directory by their names, relative to an
// open descriptor of the directory: one lookup of a name instead of a walk
// of the whole path from the root of the file system for each file.
type dirStat struct {
	fd  int // -1: stat by path
	dir string
}

// openDirStat opens dir for [dirStat.lstat]; when it cannot, lstat falls
// back to the whole path.
func openDirStat(dir string) dirStat {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	return dirStat{fd: fd, dir: dir}
}

// lstat returns what listing needs of the file name in the directory,
// without following a final symbolic link.
func (d dirStat) lstat(name string) (fileStat, error) {
	if d.fd < 0 {
		return lstatPath(d.dir, name)
	}
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileStat{}, &fs.PathError{Op: "lstat", Path: filepath.Join(d.dir, name), Err: err}
		}
		break
	}
	return fileStat{size: st.Size, mtime: st.Mtim.Nano(), regular: st.Mode&unix.S_IFMT == unix.S_IFREG}, nil
}

func (d dirStat) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
	}
}
