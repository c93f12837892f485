package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Sweep removes the temporary files left under root by writers that
// crashed (kill -9, power loss) between [Create] and [File.Commit]: the
// regular files whose base name starts with [TempPrefix] and whose
// modification time is more than olderThan ago, or all of them when
// olderThan is 0. It returns how many files it removed.
//
// A temporary file of a write still in progress looks the same as a
// leftover one, so olderThan must exceed the longest write of any process
// using the tree, or be 0 only when no other writer is running.
//
// Sweep walks the whole tree through root: it never follows a symbolic
// link (a link named like a temporary file is not removed either) and
// never leaves the tree. Files and directories that disappear during the
// walk are skipped. ctx is checked before each entry; when it ends, Sweep
// returns the count so far and ctx.Err(), unwrapped. On any other error
// the walk stops and Sweep returns the count so far and the error. A
// negative olderThan is an error wrapping [fs.ErrInvalid].
func Sweep(ctx context.Context, root *os.Root, olderThan time.Duration) (removed int, err error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("atomicfile: negative age %v for a sweep: %w", olderThan, fs.ErrInvalid)
	}
	cutoff := time.Now().Add(-olderThan)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed since its parent was read
			}
			return err
		}
		if !d.Type().IsRegular() || !IsTemp(d.Name()) {
			return nil
		}
		local := filepath.FromSlash(p)
		if olderThan > 0 {
			fi, err := root.Lstat(local)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // committed or aborted since
			}
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
				return nil
			}
		}
		if err := root.Remove(local); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		removed++
		return nil
	})
	return removed, err
}
