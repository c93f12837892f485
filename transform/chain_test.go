package transform_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform"
	"github.com/insitu-data/insitu/transform/compress"
	"github.com/insitu-data/insitu/transform/hash"
)

// TestMain fails the package when a stage's goroutine outlives its chain.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testdata is the project's copy of the ais-etl test files (see its README).
const testdata = "../internal/testdata"

var files = []string{"test-audio-flac.flac", "test-audio-mp3.mp3", "test-audio-wav.wav", "test-image.jpg", "test-text.txt"}

func read(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func input(body io.Reader) *insitu.Input {
	return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: -1}, Body: body}
}

func apply(ctx context.Context, tr insitu.Transform, body io.Reader) ([]byte, error) {
	var out bytes.Buffer
	err := tr.Transform(ctx, input(body), &out)
	return out.Bytes(), err
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	chains := map[string]insitu.Transform{
		"gzip|gunzip":             transform.Chain(compress.Gzip(nil), compress.Gunzip(nil)),
		"zstd|gzip|gunzip|unzstd": transform.Chain(compress.Zstd(nil), compress.Gzip(nil), compress.Gunzip(nil), compress.Unzstd(nil)),
		"identity":                transform.Chain(insitu.Identity),
		"none":                    transform.Chain(),
	}
	for name, c := range chains {
		for _, file := range files {
			t.Run(name+"/"+file, func(t *testing.T) {
				t.Parallel()
				want := read(t, file)
				got, err := apply(t.Context(), c, bytes.NewReader(want))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes out, want the %d of the input", len(got), len(want))
				}
			})
		}
	}
}

// TestHashOfGunzip checks the README's known md5 answers through a chain
// that compresses, decompresses and hashes.
func TestHashOfGunzip(t *testing.T) {
	t.Parallel()
	known := map[string]string{
		"test-audio-flac.flac": "7239b48a91efd4e82d9d371bc71dc61a",
		"test-audio-mp3.mp3":   "34bb2fcd07501c396078d7902f783b56",
		"test-audio-wav.wav":   "4dca39911095aec555e37f5e3ee89f84",
		"test-image.jpg":       "33b8d66b1a703796ea16e370dcbcc68d",
		"test-text.txt":        "7c62ad0eef19d3cc595bd60727555502",
	}
	c := transform.Chain(compress.Gzip(nil), compress.Gunzip(nil), hash.MD5())
	for file, want := range known {
		got, err := apply(t.Context(), c, bytes.NewReader(read(t, file)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", file, got, err, want)
		}
	}
	// XXH64 seeded by the job's args, which reach every stage.
	var out bytes.Buffer
	in := input(bytes.NewReader(read(t, "test-text.txt")))
	in.Args = "42"
	if err := transform.Chain(insitu.Identity, hash.XXH64()).Transform(t.Context(), in, &out); err != nil || out.String() != "e31ae61f6b8c93a9" {
		t.Errorf("xxh64 seed 42: %q, %v", out.String(), err)
	}
}

func TestStagesSeeInput(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	record := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s args=%q path=%q size=%d version=%q", in.Name, in.Args, in.Path, in.Size, in.Version))
		mu.Unlock()
		_, err := io.Copy(out, in.Body)
		return err
	})
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 3, Path: "/p", Version: "v1"},
		Args: "a b", Body: strings.NewReader("abc")}
	var out bytes.Buffer
	err := transform.Chain(record, record, record).Transform(t.Context(), in, &out)
	if err != nil || out.String() != "abc" {
		t.Fatalf("%q, %v", out.String(), err)
	}
	first := `b/k args="a b" path="/p" size=3 version="v1"`
	later := `b/k args="a b" path="" size=-1 version=""`
	n := 0
	for _, s := range seen {
		switch s {
		case first:
			n += 100
		case later:
			n++
		default:
			t.Errorf("stage saw %s", s)
		}
	}
	if n != 102 {
		t.Errorf("stages saw %q; want one %s and two %s", seen, first, later)
	}
}

// TestMiddleStageFails: the first stage has written output and the middle
// one has read it, the last has written to out and would go on writing
// forever (it ignores its context and its input), and the middle one
// fails. The chain fails with the
// middle stage's error and code, named, and out takes no more writes.
func TestMiddleStageFails(t *testing.T) {
	t.Parallel()
	wrote := make(chan struct{})
	bad := errors.New("bad frame at byte 100000")
	middle := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := io.CopyN(out, in.Body, 100); err != nil {
			return err
		}
		<-wrote
		return insitu.Errorf(insitu.InvalidArgument, "decoding: %w", bad)
	})
	var once sync.Once
	last := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		buf := make([]byte, 1000)
		for {
			if _, err := out.Write(buf); err != nil {
				return err
			}
			once.Do(func() { close(wrote) })
		}
	})
	var out countWriter
	err := transform.Chain(insitu.Identity, middle, last).Transform(t.Context(), input(bytes.NewReader(read(t, "test-audio-wav.wav"))), &out)
	if !errors.Is(err, insitu.InvalidArgument) || !errors.Is(err, bad) || insitu.CodeOf(err) != insitu.InvalidArgument {
		t.Fatalf("err %v; want the middle stage's InvalidArgument", err)
	}
	if !strings.HasPrefix(err.Error(), "stage 2 of 3 (insitu.TransformFunc): decoding: bad frame") {
		t.Errorf("err %q does not name stage 2", err)
	}
	n := out.n.Load()
	if n == 0 {
		t.Fatal("the last stage wrote nothing; the test did not test")
	}
	if err := insitu.Identity.Transform(t.Context(), input(strings.NewReader("x")), &out); err != nil || out.n.Load() != n+1 {
		t.Errorf("out after the chain returned: %d bytes, then %d", n, out.n.Load())
	}
}

type countWriter struct{ n atomic.Int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

func TestFirstFailureWins(t *testing.T) {
	t.Parallel()
	// The first stage fails reading its input; the second, which fails
	// only because its input failed, is not the one named.
	drop := &insitu.Error{Code: insitu.Unavailable, Msg: "connection dropped"}
	body := io.MultiReader(strings.NewReader("abc"), errReader{drop})
	_, err := apply(t.Context(), transform.Chain(insitu.Identity, compress.Gzip(nil), hash.MD5()), body)
	if !errors.Is(err, insitu.Unavailable) || !errors.Is(err, drop) || !strings.HasPrefix(err.Error(), "stage 1 of 3") {
		t.Errorf("err %v; want stage 1's Unavailable", err)
	}
	// A coded error of the catalog keeps its code and names its stage.
	_, err = apply(t.Context(), transform.Chain(insitu.Identity, compress.Gunzip(nil), hash.SHA256()), strings.NewReader("not gzip"))
	if !errors.Is(err, insitu.InvalidArgument) || err.Error() != "stage 2 of 3 (gunzip): gunzip: not a gzip stream: gzip: invalid header (invalid_argument)" {
		t.Errorf("err %q", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestEarlyReturnIsNotAFailure(t *testing.T) {
	t.Parallel()
	head := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		_, err := io.CopyN(out, in.Body, 12)
		return err
	})
	want := read(t, "test-audio-wav.wav")
	got, err := apply(t.Context(), transform.Chain(insitu.Identity, compress.Gzip(nil), compress.Gunzip(nil), head), bytes.NewReader(want))
	if err != nil || !bytes.Equal(got, want[:12]) {
		t.Errorf("%q, %v; want %q", got, err, want[:12])
	}
}

func TestSkip(t *testing.T) {
	t.Parallel()
	skip := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		_, _ = io.CopyN(io.Discard, in.Body, 10)
		return insitu.ErrSkip
	})
	_, err := apply(t.Context(), transform.Chain(insitu.Identity, skip, hash.MD5()), bytes.NewReader(read(t, "test-image.jpg")))
	if err != insitu.ErrSkip {
		t.Errorf("err %v; want insitu.ErrSkip as it is", err)
	}
}

func TestPanic(t *testing.T) {
	t.Parallel()
	boom := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		_, _ = io.CopyN(out, in.Body, 10)
		panic("boom")
	})
	_, err := apply(t.Context(), transform.Chain(insitu.Identity, boom, hash.MD5()), bytes.NewReader(read(t, "test-image.jpg")))
	if !errors.Is(err, insitu.Internal) || !strings.Contains(err.Error(), "stage 2 of 3 (insitu.TransformFunc) panicked") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v; want Internal naming stage 2 and the panic", err)
	}

	// In a pipeline, with ContinueOnError: the object fails with Internal,
	// naming the stage, and the others are transformed.
	srcDir, dstDir := t.TempDir(), t.TempDir()
	for _, k := range []string{"a.txt", "boom.txt", "c.txt"} {
		if err := os.WriteFile(filepath.Join(srcDir, k), []byte("hello "+k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := source.Dir(srcDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Dir(dstDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	maybe := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "boom.txt" {
			panic("boom in " + in.Name.Key)
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	rep, err := pipeline.Run(t.Context(), src, transform.Chain(insitu.Identity, maybe, hash.MD5()), dst, &pipeline.Options{ContinueOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 2 || rep.Failed != 1 || len(rep.Failures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Failures[0]
	if f.Name.Key != "boom.txt" || f.Code != insitu.Internal || !strings.Contains(f.Message, "stage 2 of 3") {
		t.Errorf("failure %+v; want boom.txt, internal, stage 2", f)
	}
	got, err := os.ReadFile(filepath.Join(dstDir, "a.txt"))
	if err != nil || string(got) != md5hex([]byte("hello a.txt")) {
		t.Errorf("a.txt: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "boom.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("boom.txt output: %v; want none", err)
	}
}

// endless is an input that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	var once sync.Once
	// A stage that reads until its context ends, and stages that do not
	// look at their context at all: every one ends.
	watcher := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		buf := make([]byte, 4096)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := in.Body.Read(buf)
			if err != nil {
				return err
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			once.Do(func() { close(started) })
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := apply(ctx, transform.Chain(insitu.Identity, compress.Gzip(nil), compress.Gunzip(nil), watcher, insitu.Identity), endless{})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("err %v; want context.Canceled", err)
	}
}

func TestNilStagePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "stage 2 of 2 is nil") {
			t.Errorf("recovered %v", r)
		}
	}()
	transform.Chain(insitu.Identity, nil)
}

func TestString(t *testing.T) {
	t.Parallel()
	c := transform.Chain(compress.Gunzip(nil), hash.XXH64(), insitu.Identity)
	if got := fmt.Sprint(c); got != "chain(gunzip | xxh64 | insitu.TransformFunc)" {
		t.Errorf("String() = %q", got)
	}
}
