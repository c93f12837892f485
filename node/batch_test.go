package node_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// batchCounter is ffmpeg's WAV transcoder, counting the inputs of each
// batch call it gets and the objects it gets alone.
type batchCounter struct {
	*ffmpeg.WAV
	mu      sync.Mutex
	batches []int
	alone   int
	paths   []string // Input.Path of every batched input
}

func (b *batchCounter) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	b.mu.Lock()
	b.alone++
	b.mu.Unlock()
	return b.WAV.Transform(ctx, in, out)
}

func (b *batchCounter) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	b.mu.Lock()
	b.batches = append(b.batches, len(ins))
	for _, in := range ins {
		b.paths = append(b.paths, in.Path)
	}
	b.mu.Unlock()
	return b.WAV.TransformBatch(ctx, ins)
}

// TestJobBatchesEmbeddedFFmpeg: a cluster job with ffmpeg embedded hands
// each node's local files to ffmpeg in batches, each input opened through
// the store (its Path the open file's, not the store's); a corrupt file
// fails alone, named, with invalid_argument, and every other output is
// byte for byte what one ffmpeg process per file writes.
func TestJobBatchesEmbeddedFFmpeg(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg over 30 files on 3 nodes; skipped with -short")
	}
	bin := testutil.RequireTool(t, "ffmpeg", ffmpeg.InstallHint)
	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Channels: 1, SampleRate: 16000, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bt := &batchCounter{WAV: w}
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"wav": bt}})
	in := t.TempDir()
	paths, err := ffmpegtest.GenerateSet(t.Context(), bin, in, 30, func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: i, Duration: 400 * time.Millisecond}
	})
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Base(paths[11])
	b, _ := os.ReadFile(paths[11])
	if err := os.WriteFile(paths[11], b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SeedDir(t.Context(), "flac", in); err != nil || n != 30 {
		t.Fatalf("SeedDir = %d, %v", n, err)
	}
	spec := cluster.JobSpec{Bucket: "flac", DstBucket: "wav", Transform: "wav", Rename: &cluster.RenameExt{From: ".flac", To: ".wav"},
		ContinueOnError: true, BatchSize: 8, Workers: 1}
	rep, err := cluster.Run(t.Context(), c.Client(), spec, nil)
	if err != nil {
		t.Fatalf("cluster.Run: %v\n%s", err, rep)
	}
	if rep.Transformed != 29 || rep.Failed != 1 || len(rep.Failures) != 1 {
		t.Fatalf("report:\n%s", rep)
	}
	if f := rep.Failures[0]; f.Name.Key != corrupt || f.Code != insitu.InvalidArgument {
		t.Errorf("failure %+v, want %s with invalid_argument", f, corrupt)
	}
	var batched int
	for _, n := range bt.batches {
		if n < 2 || n > 8 {
			t.Errorf("a batch of %d; want 2 to 8", n)
		}
		batched += n
	}
	// Objects went in batches (a node's last one may go alone), and the
	// corrupt one's batch, of up to 8, was done again alone.
	if batched+bt.alone < 30+2 || bt.alone > 8+3 || batched < 24 {
		t.Errorf("%d objects in %d batches, %d alone", batched, len(bt.batches), bt.alone)
	}
	for _, p := range bt.paths {
		if !strings.HasPrefix(p, "/proc/") {
			t.Errorf("a batched input's Path is %q, want the open file's /proc path", p)
			break
		}
	}
	for _, p := range paths {
		key := strings.TrimSuffix(filepath.Base(p), ".flac") + ".wav"
		got, _, err := readAll(t.Context(), c.Client(), insitu.Name{Bucket: "wav", Key: key})
		if filepath.Base(p) == corrupt {
			if err == nil {
				t.Errorf("the corrupt input has an output")
			}
			continue
		}
		floor := filepath.Join(t.TempDir(), "floor.wav")
		if out, err := w.Command(t.Context(), p, floor).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want, _ := os.ReadFile(floor)
		if err != nil || len(want) < 1000 || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, floor %d (%v)", key, len(got), len(want), err)
		}
	}
}
