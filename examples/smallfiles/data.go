package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
)

// filesPerDir is how many files each generated directory holds.
const filesPerDir = 1000

// inBucket is the cluster mode's input bucket.
const inBucket = "in"

// outBucketOf is the cluster mode's output bucket of run k.
func outBucketOf(k int) string { return fmt.Sprintf("out%d", k) }

// outDir is the dir mode's output directory of run k.
func outDir(c config, k int) string {
	return filepath.Join(c.data, fmt.Sprintf("out-%d-%d", os.Getpid(), k))
}

// removeOutputs removes the outputs of runs 1 … runs.
func removeOutputs(c config, runs int) {
	for k := 1; k <= runs; k++ {
		os.RemoveAll(outDir(c, k))
		for id := 1; id <= c.nodes; id++ {
			os.RemoveAll(filepath.Join(clusterDir(c), fmt.Sprintf("n%d", id), outBucketOf(k)))
		}
	}
}

// filesDir is where the n inputs of the discard or dir mode are.
func filesDir(c config, n int) string {
	return filepath.Join(c.data, fmt.Sprintf("files-%d-%d", n, c.size))
}

// clusterDir is the embedded cluster's directory (cluster.Options.Dir).
func clusterDir(c config) string {
	dir := fmt.Sprintf("cluster-%d-%d-%d", c.nodes, c.clusterN, c.clusterSz)
	if c.placement == "key" {
		dir += "-bykey" // the inputs sit on other nodes than by name
	}
	return filepath.Join(c.data, dir)
}

// placement is the cluster mode's map placement.
func placement(c config) locality.Placement {
	if c.placement == "key" {
		return locality.ByKey
	}
	return locality.ByName
}

// key is the key of file i: "d0000/f0000000".
func key(i int) string {
	return fmt.Sprintf("d%04d/f%07d", i/filesPerDir, i)
}

// content returns file i's bytes: its number as 15 digits and a newline,
// repeated to size bytes.
func content(i, size int) []byte {
	line := fmt.Appendf(nil, "%015d\n", i)
	return bytes.Repeat(line, size/len(line)+1)[:size]
}

// generate writes n files of size bytes under dir, unless a finished
// earlier run did (dir/../<base>.done).
func generate(ctx context.Context, dir string, n, size int) error {
	done := dir + ".done"
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for d := 0; d*filesPerDir < n; d++ {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%04d", d)), 0o755); err != nil {
			return err
		}
	}
	err := parallel(ctx, n, 4, func(i int) error {
		return os.WriteFile(filepath.Join(dir, key(i)), content(i, size), 0o644)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(done, nil, 0o644)
}

// seedCluster stores the cluster mode's objects on their owners, writing
// each owner's file directly (the store is a directory per node), unless a
// finished earlier run did.
func seedCluster(ctx context.Context, c config) error {
	dir := clusterDir(c)
	done := dir + ".done"
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cl, err := nodetest.Start(ctx, c.nodes, &nodetest.Options{Dir: dir, Placement: placement(c)})
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	made := map[string]bool{}
	err = parallel(ctx, c.clusterN, 4, func(i int) error {
		name := insitu.Name{Bucket: inBucket, Key: key(i)}
		p := cl.Node(cl.Map().Owner(name).ID).Path(name)
		mu.Lock()
		d := filepath.Dir(p)
		if !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				mu.Unlock()
				return err
			}
			made[d] = true
		}
		mu.Unlock()
		return os.WriteFile(p, content(i, c.clusterSz), 0o644)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(done, nil, 0o644)
}

// parallel calls f(0) … f(n-1) on k goroutines and returns the first error.
func parallel(ctx context.Context, n, k int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, k)
	for g := range k {
		wg.Go(func() {
			for i := g; i < n; i += k {
				if err := ctx.Err(); err != nil {
					errs[g] = err
					return
				}
				if err := f(i); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// check verifies what the configuration name stored, outside the timing:
// the dir modes stored every file under out (or, in the cluster mode, in
// the nodes' bucket), and every 97th is its input byte for byte. The
// discard mode stores nothing: the child's counts are its check.
func check(c config, name, out, bucket string) error {
	switch name {
	case "discard/floor", "discard/insitu":
		return nil
	case "dir/floor", "dir/grouped", "dir/insitu":
		return checkTree(out, c.dirN, c.size, func(i int) string { return filepath.Join(out, key(i)) })
	}
	// The cluster mode: outputs in each node's bucket.
	dir := clusterDir(c)
	count, total := 0, int64(0)
	for id := 1; id <= c.nodes; id++ {
		root := filepath.Join(dir, fmt.Sprintf("n%d", id), bucket)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			count++
			total += fi.Size()
			rel, _ := filepath.Rel(root, p)
			i, err := strconv.Atoi(filepath.Base(rel)[1:])
			if err != nil {
				return fmt.Errorf("unexpected output %s", p)
			}
			if i%97 == 0 {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if !bytes.Equal(b, content(i, c.clusterSz)) {
					return fmt.Errorf("output %s differs from its input", p)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if count != c.clusterN || total != int64(c.clusterN)*int64(c.clusterSz) {
		return fmt.Errorf("the nodes hold %d outputs of %d bytes in all, want %d of %d", count, total, c.clusterN, int64(c.clusterN)*int64(c.clusterSz))
	}
	return nil
}

// checkTree checks that root holds n files of size bytes and that every
// 97th, at path(i), is content(i).
func checkTree(root string, n, size int, path func(int) string) error {
	count, total := 0, int64(0)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			count++
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count != n || total != int64(n)*int64(size) {
		return fmt.Errorf("%s holds %d files of %d bytes in all, want %d of %d", root, count, total, n, int64(n)*int64(size))
	}
	for i := 0; i < n; i += 97 {
		b, err := os.ReadFile(path(i))
		if err != nil {
			return err
		}
		if !bytes.Equal(b, content(i, size)) {
			return fmt.Errorf("%s differs from its input", path(i))
		}
	}
	return nil
}
