package pipeline_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// files returns the relative paths of every file under root, temp files
// included, with their contents' XXH64.
func files(t *testing.T, root string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = xxhash.Sum64(b)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func copyTestdata(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		b, err := os.ReadFile(testutil.Testdata(t, n))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "sub", n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The real directory source and sink: an identity run copies every file
// byte for byte, and a rerun with SkipExisting does nothing.
func TestRunDirToDir(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	copyTestdata(t, in, "test-text.txt", "test-image.jpg", "test-audio-flac.flac", "test-audio-wav.wav")
	rep, err := pipeline.Run(t.Context(), mustDirSource(t, in), insitu.Identity, mustDirSink(t, out), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 4 || rep.BytesIn != 2246022+3541+90224+529544 || rep.BytesOut != rep.BytesIn {
		t.Fatalf("report %+v", rep)
	}
	want, got := files(t, in), files(t, out)
	if len(got) != 4 {
		t.Fatalf("output files %v", got)
	}
	for k, h := range want {
		if got[k] != h {
			t.Errorf("%s: checksum %x, want %x", k, got[k], h)
		}
	}
	rep, err = pipeline.Run(t.Context(), mustDirSource(t, in), insitu.Identity, mustDirSink(t, out), &pipeline.Options{SkipExisting: true})
	if err != nil || rep.Skipped != 4 || rep.Transformed != 0 {
		t.Fatalf("rerun with SkipExisting: %+v, %v", rep, err)
	}
}

// A transform that fails, panics or times out after writing part of its
// output leaves no file at all: no partial object, no temp file.
func TestRunFailuresLeaveNothingBehind(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	copyTestdata(t, in, "test-text.txt", "test-image.jpg", "test-audio-wav.wav")
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := io.CopyN(out, in.Body, 1000); err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(in.Name.Key, ".txt"):
			return insitu.Errorf(insitu.InvalidArgument, "not audio")
		case strings.HasSuffix(in.Name.Key, ".jpg"):
			panic("decoder bug")
		default:
			<-ctx.Done()
			return ctx.Err()
		}
	})
	rep, err := pipeline.Run(t.Context(), mustDirSource(t, in), tr, mustDirSink(t, out),
		&pipeline.Options{ContinueOnError: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Failed != 3 {
		t.Fatalf("report %+v", rep)
	}
	codes := map[string]insitu.Code{}
	for _, f := range rep.Failures {
		codes[f.Name.Key] = f.Code
	}
	if codes["sub/test-text.txt"] != insitu.InvalidArgument || codes["sub/test-image.jpg"] != insitu.Internal ||
		codes["sub/test-audio-wav.wav"] != insitu.DeadlineExceeded {
		t.Fatalf("failure codes %v", codes)
	}
	if left := files(t, out); len(left) != 0 {
		t.Fatalf("failed objects left files behind: %v", left)
	}
}

func TestRunMissingSourceDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := pipeline.Run(t.Context(), mustDirSource(t, missing), insitu.Identity, sink.Discard(), nil)
	if !errors.Is(err, insitu.NotFound) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want NotFound naming the directory", err)
	}
}

func TestRunUnwritableDestination(t *testing.T) {
	in := t.TempDir()
	copyTestdata(t, in, "test-text.txt")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(t.Context(), mustDirSource(t, in), insitu.Identity, mustDirSink(t, filepath.Join(file, "out")), nil)
	if err == nil || rep.Failed != 1 {
		t.Fatalf("writing under a regular file: %+v, %v", rep, err)
	}
	var e *insitu.Error
	if !errors.As(err, &e) || e.Name.Key != "sub/test-text.txt" {
		t.Fatalf("error %v does not name the object", err)
	}
}

// A transform that reads the local file at Input.Path, as ffmpeg does,
// never opens the body, and its input still counts in BytesIn.
func TestRunPathInputCounts(t *testing.T) {
	in := t.TempDir()
	copyTestdata(t, in, "test-text.txt", "test-audio-flac.flac")
	fromPath := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		f, err := os.Open(in.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(out, f)
		return err
	})
	rep, err := pipeline.Run(t.Context(), mustDirSource(t, in), fromPath, sink.Discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BytesIn != 3541+90224 || rep.BytesOut != rep.BytesIn {
		t.Fatalf("bytes in %d, out %d; want %d both", rep.BytesIn, rep.BytesOut, 3541+90224)
	}
}

// mustDirSource returns source.Dir(root, nil), failing the test on error.
func mustDirSource(t *testing.T, root string) *source.DirSource {
	t.Helper()
	s, err := source.Dir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustDirSink returns sink.Dir(root, nil), failing the test on error.
func mustDirSink(t *testing.T, root string) *sink.DirSink {
	t.Helper()
	s, err := sink.Dir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
