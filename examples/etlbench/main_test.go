package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/transform/ffmpeg"
)

func requireTools(t *testing.T) {
	t.Helper()
	testutil.RequireTool(t, "ffmpeg", ffmpeg.InstallHint)
	testutil.RequireTool(t, "versitygw", s3test.InstallHint)
}

func requireWeed(t *testing.T) {
	t.Helper()
	testutil.RequireTool(t, "weed", seaweedfstest.InstallHint)
}

// runMain runs the program with args and returns its status and output.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(t.Context(), args, &stdout, &stderr)
	t.Logf("etlbench %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), status, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func readResults(t *testing.T, path string) results {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSmoke runs the whole benchmark on a few short clips, once: every
// configuration must produce one valid WAV per input, identical to the
// floor's (etlbench checks that after each run and fails the row
// otherwise), and the table and the JSON must have a row for each.
// Nothing here looks at the timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("every configuration of the benchmark, end to end: a long test")
	}
	requireTools(t)
	requireWeed(t)
	work := t.TempDir()
	jsonFile := filepath.Join(t.TempDir(), "out.json")
	status, stdout, stderr := runMain(t, "-n", "6", "-min-duration", "1s", "-max-duration", "1500ms",
		"-repeat", "1", "-work", work, "-json", jsonFile)
	if status != 0 {
		t.Fatalf("status %d, want 0; stderr:\n%s", status, stderr)
	}
	res := readResults(t, jsonFile)
	if res.Objects != 6 || res.Repeat != 1 {
		t.Errorf("objects %d, repeat %d; want 6 and 1", res.Objects, res.Repeat)
	}
	modes := map[string]int{}
	for _, r := range res.Rows {
		modes[r.Mode]++
		if r.Error != "" {
			t.Errorf("%s: %s", r.Config, r.Error)
		}
		if len(r.Runs) != 1 || r.Seconds <= 0 || r.ObjectsPerSecond <= 0 || r.RatioToFloor <= 0 || r.RatioToBatchedFloor <= 0 || r.SpeedupOverBaseline <= 0 {
			t.Errorf("%s: incomplete row %+v", r.Config, r)
		}
		if !strings.Contains(stdout, r.Config) {
			t.Errorf("the table has no row %q", r.Config)
		}
		if r.PeakRSS <= 0 {
			t.Errorf("%s: peak RSS %d", r.Config, r.PeakRSS)
		}
	}
	if modes["floor"] != 1 || modes["floor-batched"] != 1 || modes["client-side"] != 2 || modes["embedded"] != 2 || modes["sidecar"] != 16 || modes["remote"] != 14 ||
		modes["seaweedfs-remote"] != 3 || modes["seaweedfs-client-side"] != 1 {
		t.Errorf("rows by mode %v; want the two floors, the client-side baseline per file and batched, the embedded mode per file and batched, "+
			"12 sidecar and 12 remote configurations per file and 4 and 2 batched, and on SeaweedFS 3 remote configurations and a client-side baseline", modes)
	}
	// The batched rows are the ones named so, and only they.
	batched := 0
	for _, r := range res.Rows {
		if named := strings.Contains(r.Config, "batch"); named != (r.Batch == 16) || (r.Batch != 0 && r.Batch != 16) {
			t.Errorf("%s: batch %d", r.Config, r.Batch)
		}
		if r.Batch > 0 {
			batched++
		}
	}
	if batched != 9 || res.Settings.BatchSize != 16 {
		t.Errorf("%d batched rows, batch size %d; want 9 (the floor, the client-side baseline, embedded, 4 sidecar, 2 remote) and 16", batched, res.Settings.BatchSize)
	}
	// -table prints the same table from the file.
	var again bytes.Buffer
	if st := run(t.Context(), []string{"-table", jsonFile}, &again, io.Discard); st != 0 {
		t.Fatalf("-table: status %d", st)
	}
	if i := strings.Index(stdout, "\n6 objects"); i < 0 || again.String() != stdout[i:] {
		t.Errorf("-table printed\n%s\nwant the run's table\n%s", &again, stdout[max(i, 0):])
	}
	if want := 4 + len((&bench{}).clusterConfigs()) + len((&bench{}).seaweedfsConfigs()); len(res.Rows) != want {
		t.Errorf("%d rows, want %d", len(res.Rows), want)
	}
	// Each run's outputs were checked and then removed: nothing is left
	// behind in the stores but the inputs.
	for _, c := range []string{"cluster", "cluster-batched"} {
		for _, n := range []string{"n1", "n2", "n3"} {
			ents, err := os.ReadDir(filepath.Join(work, c, n))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name() != srcBucket {
					t.Errorf("node %s of %s still holds %s", n, c, e.Name())
				}
			}
		}
	}
}

// TestBadInput: an input ffmpeg cannot decode fails the floor, and with it
// the whole benchmark, with a message naming the file.
func TestBadInput(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg", ffmpeg.InstallHint)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "text.flac"), []byte("not audio at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, _, stderr := runMain(t, "-src", src, "-repeat", "1", "-baseline=false", "-seaweedfs=false", "-work", t.TempDir(), "-q")
	if status != 1 {
		t.Fatalf("status %d, want 1", status)
	}
	if !strings.Contains(stderr, "the floor failed") || !strings.Contains(stderr, "text.flac") {
		t.Errorf("stderr does not say the floor failed on text.flac:\n%s", stderr)
	}
}

// TestSource: -src takes the .flac files of a directory tree, keeping
// their relative paths as keys, and leaves other files alone.
func TestSource(t *testing.T) {
	requireTools(t)
	src := t.TempDir()
	flac, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/one.flac", "a/b/two.flac", "three.flac"} {
		path := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, flac, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "notes.txt"), []byte("skip me"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonFile := filepath.Join(t.TempDir(), "out.json")
	status, stdout, _ := runMain(t, "-src", src, "-repeat", "1", "-ac", "2", "-ar", "22050", "-work", t.TempDir(), "-json", jsonFile,
		"-only", "^(client-side|embedded|sidecar/hpull bytes put-via-runner$|remote/ws local-file direct-put$)")
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	if !strings.Contains(stdout, "3 inputs") {
		t.Errorf("stdout does not count 3 inputs")
	}
	res := readResults(t, jsonFile)
	if res.Objects != 3 || res.InputBytes != 3*int64(len(flac)) {
		t.Errorf("objects %d, input bytes %d; want 3 and %d", res.Objects, res.InputBytes, 3*len(flac))
	}
	if len(res.Rows) != 8 {
		t.Errorf("%d rows, want 8 (-only, the two floors, and each of client-side and embedded per file and batched)", len(res.Rows))
	}
	for _, r := range res.Rows {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Config, r.Error)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-repeat", "0"},
		{"-min-duration", "10ms"},
		{"-min-duration", "5s", "-max-duration", "4s"},
		{"-ac", "0"},
		{"-nodes", "0"},
		{"-node-workers", "-1"},
		{"-ffmpeg-slots", "-1"},
		{"-baseline-workers", "0"},
		{"-batch", "0"},
		{"-batch", "257"},
		{"-only", "("},
		{"extra"},
	} {
		var stderr bytes.Buffer
		if status := run(t.Context(), args, &bytes.Buffer{}, &stderr); status != 2 {
			t.Errorf("%q: status %d, want 2", args, status)
		}
		if !strings.Contains(stderr.String(), "Usage: etlbench") {
			t.Errorf("%q: no usage on stderr", args)
		}
	}
	if status := run(t.Context(), []string{"-h"}, &bytes.Buffer{}, &bytes.Buffer{}); status != 0 {
		t.Errorf("-h: status %d, want 0", status)
	}
}

// TestClipSpec: the clips are 16 kHz mono, their lengths spread over the
// range asked for, and the same seed gives the same set.
func TestClipSpec(t *testing.T) {
	spec := clipSpec(7, 5*time.Second, 15*time.Second)
	var short, long int
	seeds := map[int]bool{}
	for i := range 300 {
		s := spec(i)
		if s.SampleRate != 16000 || s.Channels != 1 {
			t.Fatalf("clip %d: %+v, want 16 kHz mono", i, s)
		}
		if s.Duration < 5*time.Second || s.Duration > 15*time.Second {
			t.Fatalf("clip %d: %v long, want 5–15 s", i, s.Duration)
		}
		if s.Duration < 7*time.Second {
			short++
		}
		if s.Duration > 13*time.Second {
			long++
		}
		if s != clipSpec(7, 5*time.Second, 15*time.Second)(i) {
			t.Fatalf("clip %d: not deterministic", i)
		}
		seeds[s.Seed] = true
	}
	if short < 30 || long < 30 {
		t.Errorf("%d clips under 7 s and %d over 13 s of 300: not spread over 5–15 s", short, long)
	}
	if len(seeds) != 300 {
		t.Errorf("%d distinct sounds for 300 clips", len(seeds))
	}
	if clipSpec(8, 5*time.Second, 15*time.Second)(0) == spec(0) {
		t.Errorf("seeds 7 and 8 give the same first clip")
	}
	if s := clipSpec(1, time.Second, time.Second)(3); s.Duration != time.Second {
		t.Errorf("a 1s–1s range gives %v", s.Duration)
	}
}

func TestCompare(t *testing.T) {
	b := &bench{want: map[string]bool{"a.wav": true, "b.wav": true, "c.wav": true}}
	ref := map[string]uint64{"a.wav": 1, "b.wav": 2, "c.wav": 3}
	if err := b.compare(ref, nil); err != nil {
		t.Fatalf("the floor's own outputs: %v", err)
	}
	if err := b.compare(map[string]uint64{"a.wav": 1, "b.wav": 2, "c.wav": 3}, ref); err != nil {
		t.Fatalf("identical outputs: %v", err)
	}
	for _, tc := range []struct {
		sums map[string]uint64
		want string
	}{
		{map[string]uint64{"a.wav": 1, "b.wav": 2}, "1 outputs missing (first: c.wav)"},
		{map[string]uint64{"a.wav": 1, "b.wav": 2, "c.wav": 3, "d.wav": 4}, "1 outputs unexpected (first: d.wav)"},
		{map[string]uint64{"a.wav": 1, "b.wav": 9, "c.wav": 9}, "2 outputs different from the floor's (first: b.wav)"},
	} {
		err := b.compare(tc.sums, ref)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.sums, err, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestProcStatus(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	rss, ok := procStatus("VmRSS:")
	hwm, ok2 := procStatus("VmHWM:")
	if !ok || !ok2 || rss <= 0 || hwm < rss {
		t.Fatalf("VmRSS %d (%v), VmHWM %d (%v)", rss, ok, hwm, ok2)
	}
	s := startRSS(time.Millisecond)
	defer s.close()
	s.reset()
	// statm and status count the same pages.
	if p := s.peak(); p < rss/2 || p > 2*hwm {
		t.Fatalf("peak %d from statm; VmRSS %d, VmHWM %d", p, rss, hwm)
	}
	if _, ok := procStatus("NoSuchField:"); ok {
		t.Fatal("found a field that does not exist")
	}
}

// TestSlots: at most n transforms run at once before their first output
// byte, and a slot is given back at that byte, so that writing the
// output overlaps with the next transform.
func TestSlots(t *testing.T) {
	const n = 2
	var running, peak atomic.Int32
	wrote := make(chan struct{})
	proceed := make(chan struct{})
	inner := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		v := running.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		running.Add(-1) // the "ffmpeg run" ends here
		if _, err := out.Write([]byte("x")); err != nil {
			return err
		}
		if in.Args == "hold" {
			wrote <- struct{}{}
			<-proceed // still streaming the output, slot released
		}
		return nil
	})
	tr := limit(inner, n)
	ctx := t.Context()

	// Two transforms hold on after their first byte: their slots are free,
	// so others still run.
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- tr.Transform(ctx, &insitu.Input{Args: "hold"}, io.Discard) }()
		<-wrote
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := tr.Transform(ctx, &insitu.Input{}, io.Discard); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(proceed)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p < 1 || p > n {
		t.Fatalf("%d ran at once, want at most %d", p, n)
	}

	// A canceled context gives up waiting for a slot.
	full := limit(insitu.TransformFunc(func(ctx context.Context, _ *insitu.Input, _ io.Writer) error {
		<-ctx.Done()
		return ctx.Err()
	}), 1)
	c1, cancel1 := context.WithCancel(ctx)
	go full.Transform(c1, &insitu.Input{}, io.Discard)
	c2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := full.Transform(c2, &insitu.Input{}, io.Discard); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a full limit: %v, want the context's deadline", err)
	}
	cancel1()
	if _, wrapped := limit(inner, 0).(*slots); wrapped {
		t.Error("limit 0 wraps the transform")
	}
}

// TestMissingWeed: the SeaweedFS rows without weed on PATH are a missing
// tool (status 2) that says how to install it; -seaweedfs=false, or an
// -only that leaves them out, does without.
func TestMissingWeed(t *testing.T) {
	ffmpegPath := testutil.RequireTool(t, "ffmpeg", ffmpeg.InstallHint)
	bin := t.TempDir()
	if err := os.Symlink(ffmpegPath, filepath.Join(bin, "ffmpeg")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	status, _, stderr := runMain(t, "-n", "1", "-min-duration", "100ms", "-max-duration", "100ms", "-repeat", "1",
		"-baseline=false", "-work", t.TempDir(), "-q")
	if status != 2 || !strings.Contains(stderr, seaweedfstest.InstallHint) || !strings.Contains(stderr, "-seaweedfs=false") {
		t.Errorf("status %d, want 2 with the install line and -seaweedfs=false", status)
	}
	for _, args := range [][]string{{"-seaweedfs=false"}, {"-only", "^embedded"}} {
		args = append([]string{"-n", "1", "-min-duration", "100ms", "-max-duration", "100ms", "-repeat", "1", "-baseline=false", "-work", t.TempDir(), "-q"}, args...)
		if status, _, _ := runMain(t, args...); status != 0 {
			t.Errorf("%v: status %d, want 0", args, status)
		}
	}
}

// batchOf is a BatchTransform for TestBatchSlots: each batch call runs
// batch, each single call single.
type batchOf struct {
	single func() error
	batch  func(n int) error
}

func (b batchOf) Transform(context.Context, *insitu.Input, io.Writer) error { return b.single() }

func (b batchOf) TransformBatch(_ context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	if err := b.batch(len(ins)); err != nil {
		return nil, err
	}
	outs := make([]io.ReadCloser, len(ins))
	for i := range outs {
		outs[i] = io.NopCloser(strings.NewReader("out"))
	}
	return outs, nil
}

// TestBatchSlots: a batch takes one slot for its whole call, as a single
// object does, and the limited transform still takes batches.
func TestBatchSlots(t *testing.T) {
	const n = 2
	var running, peak atomic.Int32
	entered := make(chan struct{}, 3*n)
	proceed := make(chan struct{})
	enter := func() error {
		v := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		entered <- struct{}{}
		<-proceed
		return nil
	}
	inner := batchOf{single: enter, batch: func(int) error { return enter() }}
	lim := limitBatch(inner, n)
	if _, ok := any(lim).(insitu.BatchTransform); !ok {
		t.Fatal("the limited transform does not take batches")
	}
	ins := []*insitu.Input{{}, {}, {}}
	var wg sync.WaitGroup
	for i := range 3 * n {
		wg.Go(func() {
			var err error
			if i%3 == 0 {
				err = lim.Transform(t.Context(), &insitu.Input{}, io.Discard)
			} else {
				var outs []io.ReadCloser
				outs, err = lim.TransformBatch(t.Context(), ins)
				if len(outs) != len(ins) && err == nil {
					err = errors.New("wrong number of outputs")
				}
				for _, o := range outs {
					o.Close()
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	for range n {
		<-entered // n calls hold their slots
	}
	if r := running.Load(); r != n {
		t.Errorf("%d calls running with %d slots", r, n)
	}
	close(proceed)
	wg.Wait()
	if p := peak.Load(); p != n {
		t.Errorf("%d calls ran at once, want %d", p, n)
	}
	if _, wrapped := limitBatch(inner, 0).(batchSlots); wrapped {
		t.Error("limitBatch 0 wraps the transform")
	}
}
