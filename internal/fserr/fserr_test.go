package fserr_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/fserr"
)

func TestCode(t *testing.T) {
	pe := func(errno syscall.Errno) error { return &fs.PathError{Op: "open", Path: "/x", Err: errno} }
	for _, tc := range []struct {
		err  error
		want insitu.Code
	}{
		{nil, insitu.Unknown},
		{pe(syscall.ENOENT), insitu.NotFound},
		{pe(syscall.ENOTDIR), insitu.NotFound},
		{pe(syscall.EISDIR), insitu.NotFound},
		{pe(syscall.EACCES), insitu.PermissionDenied},
		{pe(syscall.EPERM), insitu.PermissionDenied},
		{pe(syscall.EROFS), insitu.PermissionDenied},
		{pe(syscall.ELOOP), insitu.PermissionDenied},
		{pe(syscall.ENAMETOOLONG), insitu.InvalidArgument},
		{pe(syscall.ENOSPC), insitu.Unavailable},
		{pe(syscall.EDQUOT), insitu.Unavailable},
		{pe(syscall.EMFILE), insitu.Unavailable},
		{pe(syscall.ENFILE), insitu.Unavailable},
		{pe(syscall.EAGAIN), insitu.Unavailable},
		{pe(syscall.EINTR), insitu.Unavailable},
		{pe(syscall.EIO), insitu.Internal},
		{pe(syscall.EEXIST), insitu.Internal},
		{syscall.ENOSPC, insitu.Unavailable},
		{fmt.Errorf("writing: %w", pe(syscall.ENOSPC)), insitu.Unavailable},
		{fs.ErrNotExist, insitu.NotFound},
		{fs.ErrPermission, insitu.PermissionDenied},
		{fs.ErrInvalid, insitu.InvalidArgument},
		{context.Canceled, insitu.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), insitu.DeadlineExceeded},
		{&fs.PathError{Op: "openat", Path: "a/b", Err: errors.New("path escapes from parent")}, insitu.PermissionDenied},
		{insitu.Errorf(insitu.TooLarge, "big"), insitu.TooLarge},
		{errors.New("something else"), insitu.Internal},
	} {
		if got := fserr.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestCodeOfRealErrors classifies errors the os package really returns.
func TestCodeOfRealErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, enoent := os.Open(filepath.Join(dir, "missing"))
	_, enotdir := os.Open(filepath.Join(dir, "file", "below"))
	_, escape := root.Open("out/passwd")
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	_, toolong := os.Open(filepath.Join(dir, string(long)))
	for _, tc := range []struct {
		what string
		err  error
		want insitu.Code
	}{
		{"missing file", enoent, insitu.NotFound},
		{"file on the path", enotdir, insitu.NotFound},
		{"link out of a root", escape, insitu.PermissionDenied},
		{"name too long", toolong, insitu.InvalidArgument},
	} {
		if got := fserr.Code(tc.err); got != tc.want {
			t.Errorf("%s: Code(%v) = %v, want %v", tc.what, tc.err, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	name := insitu.Name{Bucket: "b", Key: "k"}
	if fserr.Wrap(name, nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	err := fserr.Wrap(name, &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOSPC})
	var ie *insitu.Error
	if !errors.As(err, &ie) || ie.Code != insitu.Unavailable || ie.Name != name || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Wrap = %#v", err)
	}
	coded := insitu.Errorf(insitu.TooLarge, "big")
	if fserr.Wrap(name, coded) != coded {
		t.Error("Wrap rewrapped an error that had a code")
	}
}

func ExampleCode() {
	_, err := os.Open("/no/such/file")
	fmt.Println(fserr.Code(err))
	// Output: not_found
}
