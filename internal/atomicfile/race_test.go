package atomicfile_test

import (
	"fmt"
	"path"
	"sync"
	"testing"

	"github.com/insitu-data/insitu/internal/atomicfile"
)

// TestCreateRacesCleanup has goroutines that each write a file in the same
// deep directory, remove it and then remove the directories it leaves
// empty, as a store's deletion does: a Create that finds a directory
// removed between two of its steps (its mkdirs, or its mkdir and the
// create of the temporary file) makes it again instead of failing with
// fs.ErrNotExist.
func TestCreateRacesCleanup(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		t.Parallel()
		root, dir := openRoot(t)
		workers, rounds := 4, 1000
		if testing.Short() {
			rounds = 300
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				name := fmt.Sprintf("a/b/c/d/f%d", w)
				for i := range rounds {
					f, err := create(root, name, 0o644, &atomicfile.Options{NoSync: true})
					if err != nil {
						errs <- fmt.Errorf("round %d: Create(%s): %w", i, name, err)
						return
					}
					if err := f.Commit(); err != nil {
						errs <- fmt.Errorf("round %d: Commit(%s): %w", i, name, err)
						return
					}
					if err := root.Remove(name); err != nil {
						errs <- fmt.Errorf("round %d: Remove(%s): %w", i, name, err)
						return
					}
					for d := path.Dir(name); d != "."; d = path.Dir(d) {
						if root.Remove(d) != nil {
							break
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if left := entries(t, dir); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}
