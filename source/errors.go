package source

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/insitu-data/insitu"
)

// codeOf classifies a file system error.
func codeOf(err error) insitu.Code {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return insitu.NotFound
	case errors.Is(err, fs.ErrPermission):
		return insitu.PermissionDenied
	case errors.Is(err, syscall.ENAMETOOLONG):
		return insitu.InvalidArgument
	}
	return insitu.Unknown
}

// fileError wraps the error of a file operation on the object name; err,
// an *fs.PathError, already names the file and the operation.
func fileError(name insitu.Name, err error) error {
	return &insitu.Error{Code: codeOf(err), Name: name, Err: err}
}

// notRegular is the NotFound error for a path that exists but is not a
// regular file, so not an object.
func notRegular(name insitu.Name, p string, fi fs.FileInfo) error {
	what := "not a regular file"
	if fi.IsDir() {
		what = "a directory"
	}
	return &insitu.Error{Code: insitu.NotFound, Name: name, Msg: fmt.Sprintf("%q is %s, not an object", p, what)}
}

// rootError wraps the error of reading the source's root directory.
func rootError(root string, err error) error {
	code := codeOf(err)
	if errors.Is(err, syscall.ENOTDIR) {
		code = insitu.InvalidArgument // a file on the way to the root
	}
	return &insitu.Error{Code: code, Msg: "source root", Err: err}
}

// dirError wraps the error of reading a directory or an entry inside the
// tree; err, an *fs.PathError, names the path.
func dirError(err error) error {
	return &insitu.Error{Code: codeOf(err), Msg: "listing", Err: err}
}
