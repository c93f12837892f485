// Package fserr is the one classifier of file-system errors into insitu
// codes, used by every package that reads or writes files for an object:
// the node's store, sink.Dir, source.Dir and a transform server's
// local-file input. One table, so that the same errno means the same code
// (and the same retry decision) wherever it happens.
package fserr

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
)

// Code returns the insitu code of a file-system error err:
//
//   - NotFound: ENOENT, ENOTDIR (a file where a directory was expected on
//     the way to the object), EISDIR (a directory where the object was
//     expected);
//   - PermissionDenied: EACCES, EPERM, EROFS (a read-only file system
//     refuses every write, as a permission does), ELOOP (a symbolic link
//     refused by O_NOFOLLOW) and a path that escapes an os.Root;
//   - InvalidArgument: ENAMETOOLONG (the name cannot be stored);
//   - Unavailable: ENOSPC, EDQUOT, EMFILE, ENFILE, EAGAIN, EINTR (the store
//     is out of space, quota or descriptors for now: a retry later can
//     succeed, so the runner retries them);
//   - Canceled, DeadlineExceeded: the context errors;
//   - Internal: every other error (EIO among them): the store failed in a
//     way the caller cannot fix.
//
// A nil err has the code Unknown, as for [insitu.CodeOf].
func Code(err error) insitu.Code {
	if err == nil {
		return insitu.Unknown
	}
	var ie *insitu.Error
	if errors.As(err, &ie) && ie.Code != insitu.Unknown {
		return ie.Code
	}
	if c := insitu.CodeOf(err); c == insitu.Canceled || c == insitu.DeadlineExceeded {
		return c
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR:
			return insitu.NotFound
		case syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ELOOP:
			return insitu.PermissionDenied
		case syscall.ENAMETOOLONG:
			return insitu.InvalidArgument
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.EINTR:
			return insitu.Unavailable
		}
		return insitu.Internal
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return insitu.NotFound
	case errors.Is(err, fs.ErrPermission), atomicfile.Escapes(err):
		return insitu.PermissionDenied
	case errors.Is(err, fs.ErrInvalid):
		return insitu.InvalidArgument
	}
	return insitu.Internal
}

// Wrap returns err as an *insitu.Error about name with [Code]'s code; err,
// an *fs.PathError as a rule, already names the file and the operation. A
// nil err stays nil; an *insitu.Error with a code is returned as it is.
func Wrap(name insitu.Name, err error) error {
	if err == nil {
		return nil
	}
	var ie *insitu.Error
	if errors.As(err, &ie) && ie.Code != insitu.Unknown {
		return err
	}
	return &insitu.Error{Code: Code(err), Name: name, Err: err}
}
