package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// groupSize is how many files the grouped floor commits at once.
const groupSize = 64

// groupedFloor is writeFloor with its syncs grouped, as a store could do
// without weakening the all-or-nothing guarantee: each worker writes up to
// groupSize temporary files unsynced, then makes them durable with one
// syncfs(2), renames each to its name (so each file still appears whole or
// not at all), and fsyncs each directory it renamed into once; a file
// counts as stored only after that. syncfs writes back the whole file
// system, so on a busy shared disk it also pays for others' dirty data.
func groupedFloor(ctx context.Context, root, out string, workers int, r *result) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	fsFD, err := unix.Open(out, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fsFD)
	var made sync.Map
	var seq atomic.Int64
	type pending struct{ tmp, dst string }
	groups := make([][]pending, workers)
	// commit makes a worker's group durable and visible.
	commit := func(g []pending) error {
		if len(g) == 0 {
			return nil
		}
		if err := unix.Syncfs(fsFD); err != nil {
			return err
		}
		dirs := map[string]bool{}
		for _, p := range g {
			if err := os.Rename(p.tmp, p.dst); err != nil {
				return err
			}
			dirs[filepath.Dir(p.dst)] = true
		}
		for d := range dirs {
			f, err := os.Open(d)
			if err != nil {
				return err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	err = fanOut(ctx, root, workers, r, func(w int, rel string, buf []byte) (int64, error) {
		b, err := readAll(filepath.Join(root, rel), buf)
		if err != nil {
			return 0, err
		}
		dst := filepath.Join(out, rel)
		dir := filepath.Dir(dst)
		if _, ok := made.Load(dir); !ok {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return 0, err
			}
			made.Store(dir, true)
		}
		tmp := filepath.Join(dir, ".tmp-"+strconv.FormatInt(seq.Add(1), 10))
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return 0, err
		}
		groups[w] = append(groups[w], pending{tmp, dst})
		if len(groups[w]) == groupSize {
			if err := commit(groups[w]); err != nil {
				return 0, err
			}
			groups[w] = groups[w][:0]
		}
		return int64(len(b)), nil
	})
	if err != nil {
		return err
	}
	// What is left of each group; its files count once it is committed.
	for _, g := range groups {
		if err := commit(g); err != nil {
			return err
		}
	}
	return nil
}
