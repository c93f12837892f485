package source

import (
	"io/fs"
	"os"
	"path/filepath"
)

// fileStat is what a listing needs to know of a file.
type fileStat struct {
	size    int64
	mtime   int64 // nanoseconds since 1970
	regular bool
}

// statOf returns the fileStat of fi.
func statOf(fi fs.FileInfo) fileStat {
	return fileStat{size: fi.Size(), mtime: fi.ModTime().UnixNano(), regular: fi.Mode().IsRegular()}
}

// lstatPath stats dir/name without following a final link.
func lstatPath(dir, name string) (fileStat, error) {
	fi, err := os.Lstat(filepath.Join(dir, name))
	if err != nil {
		return fileStat{}, err
	}
	return statOf(fi), nil
}
