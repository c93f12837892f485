package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// OriginAttr is the extended attribute in which a store keeps the origin
// of an object (the text of an insitu.Origin): set on the temporary file
// before the rename, so that the bytes and their origin appear together.
const OriginAttr = "user.insitu.origin"

// maxAttr is the longest attribute value ReadAttr reads; a longer one is
// read as none.
const maxAttr = 4096

// Version returns the version of the file fi describes, as insitu.Object
// has it: its size and modification time in nanoseconds, "<size>-<ns>".
func Version(fi fs.FileInfo) string {
	return VersionOf(fi.Size(), fi.ModTime().UnixNano())
}

// VersionOf returns the version of a file of size bytes modified at mtime
// (nanoseconds since 1970), as [Version] does.
func VersionOf(size, mtime int64) string {
	var b [42]byte
	v := strconv.AppendInt(b[:0], size, 10)
	v = append(v, '-')
	return string(strconv.AppendInt(v, mtime, 10))
}

// SetAttr sets the extended attribute name of the temporary file to
// value, before [File.Commit] makes it visible with the bytes. On a file
// system (or an operating system) that keeps no such attributes, or none
// of that size, the error is one that [AttrUnsupported] recognizes.
func (f *File) SetAttr(name, value string) error {
	if f.done {
		return fs.ErrClosed
	}
	return setAttr(f.f, name, value)
}

// ReadAttr returns the extended attribute attr of the regular file name
// (slash-separated, under root), or "" when the file has none or its file
// system keeps none. The file is opened without following a final
// symbolic link and without blocking, and it must be the file fi
// describes (from an earlier stat): a file replaced since, a link, a
// special file or a value over 4 KiB read as "" too. Other errors are
// returned.
func ReadAttr(root *os.Root, name string, fi fs.FileInfo, attr string) (string, error) {
	if !attrsKept {
		return "", nil
	}
	f, err := openNoFollow(root, name)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return "", nil // a link now
		}
		return "", err
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !got.Mode().IsRegular() || fi != nil && !os.SameFile(fi, got) {
		return "", nil
	}
	return FileAttr(f, attr)
}

// FileAttr returns the extended attribute attr of the open file f, or ""
// when it has none, its file system keeps none, or the value is over
// 4 KiB. Other errors are returned.
func FileAttr(f *os.File, attr string) (string, error) {
	if !attrsKept {
		return "", nil
	}
	v, err := getAttr(f, attr)
	if AttrUnsupported(err) {
		return "", nil
	}
	return v, err
}

// AttrUnsupported reports whether err says that extended attributes, or
// one of that size, cannot be kept where they were asked for.
func AttrUnsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.E2BIG) || errors.Is(err, syscall.ERANGE)
}
