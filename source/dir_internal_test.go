package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
)

// TestDirUnreadableSubdirectory makes one directory fail to read the way an
// unreadable one does (chmod cannot do it when the tests run as root): the
// error is yielded, the entries read before it are listed, and the listing
// goes on.
func TestDirUnreadableSubdirectory(t *testing.T) {
	root := t.TempDir()
	for _, k := range []string{"a", "locked/x", "locked/y", "z"} {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, partial := range []bool{false, true} {
		d, err := Dir(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.readDir = func(p string) ([]os.DirEntry, error) {
			des, err := os.ReadDir(p)
			if filepath.Base(p) != "locked" || err != nil {
				return des, err
			}
			if !partial {
				des = nil
			}
			return des[:min(len(des), 1)], &fs.PathError{Op: "readdirent", Path: p, Err: syscall.EACCES}
		}
		var keys []string
		var errs []error
		for obj, err := range d.Objects(context.Background()) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			keys = append(keys, obj.Name.Key)
		}
		want := []string{"a", "z"}
		if partial {
			want = []string{"a", "locked/x", "z"}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("partial=%v: keys %q, want %q", partial, keys, want)
		}
		if len(errs) != 1 || !errors.Is(errs[0], insitu.PermissionDenied) {
			t.Errorf("partial=%v: errors %v, want one PermissionDenied", partial, errs)
		}
	}
}
