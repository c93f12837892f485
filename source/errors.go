package source

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/fserr"
)

// fileError wraps the error of a file operation on the object name; err,
// an *fs.PathError, already names the file and the operation. The code is
// the one every package gives a file-system error (internal/fserr).
func fileError(name insitu.Name, err error) error {
	return fserr.Wrap(name, err)
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

// rootError wraps the error of reading the source's root directory. A file
// on the way to the root makes the root InvalidArgument, not NotFound.
func rootError(err error) error {
	code := fserr.Code(err)
	if errors.Is(err, syscall.ENOTDIR) {
		code = insitu.InvalidArgument
	}
	return &insitu.Error{Code: code, Msg: "source root", Err: err}
}

// dirError wraps the error of reading a directory or an entry inside the
// tree; err, an *fs.PathError, names the path.
func dirError(err error) error {
	return &insitu.Error{Code: fserr.Code(err), Msg: "listing", Err: err}
}
