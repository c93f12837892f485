package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/transform/wav"
	"github.com/minio/minio-go/v7"
)

// wavSpec is what every output must be.
type wavSpec struct{ channels, rate int }

// outputs is where a configuration's runs put their outputs: a directory
// tree, a bucket of the cluster, a bucket of the S3 server. Each run gets
// a new dst, checked and removed after the run.
type outputs interface {
	// prepare makes dst ready to receive outputs.
	prepare(ctx context.Context, dst string) error
	// check reads every output in dst and returns the XXH64 of each, by
	// key. Anything that is not a valid WAV of spec, or is stored where
	// it should not be, is an error.
	check(ctx context.Context, dst string, spec wavSpec) (map[string]uint64, error)
	// remove deletes dst and its outputs.
	remove(ctx context.Context, dst string) error
}

// checkWAV validates the WAV of size bytes r reads and returns its XXH64.
func checkWAV(r io.ReaderAt, size int64, spec wavSpec) (uint64, error) {
	h, err := wav.Parse(r, size)
	if err != nil {
		return 0, err
	}
	if h.Format != wav.FormatPCM || h.BitsPerSample != 16 || h.Channels != spec.channels || h.SampleRate != spec.rate {
		return 0, fmt.Errorf("%v, want 16-bit PCM, %d ch, %d Hz", h, spec.channels, spec.rate)
	}
	if h.DataOffset+h.DataSize != size {
		return 0, fmt.Errorf("the samples end at byte %d of %d", h.DataOffset+h.DataSize, size)
	}
	if h.Frames() == 0 {
		return 0, errors.New("no samples")
	}
	d := xxhash.New()
	if _, err := io.Copy(d, io.NewSectionReader(r, 0, size)); err != nil {
		return 0, err
	}
	return d.Sum64(), nil
}

// checkFile validates the WAV file at path.
func checkFile(path string, spec wavSpec) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return checkWAV(f, fi.Size(), spec)
}

// walkFiles calls fn with the key ("/"-separated path under root) and the
// path of every file under root. A missing root holds nothing.
func walkFiles(ctx context.Context, root string, fn func(key, path string) error) error {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		return fn(filepath.ToSlash(rel), path)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// dirOutputs are the floor's: files under root/dst.
type dirOutputs struct{ root string }

func (o dirOutputs) prepare(_ context.Context, dst string) error {
	return os.MkdirAll(filepath.Join(o.root, dst), 0o755)
}

func (o dirOutputs) check(ctx context.Context, dst string, spec wavSpec) (map[string]uint64, error) {
	sums := map[string]uint64{}
	err := walkFiles(ctx, filepath.Join(o.root, dst), func(key, path string) error {
		sum, err := checkFile(path, spec)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		sums[key] = sum
		return nil
	})
	return sums, err
}

func (o dirOutputs) remove(_ context.Context, dst string) error {
	return os.RemoveAll(filepath.Join(o.root, dst))
}

// clusterOutputs are insitu's: the bucket dst of an embedded cluster (the
// one c returns when the outputs are checked), read straight from the
// nodes' stores (<node dir>/<bucket>/<key>), where each output must be on
// the node that owns its name.
type clusterOutputs struct{ c func() *nodetest.Cluster }

func (clusterOutputs) prepare(context.Context, string) error { return nil }

func (o clusterOutputs) check(ctx context.Context, dst string, spec wavSpec) (map[string]uint64, error) {
	sums := map[string]uint64{}
	c := o.c()
	m := c.Map()
	for _, n := range c.Nodes() {
		err := walkFiles(ctx, filepath.Join(n.Dir(), dst), func(key, path string) error {
			name := insitu.Name{Bucket: dst, Key: key}
			if owner := m.Owner(name); owner.ID != n.ID() {
				return fmt.Errorf("%s is stored on %s, but its owner is %s", name, n.ID(), owner.ID)
			}
			if _, dup := sums[key]; dup {
				return fmt.Errorf("%s is stored twice", name)
			}
			sum, err := checkFile(path, spec)
			if err != nil {
				return fmt.Errorf("%s on %s: %w", name, n.ID(), err)
			}
			sums[key] = sum
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return sums, nil
}

func (o clusterOutputs) remove(_ context.Context, dst string) error {
	var errs []error
	for _, n := range o.c().Nodes() {
		errs = append(errs, os.RemoveAll(filepath.Join(n.Dir(), dst)))
	}
	return errors.Join(errs...)
}

// s3Outputs are the client-side baseline's: the bucket dst of the S3
// server, read back through S3.
type s3Outputs struct{ s3 *s3test.Server }

func (o s3Outputs) prepare(ctx context.Context, dst string) error {
	return o.s3.Client.MakeBucket(ctx, dst, minio.MakeBucketOptions{Region: s3test.Region})
}

func (o s3Outputs) check(ctx context.Context, dst string, spec wavSpec) (map[string]uint64, error) {
	sums := map[string]uint64{}
	var buf bytes.Buffer
	for info := range o.s3.Client.ListObjectsIter(ctx, dst, minio.ListObjectsOptions{Recursive: true}) {
		if info.Err != nil {
			return nil, info.Err
		}
		if strings.HasSuffix(info.Key, "/") {
			continue // a folder marker, not an object
		}
		obj, err := o.s3.Client.GetObject(ctx, dst, info.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		buf.Reset()
		_, err = io.Copy(&buf, obj)
		obj.Close()
		if err != nil {
			return nil, fmt.Errorf("s3://%s/%s: %w", dst, info.Key, err)
		}
		sum, err := checkWAV(bytes.NewReader(buf.Bytes()), int64(buf.Len()), spec)
		if err != nil {
			return nil, fmt.Errorf("s3://%s/%s: %w", dst, info.Key, err)
		}
		sums[info.Key] = sum
	}
	return sums, nil
}

func (o s3Outputs) remove(ctx context.Context, dst string) error {
	objs := o.s3.Client.ListObjectsIter(ctx, dst, minio.ListObjectsOptions{Recursive: true})
	results, err := o.s3.Client.RemoveObjectsWithIter(ctx, dst, objs, minio.RemoveObjectsOptions{})
	if err != nil {
		return err
	}
	for r := range results {
		if r.Err != nil {
			return fmt.Errorf("s3://%s/%s: %w", dst, r.ObjectName, r.Err)
		}
	}
	return o.s3.Client.RemoveBucket(ctx, dst)
}
