package ffmpeg_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/wav"
)

// spyFFmpeg returns the path of a program that appends a line to the file
// logPath each time it is started, then runs the ffmpeg on PATH. NewWAV
// accepts it as its Binary even where ffmpeg is not installed.
func spyFFmpeg(t testing.TB) (bin, logPath string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "ffmpeg-spy")
	script := "#!/bin/sh\necho started >> \"$0.log\"\nexec ffmpeg \"$@\"\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, bin + ".log"
}

// starts returns how many times the spy at logPath was started.
func starts(t *testing.T, logPath string) int {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("started\n"))
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// hostileArgs are args strings a job must not get past the allow-list,
// each with a part of the error that names what is wrong.
var hostileArgs = []struct{ args, want string }{
	{"-i /etc/passwd", `"-i" is not an allowed option`},
	{"-ac 1 -i /etc/passwd", `"-i" is not an allowed option`},
	{"-f", `"-f" is not an allowed option`},
	{"-f s16le", `"-f" is not an allowed option`},
	{"-y", `"-y" is not an allowed option`},
	{"-y /tmp/out.wav", `"-y" is not an allowed option`},
	{"file:/x", `"file:/x" is not an allowed option (args name no input, output`},
	{"-ac 1 file:/etc/passwd", `"file:/etc/passwd" is not an allowed option`},
	{"http://127.0.0.1:1/a.flac", `"http://127.0.0.1:1/a.flac" is not an allowed option`},
	{"-ac 1 -ar 16000 http://example.com/x.wav", `"http://example.com/x.wav" is not`},
	{"-filter_complex amovie=/etc/passwd", `"-filter_complex" is not an allowed option`},
	{"-af amovie=/etc/passwd", `"-af" is not an allowed option`},
	{"-filter:a volume=2", `"-filter:a" is not an allowed option`},
	{"amovie=/etc/passwd", `"amovie=/etc/passwd" is not an allowed option`},
	{"-ac amovie=/etc/passwd", `"-ac" "amovie=/etc/passwd": the value is not accepted`},
	{"/tmp/out.wav", `"/tmp/out.wav" is not an allowed option`},
	{"-ac 1 out.wav", `"out.wav" is not an allowed option`},
	{"-ac 1 -", `"-" is not an allowed option (args name no input`},
	{"-ac 1 pipe:1", `"pipe:1" is not an allowed option`},
	{"-map 0:a", `"-map" is not an allowed option`},
	{"-attach /etc/passwd", `"-attach" is not an allowed option`},
	{"-protocol_whitelist file,http", `"-protocol_whitelist" is not an allowed option`},
	{"-ac 1; rm -rf /", `"-ac" "1;": the value is not accepted`},
	{"-ac 1 ; touch /tmp/pwned", `";" is not an allowed option`},
	{"-ac 1 && id", `"&&" is not an allowed option`},
	{"-ac $(id)", `"-ac" "$(id)": the value is not accepted`},
	{"-ac `id`", "\"-ac\" \"`id`\": the value is not accepted"},
	{`-ac "1"`, `"-ac" "\"1\"": the value is not accepted`},
	{"-ac '1'", `"-ac" "'1'": the value is not accepted`},
	{"-ac 1\n-ar 16000", `control character '\n' at byte 5`},
	{"-ac 1\r", `control character '\r' at byte 5`},
	{"-ac 1\x00", `control character '\x00' at byte 5`},
	{"-ac\x001", `control character '\x00' at byte 3`},
	{"-ac 1\x7f", `control character '\x7f' at byte 5`},
	{strings.Repeat("-ac 1 ", 100), "args are 600 bytes long; at most 512"},
	{strings.Repeat("x", 1<<20), "args are 1048576 bytes long; at most 512"},
	{"-ac", `"-ac" needs a value: 1 to 8`},
	{"-ar 16000 -ac", `"-ac" needs a value`},
	{"-ac 0", `"-ac" "0": the value is not accepted; want 1 to 8`},
	{"-ac 9", `"-ac" "9"`},
	{"-ac -1", `"-ac" "-1"`},
	{"-ac +1", `"-ac" "+1"`},
	{"-ac 1.5", `"-ac" "1.5"`},
	{"-ac 0x2", `"-ac" "0x2"`},
	{"-ac 99999999999999999999", `"-ac" "99999999999999999999"`},
	{"-ac 1 -ac 2", `"-ac" is given twice`},
	{"-ar 16001", `"-ar" "16001": the value is not accepted; want one of 8000,`},
	{"-ar 16k", `"-ar" "16k"`},
	{"-ar 1000000", `"-ar" "1000000"`},
	{"-sample_fmt s64", `"-sample_fmt" "s64"`},
	{"-sample_fmt s16p", `"-sample_fmt" "s16p"`},
	{"-c:a flac", `"-c:a" "flac"`},
	{"-c:a pcm_s16be", `"-c:a" "pcm_s16be"`},
	{"-acodec copy", `"-acodec" "copy"`},
	{"-sample_fmt s16 -c:a pcm_s24le", `"-c:a" sets the sample format, which -sample_fmt already set`},
	{"-c:a pcm_s16le -acodec pcm_s16le", `"-acodec" sets the sample format, which -c:a already set`},
	{"-AC 1", `"-AC" is not an allowed option`},
	{"--ac 1", `"--ac" is not an allowed option`},
	{"-ac=1", `"-ac=1" is not an allowed option`},
	{"-ac\u00a01", `"-ac\u00a01" is not an allowed option`}, // a no-break space, shown escaped
	{"-c:v pcm_s16le", `"-c:v" is not an allowed option`},
	{"-c pcm_s16le", `"-c" is not an allowed option`},
	{"-vn", `"-vn" is not an allowed option`},
	{"-" + strings.Repeat("a", 100), `"-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… is not an allowed option`},
}

// Every kind of hostile args fails the object with InvalidArgument naming
// the offending word, before ffmpeg is started, a staging file is made or a
// byte of the body is read. (ffmpeg itself is not needed.)
func TestArgsRefused(t *testing.T) {
	t.Parallel()
	bin, log := spyFFmpeg(t)
	tmp := t.TempDir()
	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Binary: bin, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	flac := testutil.Testdata(t, "test-audio-flac.flac")
	for _, tc := range hostileArgs {
		checkErr := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("args %q: %s error = %v, want InvalidArgument", tc.args, what, err)
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.ContainsAny(msg, "\n\r\x00") || len(msg) > 300 {
				t.Errorf("args %q: %s error = %q, want one short line with %q", tc.args, what, msg, tc.want)
			}
		}
		checkErr("CheckArgs", ffmpeg.CheckArgs(tc.args))
		w2, err := w.WithArgs(tc.args)
		checkErr("WithArgs", err)
		if w2 != nil {
			t.Errorf("args %q: WithArgs returned a transcoder with its error", tc.args)
		}

		// Via Path.
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "a.flac"}, Path: flac}, Args: tc.args}
		var out bytes.Buffer
		err = w.Transform(t.Context(), in, &out)
		checkErr("Transform (path)", err)
		var ie *insitu.Error
		if !errors.As(err, &ie) || ie.Name != in.Name {
			t.Errorf("args %q: error %v does not name the object %v", tc.args, err, in.Name)
		}
		// Via Body: not a byte read.
		body := &countingReader{r: bytes.NewReader([]byte("fLaC and more"))}
		in = &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "b.flac"}, Size: -1}, Args: tc.args, Body: body}
		checkErr("Transform (body)", w.Transform(t.Context(), in, &out))
		if body.n != 0 {
			t.Errorf("args %q: %d bytes of the body read", tc.args, body.n)
		}
		if out.Len() != 0 {
			t.Errorf("args %q: %d bytes written", tc.args, out.Len())
		}
	}
	if n := starts(t, log); n != 0 {
		t.Errorf("ffmpeg was started %d times for refused args", n)
	}
	emptyDir(t, tmp)

	// The spy does see a start for good args.
	t.Run("control", func(t *testing.T) {
		requireFFmpeg(t)
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "a.flac"}, Path: flac}, Args: "-ac 1 -ar 16000"}
		var out bytes.Buffer
		if err := w.Transform(t.Context(), in, &out); err != nil {
			t.Fatal(err)
		}
		checkWAV(t, out.Bytes(), 1, 16000, time.Second)
		if n := starts(t, log); n != 1 {
			t.Fatalf("ffmpeg started %d times for one object, want 1", n)
		}
		emptyDir(t, tmp)
	})
}

// Whatever the args string, the command ffmpeg runs has the shape the
// package writes: one input, one output, the same options in the same
// places, only the values of -ac, -ar and -c:a picked by the args.
func FuzzWithArgs(f *testing.F) {
	for _, tc := range hostileArgs {
		if len(tc.args) < 1000 {
			f.Add(tc.args)
		}
	}
	for _, s := range []string{"", " ", "-ac 1 -ar 16000", "-sample_fmt flt\t-ac 8", "-acodec pcm_u8"} {
		f.Add(s)
	}
	bin, _ := spyFFmpeg(f)
	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Binary: bin})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args string) {
		base := w.Args("in.flac", "out.wav")
		w2, err := w.WithArgs(args)
		if cerr := ffmpeg.CheckArgs(args); (cerr == nil) != (err == nil) {
			t.Fatalf("CheckArgs = %v but WithArgs = %v", cerr, err)
		}
		if err != nil {
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("WithArgs(%q) = %v, want InvalidArgument", args, err)
			}
			return
		}
		got := w2.Args("in.flac", "out.wav")
		if len(got) != len(base) {
			t.Fatalf("WithArgs(%q).Args = %q, want the shape of %q", args, got, base)
		}
		for i := range got {
			if got[i] == base[i] {
				continue
			}
			switch base[i-1] {
			case "-ac", "-ar":
				if _, err := strconv.Atoi(got[i]); err != nil {
					t.Fatalf("WithArgs(%q): %s %q", args, base[i-1], got[i])
				}
			case "-c:a":
				if !strings.HasPrefix(got[i], "pcm_") {
					t.Fatalf("WithArgs(%q): -c:a %q", args, got[i])
				}
			default:
				t.Fatalf("WithArgs(%q) changed argument %d: %q, was %q", args, i, got[i], base[i])
			}
		}
	})
}

// Input.Args set the output's channels, rate and sample format, on top of
// the WAVOptions defaults: the WAV header says what was asked and the
// duration is kept.
func TestArgsHonoured(t *testing.T) {
	requireFFmpeg(t)
	const pcm, float = wav.FormatPCM, wav.FormatFloat
	type shape struct{ format, bits, channels, rate int }
	durs := map[string]time.Duration{
		"test-audio-flac.flac": 1000 * time.Millisecond,
		"test-audio-mp3.mp3":   10030 * time.Millisecond,
		"test-audio-wav.wav":   3000 * time.Millisecond,
	}
	for _, tc := range []struct {
		file string
		opts ffmpeg.WAVOptions
		args string
		want shape
	}{
		// The known answer: mono 16 kHz, duration within 0.05 s.
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-ac 1 -ar 16000", shape{pcm, 16, 1, 16000}},
		{"test-audio-mp3.mp3", ffmpeg.WAVOptions{}, "-ac 1 -ar 16000", shape{pcm, 16, 1, 16000}},
		{"test-audio-wav.wav", ffmpeg.WAVOptions{}, "-ac 1 -ar 16000", shape{pcm, 16, 1, 16000}},
		// Empty or blank args: the defaults.
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "", shape{pcm, 16, 2, 44100}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, " \t ", shape{pcm, 16, 2, 44100}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{Channels: 1, SampleRate: 8000, Codec: "pcm_s24le"}, "", shape{pcm, 24, 1, 8000}},
		// What the args do not set keeps its default.
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-ac 1", shape{pcm, 16, 1, 44100}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{Channels: 1, SampleRate: 16000}, "\t-ar  8000 ", shape{pcm, 16, 1, 8000}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{Codec: "pcm_s24le"}, "-sample_fmt s16 -ac 1", shape{pcm, 16, 1, 44100}},
		// Sample formats and the spellings of -c:a.
		{"test-audio-wav.wav", ffmpeg.WAVOptions{}, "-c:a pcm_s24le -ar 48000", shape{pcm, 24, 2, 48000}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-acodec pcm_u8 -ac 1", shape{pcm, 8, 1, 44100}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-sample_fmt flt", shape{float, 32, 2, 44100}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-codec:a pcm_f64le -ac 6 -ar 96000", shape{float, 64, 6, 96000}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-sample_fmt s32 -ac 8 -ar 192000", shape{pcm, 32, 8, 192000}},
		{"test-audio-flac.flac", ffmpeg.WAVOptions{}, "-ar 8000 -ac 3 -sample_fmt u8", shape{pcm, 8, 3, 8000}},
	} {
		for _, viaPath := range []bool{true, false} {
			if !viaPath && tc.args != "-ac 1 -ar 16000" {
				continue // Path and Body give the same bytes (TestTranscodePathBodyCommandAgree)
			}
			t.Run(tc.file+"/"+tc.args+"/"+map[bool]string{true: "path", false: "body"}[viaPath], func(t *testing.T) {
				if testing.Short() && durs[tc.file] > 3*time.Second {
					t.Skip("a long input; skipped with -short")
				}
				t.Parallel()
				opts := tc.opts
				opts.TempDir = t.TempDir()
				w, err := ffmpeg.NewWAV(&opts)
				if err != nil {
					t.Fatal(err)
				}
				in := input(t, tc.file, viaPath)
				in.Args = tc.args
				var out bytes.Buffer
				if err := w.Transform(t.Context(), in, &out); err != nil {
					t.Fatal(err)
				}
				checkWAVOf(t, out.Bytes(), tc.want.format, tc.want.bits, tc.want.channels, tc.want.rate, durs[tc.file])
				emptyDir(t, opts.TempDir)
			})
		}
	}
}

// WithArgs(args).Command runs what Transform runs for an object with those
// args (the benchmark's floor relies on it), and WithArgs layers: an
// object's Input.Args override its result again.
func TestWithArgsMatchesTransform(t *testing.T) {
	requireFFmpeg(t)
	t.Parallel()
	w, tmp := newWAV(t, 2, 44100)
	flac := testutil.Testdata(t, "test-audio-flac.flac")
	for _, args := range []string{"", "-ac 1 -ar 16000", "-c:a pcm_s24le"} {
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "a.flac"}, Path: flac}, Args: args}
		var viaTransform bytes.Buffer
		if err := w.Transform(t.Context(), in, &viaTransform); err != nil {
			t.Fatal(err)
		}
		wa, err := w.WithArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "direct.wav")
		cmd := wa.Command(t.Context(), flac, out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd.Args, err, b)
		}
		direct, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(viaTransform.Bytes(), direct) {
			t.Errorf("args %q: Transform (%d bytes) and WithArgs.Command (%d bytes) differ", args, viaTransform.Len(), len(direct))
		}
		if !slices.Equal(cmd.Args[1:], wa.Args(flac, out)) {
			t.Errorf("args %q: Command runs %q, Args says %q", args, cmd.Args[1:], wa.Args(flac, out))
		}
	}

	// The defaults of WithArgs("-ac 1") plus an object's "-ar 8000".
	mono, err := w.WithArgs("-ac 1")
	if err != nil {
		t.Fatal(err)
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "a.flac"}, Path: flac}, Args: "-ar 8000"}
	var out bytes.Buffer
	if err := mono.Transform(t.Context(), in, &out); err != nil {
		t.Fatal(err)
	}
	checkWAV(t, out.Bytes(), 1, 8000, time.Second)
	// w itself is unchanged.
	if got := w.Args("in", "out"); !slices.Contains(got, "2") || !slices.Contains(got, "44100") {
		t.Errorf("w's args changed by WithArgs: %q", got)
	}
	emptyDir(t, tmp)
}

// AllowArgs narrows what a job may pass; an empty list allows nothing.
func TestAllowArgs(t *testing.T) {
	t.Parallel()
	bin, log := spyFFmpeg(t)
	names := func(args []ffmpeg.Arg) (s []string) {
		for _, a := range args {
			s = append(s, a.Name)
		}
		return s
	}
	for _, tc := range []struct {
		allow    []string
		names    []string
		ok, fail []string // args accepted and refused, with the error's text
		failWith string
	}{
		{nil, []string{"-ac", "-ar", "-sample_fmt", "-c:a"}, []string{"-ac 1 -ar 16000 -c:a pcm_s24le", "-sample_fmt dbl"}, nil, ""},
		{[]string{"-ar"}, []string{"-ar"}, []string{"-ar 16000", ""}, []string{"-ac 1", "-ar 8000 -c:a pcm_u8"}, "is not an allowed option here (this transcoder's WAVOptions.AllowArgs leave it out); allowed: -ar"},
		{[]string{"-acodec", "-c:a", "-ac"}, []string{"-c:a", "-ac"}, []string{"-codec:a pcm_u8 -ac 2"}, []string{"-sample_fmt u8"}, "allowed: -c:a, -ac"},
		{[]string{}, nil, []string{"", "  "}, []string{"-ac 1", "-ac 2"}, "allowed: none"},
	} {
		w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Binary: bin, AllowArgs: tc.allow})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(w.AllowedArgs()); !slices.Equal(got, tc.names) {
			t.Errorf("AllowArgs %q: AllowedArgs = %q, want %q", tc.allow, got, tc.names)
		}
		for _, a := range tc.ok {
			if _, err := w.WithArgs(a); err != nil {
				t.Errorf("AllowArgs %q: WithArgs(%q) = %v", tc.allow, a, err)
			}
		}
		for _, a := range tc.fail {
			_, err := w.WithArgs(a)
			if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), tc.failWith) {
				t.Errorf("AllowArgs %q: WithArgs(%q) = %v, want InvalidArgument with %q", tc.allow, a, err, tc.failWith)
			}
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "x"}, Path: testutil.Testdata(t, "test-audio-flac.flac")}, Args: a}
			if err := w.Transform(t.Context(), in, io.Discard); !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("AllowArgs %q: Transform with args %q = %v, want InvalidArgument", tc.allow, a, err)
			}
		}
	}

	// The allow-list a transcoder returns is a copy: changing it changes
	// nothing.
	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	got := w.AllowedArgs()
	got[0].Name = "-i"
	got[3].Aliases[0] = "-f"
	if _, err := w.WithArgs("-i x"); err == nil {
		t.Error("-i accepted after a change to the slice AllowedArgs returned")
	}
	if _, err := w.WithArgs("-f wav"); err == nil {
		t.Error("-f accepted after a change to the slice AllowedArgs returned")
	}
	if _, err := w.WithArgs("-ac 1 -acodec pcm_u8"); err != nil {
		t.Error(err)
	}
	if n := starts(t, log); n != 0 {
		t.Errorf("ffmpeg was started %d times", n)
	}
}

// AllowedArgs returns a new slice each time, and each option accepts
// exactly the values its Values field lists.
func TestAllowedArgsDocumented(t *testing.T) {
	t.Parallel()
	args := ffmpeg.AllowedArgs()
	args[0].Name, args[0].Aliases = "-i", nil
	args = ffmpeg.AllowedArgs()
	if args[0].Name != "-ac" {
		t.Fatalf("AllowedArgs changed by a caller: %q", args[0].Name)
	}
	for _, a := range args {
		if a.Doc == "" || a.Values == "" || !strings.HasPrefix(a.String(), a.Name) {
			t.Errorf("%q is not documented: %v", a.Name, a)
		}
		var values []string
		if list, ok := strings.CutPrefix(a.Values, "one of "); ok {
			values = strings.Split(list, ", ")
		} else if a.Values == "1 to 8" {
			values = []string{"1", "2", "3", "4", "5", "6", "7", "8"}
			if err := ffmpeg.CheckArgs(a.Name + " 9"); err == nil {
				t.Errorf("%s 9 accepted", a.Name)
			}
		} else {
			t.Fatalf("%s: unexpected Values %q", a.Name, a.Values)
		}
		for _, name := range append([]string{a.Name}, a.Aliases...) {
			for _, v := range values {
				if err := ffmpeg.CheckArgs(name + " " + v); err != nil {
					t.Errorf("%s lists %q, but: %v", name, v, err)
				}
			}
			if err := ffmpeg.CheckArgs(name + " " + values[0] + "x"); err == nil {
				t.Errorf("%s %sx accepted", name, values[0])
			}
		}
	}
}
