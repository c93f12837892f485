package compress_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/compress"
)

// TestMain fails the package when a goroutine (a zstd encoder's or
// decoder's) outlives its tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testdata is the project's copy of the ais-etl test files (see its README).
const testdata = "../../internal/testdata"

var (
	files = []string{"test-audio-flac.flac", "test-audio-mp3.mp3", "test-audio-wav.wav", "test-image.jpg", "test-text.txt"}
	small = []string{"test-audio-flac.flac", "test-text.txt"} // for the slow levels
)

func read(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func apply(ctx context.Context, tr insitu.Transform, body io.Reader) ([]byte, error) {
	var out bytes.Buffer
	err := tr.Transform(ctx, &insitu.Input{Object: insitu.Object{Size: -1}, Body: body}, &out)
	return out.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	pairs := []struct {
		name      string
		enc, dec  insitu.Transform
		cmdDecode []string // the system tool that must read our output
		files     []string
	}{
		{"gzip", compress.Gzip(nil), compress.Gunzip(nil), []string{"gzip", "-dc"}, files},
		{"gzip-1", compress.Gzip(&compress.Options{Level: 1}), compress.Gunzip(nil), []string{"gzip", "-dc"}, small},
		{"gzip-9", compress.Gzip(&compress.Options{Level: 9}), compress.Gunzip(nil), []string{"gzip", "-dc"}, small},
		{"zstd", compress.Zstd(nil), compress.Unzstd(nil), []string{"zstd", "-dcq"}, files},
		{"zstd-19", compress.Zstd(&compress.Options{Level: 19}), compress.Unzstd(nil), []string{"zstd", "-dcq"}, small},
	}
	for _, p := range pairs {
		for _, file := range p.files {
			t.Run(p.name+"/"+file, func(t *testing.T) {
				t.Parallel()
				want := read(t, file)
				packed, err := apply(t.Context(), p.enc, bytes.NewReader(want))
				if err != nil {
					t.Fatal(err)
				}
				got, err := apply(t.Context(), p.dec, bytes.NewReader(packed))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round trip: %d bytes, want %d, equal %v", len(got), len(want), bytes.Equal(got, want))
				}
				if file == "test-text.txt" && len(packed) >= len(want) {
					t.Errorf("text compressed to %d bytes from %d", len(packed), len(want))
				}
				if _, err := exec.LookPath(p.cmdDecode[0]); err != nil {
					t.Skip(p.cmdDecode[0], "not installed")
				}
				cmd := exec.CommandContext(t.Context(), p.cmdDecode[0], p.cmdDecode[1:]...)
				cmd.Stdin = bytes.NewReader(packed)
				byTool, err := cmd.Output()
				if err != nil || !bytes.Equal(byTool, want) {
					t.Errorf("%v of our output: %d bytes, err %v", p.cmdDecode, len(byTool), err)
				}
			})
		}
	}
}

// TestDecodeSystemTools decompresses what the gzip and zstd commands
// wrote, concatenated streams included.
func TestDecodeSystemTools(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tool string
		args []string
		dec  insitu.Transform
	}{
		{"gzip", []string{"-c", "-6"}, compress.Gunzip(nil)},
		{"zstd", []string{"-c", "-q", "-5"}, compress.Unzstd(nil)},
	} {
		if _, err := exec.LookPath(tc.tool); err != nil {
			t.Log(tc.tool, "not installed")
			continue
		}
		var packed, want []byte
		for _, file := range []string{"test-text.txt", "test-audio-wav.wav"} {
			cmd := exec.CommandContext(t.Context(), tc.tool, append(tc.args, filepath.Join(testdata, file))...)
			b, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			packed = append(packed, b...)
			want = append(want, read(t, file)...)
		}
		got, err := apply(t.Context(), tc.dec, bytes.NewReader(packed))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want %d, err %v", tc.tool, len(got), len(want), err)
		}
	}
}

func packed(t *testing.T, enc insitu.Transform, file string) []byte {
	t.Helper()
	b, err := apply(t.Context(), enc, bytes.NewReader(read(t, file)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	gz := packed(t, compress.Gzip(nil), "test-audio-wav.wav")
	zs := packed(t, compress.Zstd(nil), "test-audio-wav.wav")
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		return c
	}
	text := read(t, "test-text.txt")
	cases := []struct {
		name  string
		dec   insitu.Transform
		input []byte
		want  string
	}{
		{"gzip truncated", compress.Gunzip(nil), gz[:len(gz)/2], "truncated gzip stream"},
		{"gzip no trailer", compress.Gunzip(nil), gz[:len(gz)-4], "truncated gzip stream"},
		{"gzip not gzip", compress.Gunzip(nil), text, "not a gzip stream"},
		{"gzip short not gzip", compress.Gunzip(nil), []byte("hello"), "not a gzip stream"},
		{"gzip short truncated", compress.Gunzip(nil), gz[:5], "truncated gzip stream"},
		{"gzip empty", compress.Gunzip(nil), nil, "empty input, not a gzip stream"},
		{"gzip bad crc", compress.Gunzip(nil), flip(gz, len(gz)-6), "checksum mismatch"},
		{"gzip corrupt", compress.Gunzip(nil), flip(gz, len(gz)/2), "gzip stream"},
		{"zstd truncated", compress.Unzstd(nil), zs[:len(zs)/2], "truncated zstd stream"},
		{"zstd not zstd", compress.Unzstd(nil), text, "not a zstd stream"},
		{"zstd empty", compress.Unzstd(nil), nil, "empty input, not a zstd stream"},
		{"zstd gzip", compress.Unzstd(nil), gz, "not a zstd stream"},
		{"zstd bad crc", compress.Unzstd(nil), flip(zs, len(zs)-2), "checksum mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := apply(t.Context(), tc.dec, bytes.NewReader(tc.input))
			if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want InvalidArgument saying %q", err, tc.want)
			}
		})
	}
}

func TestMaxOutput(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 4<<20)
	for _, tc := range []struct {
		name     string
		enc, dec func(*compress.Options) insitu.Transform
	}{
		{"gzip", compress.Gzip, compress.Gunzip},
		{"zstd", compress.Zstd, compress.Unzstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bomb, err := apply(t.Context(), tc.enc(&compress.Options{Level: 9}), bytes.NewReader(zeros))
			if err != nil {
				t.Fatal(err)
			}
			if len(bomb) > 64<<10 {
				t.Fatalf("4 MiB of zeros packed into %d bytes", len(bomb))
			}
			const limit = 1 << 20
			got, err := apply(t.Context(), tc.dec(&compress.Options{MaxOutput: limit}), bytes.NewReader(bomb))
			if !errors.Is(err, insitu.TooLarge) || !strings.Contains(err.Error(), "1048576") {
				t.Fatalf("err %v, want TooLarge naming the limit", err)
			}
			if len(got) > limit {
				t.Errorf("wrote %d bytes past a limit of %d", len(got), limit)
			}
			// Exactly at the limit, and without one, it decompresses.
			for _, max := range []int64{int64(len(zeros)), -1, 0} {
				got, err = apply(t.Context(), tc.dec(&compress.Options{MaxOutput: max}), bytes.NewReader(bomb))
				if err != nil || len(got) != len(zeros) {
					t.Errorf("MaxOutput %d: %d bytes, err %v", max, len(got), err)
				}
			}
		})
	}
}

// failingReader returns some bytes, then a coded error, as a source whose
// connection drops would.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestReaderAndWriterErrorsPassThrough(t *testing.T) {
	t.Parallel()
	gz := packed(t, compress.Gzip(nil), "test-audio-wav.wav")
	zs := packed(t, compress.Zstd(nil), "test-audio-wav.wav")
	dropped := &insitu.Error{Code: insitu.Unavailable, Msg: "connection dropped"}
	for name, tc := range map[string]struct {
		tr insitu.Transform
		in []byte
	}{
		"gunzip": {compress.Gunzip(nil), gz[:len(gz)/2]},
		"unzstd": {compress.Unzstd(nil), zs[:len(zs)/2]},
		"gzip":   {compress.Gzip(nil), read(t, "test-text.txt")},
		"zstd":   {compress.Zstd(nil), read(t, "test-text.txt")},
	} {
		_, err := apply(t.Context(), tc.tr, &failingReader{bytes.NewReader(tc.in), dropped})
		if err != dropped {
			t.Errorf("%s, reader error: got %v, want %v as it is", name, err, dropped)
		}
		full := tc.in
		if name == "gunzip" {
			full = gz
		} else if name == "unzstd" {
			full = zs
		}
		werr := errors.New("disk full")
		err = tc.tr.Transform(t.Context(), &insitu.Input{Body: bytes.NewReader(full)}, errWriter{werr})
		if !errors.Is(err, werr) || insitu.CodeOf(err) == insitu.InvalidArgument {
			t.Errorf("%s, writer error: got %v, want %v", name, err, werr)
		}
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	gz := packed(t, compress.Gzip(nil), "test-text.txt")
	for name, tc := range map[string]struct {
		tr insitu.Transform
		in []byte
	}{
		"gzip": {compress.Gzip(nil), read(t, "test-text.txt")}, "gunzip": {compress.Gunzip(nil), gz},
		"zstd": {compress.Zstd(nil), read(t, "test-text.txt")}, "unzstd": {compress.Unzstd(nil), gz},
	} {
		if _, err := apply(ctx, tc.tr, bytes.NewReader(tc.in)); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err %v, want context.Canceled", name, err)
		}
	}
}

func TestBadLevel(t *testing.T) {
	t.Parallel()
	for _, tr := range []insitu.Transform{
		compress.Gzip(&compress.Options{Level: 10}), compress.Gzip(&compress.Options{Level: -3}),
		compress.Zstd(&compress.Options{Level: 23}), compress.Zstd(&compress.Options{Level: -1}),
	} {
		if _, err := apply(t.Context(), tr, strings.NewReader("x")); !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "level") {
			t.Errorf("err %v, want InvalidArgument about the level", err)
		}
	}
}
