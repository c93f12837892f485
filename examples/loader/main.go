// Command loader iterates over a training dataset the way a trainer would,
// with insitu's loader package, and trains nothing: it starts a storage
// cluster of 3 nodes in this process, fills a bucket with generated
// samples, and reads 3 epochs of them in shuffled batches. Each sample is
// transformed on the node that stores it (a transform the nodes know by
// the name "invert", which turns every byte b into 255-b, standing for a
// decode or a normalisation): only its output crosses the network, read
// in one batch GET per owner for every 64 samples (-read-batch).
//
//	go run ./examples/loader
//	go run ./examples/loader -seed 7 -samples 20000 -size 16384 -batch 64
//	go run ./examples/loader -read-batch 1   # one GET per sample, to compare
//
// With -listing FILE, a run saves the bucket's listing in FILE, and a
// later run reads it from there instead of listing the bucket before its
// first batch (the dataset of a run is the same for the same -samples).
//
// It prints the dataset, then for each epoch a line
//
//	epoch E digest HEX samples N
//
// where HEX is a hash of the order of the samples' names and N their
// number: with the same -seed two runs print the same digests, with
// another seed other ones, and N is the dataset's size in every epoch. At
// the end it prints the time to the first batch and the samples per
// second. It exits with status 1 if a sample cannot be read or is not the
// transform's output, 2 on a usage error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/source"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// invert is the transform the nodes run on each sample: every byte b
// becomes 255-b.
var invert = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		for i := range buf[:n] {
			buf[i] = 255 - buf[i]
		}
		if _, werr := out.Write(buf[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

// sample returns the bytes stored for sample i: size bytes derived from
// i, whose first byte is i%251.
func sample(i, size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(i), 0))
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	if size > 0 {
		b[0] = byte(i % 251)
	}
	return b
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 1, "the seed of the order")
	samples := fs.Int("samples", 5000, "the number of samples of the dataset")
	size := fs.Int("size", 4096, "the size of a sample, in bytes")
	batch := fs.Int("batch", 32, "the size of a batch")
	epochs := fs.Int("epochs", 3, "the number of epochs")
	prefetch := fs.Int("prefetch", 0, "samples read ahead (0: the loader's default)")
	readBatch := fs.Int("read-batch", 0, "samples per batch GET (0: the loader's default; 1: one GET per sample)")
	listing := fs.String("listing", "", "a file of the dataset's listing: read when it exists, so that the first batch waits for no listing; else written after the run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *samples < 1 || *size < 1 || *batch < 1 || *epochs < 1 || *prefetch < 0 || *readBatch < 0 {
		fmt.Fprintln(stderr, "loader: -samples, -size, -batch and -epochs must be at least 1, and no arguments")
		return 2
	}
	if err := load(ctx, stdout, *seed, *samples, *size, *batch, *epochs, *prefetch, *readBatch, *listing); err != nil {
		fmt.Fprintln(stderr, "loader:", err)
		return 1
	}
	return 0
}

func load(ctx context.Context, stdout io.Writer, seed uint64, n, size, batchSize, epochs, prefetch, readBatch int, listingFile string) error {
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"invert": invert}})
	if err != nil {
		return err
	}
	defer c.Close()

	// The dataset: n samples, put to their owners 16 at a time.
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			b := sample(i, size)
			_, errs[i] = c.Client().Put(ctx, insitu.Name{Bucket: "train", Key: fmt.Sprintf("sample-%06d.bin", i)}, bytes.NewReader(b), int64(len(b)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("filling the dataset: %w", err)
	}
	fmt.Fprintf(stdout, "dataset: %d samples of %d bytes on %d nodes, transformed on their owners (\"invert\")\n", n, size, len(c.Nodes()))

	src, err := loader.Cluster(c.Client(), "train", &source.ClusterOptions{Transform: []string{"invert"}})
	if err != nil {
		return err
	}
	opts := &loader.Options{Seed: seed, Prefetch: prefetch, ReadBatch: readBatch}
	if listingFile != "" {
		if opts.Listing, err = readListing(listingFile); err != nil {
			return err
		}
		if opts.Listing != nil {
			if opts.Listing.Len() != n {
				return fmt.Errorf("%s lists %d samples; the dataset has %d", listingFile, opts.Listing.Len(), n)
			}
			fmt.Fprintf(stdout, "listing: %s (%d names), not listing the bucket\n", listingFile, opts.Listing.Len())
		}
	}
	l, err := loader.New(src, opts)
	if err != nil {
		return err
	}
	start := time.Now()
	var firstBatch time.Duration
	total := 0
	for e := range epochs {
		d := xxhash.New()
		count := 0
		for b, err := range l.Batches(ctx, e, batchSize) {
			if err != nil {
				return err
			}
			if firstBatch == 0 {
				firstBatch = time.Since(start)
			}
			for _, s := range b {
				var i int
				if _, err := fmt.Sscanf(s.Name.Key, "sample-%d.bin", &i); err != nil || len(s.Data) != size || s.Data[0] != 255-byte(i%251) {
					return fmt.Errorf("%s: %d bytes, not the transform's output", s.Name, len(s.Data))
				}
				d.WriteString(s.Name.Key + "\n")
				count++
			}
		}
		if count != n {
			return errors.New("an epoch missed samples")
		}
		total += count
		fmt.Fprintf(stdout, "epoch %d digest %016x samples %d\n", e, d.Sum64(), count)
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "time to first batch: %v\n", firstBatch.Round(time.Microsecond))
	fmt.Fprintf(stdout, "samples/s: %.0f (%d samples in %v)\n", float64(total)/elapsed.Seconds(), total, elapsed.Round(time.Millisecond))
	if listingFile != "" && opts.Listing == nil {
		if err := writeListing(ctx, l, listingFile); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "listing: written to %s\n", listingFile)
	}
	return nil
}

// readListing reads the listing saved in path; nil when there is none.
func readListing(path string) (*loader.Listing, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ls, err := loader.ReadListing(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ls, nil
}

// writeListing saves l's listing in path.
func writeListing(ctx context.Context, l *loader.Loader, path string) error {
	ls, err := l.Listing(ctx)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := ls.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
