package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// upperBatch is a BatchTransform that upper-cases its inputs and records
// its calls. A batch holding the input "bad" fails, and "bad" alone fails
// with InvalidArgument; a batch holding "panic" panics, while "panic"
// alone is fine; a batch holding "wait" waits for its context to end, one
// holding "gate" says so on entered and waits for gate to close.
type upperBatch struct {
	entered      chan struct{}
	gate         chan struct{}
	mu           sync.Mutex
	sizes        []int // of the TransformBatch calls
	alone        atomic.Int32
	made, closed atomic.Int32 // batch outputs
}

func (u *upperBatch) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	u.alone.Add(1)
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	if string(data) == "bad" {
		return insitu.Errorf(insitu.InvalidArgument, "the input is bad")
	}
	_, err = out.Write(bytes.ToUpper(data))
	return err
}

func (u *upperBatch) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	u.mu.Lock()
	u.sizes = append(u.sizes, len(ins))
	u.mu.Unlock()
	datas := make([][]byte, len(ins))
	for i, in := range ins {
		data, err := io.ReadAll(in.Body)
		if err != nil {
			return nil, err
		}
		switch string(data) {
		case "bad":
			return nil, errors.New("an input of the batch is bad")
		case "panic":
			panic("an input of the batch makes it panic")
		case "wait":
			<-ctx.Done()
			return nil, ctx.Err()
		case "gate":
			u.entered <- struct{}{}
			select {
			case <-u.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		datas[i] = data
	}
	outs := make([]io.ReadCloser, len(ins))
	for i, d := range datas {
		outs[i] = &countedOutput{Reader: bytes.NewReader(bytes.ToUpper(d)), closed: &u.closed}
	}
	u.made.Add(int32(len(outs)))
	return outs, nil
}

func (u *upperBatch) batchSizes() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.sizes)
}

type countedOutput struct {
	*bytes.Reader
	closed *atomic.Int32
}

func (c *countedOutput) Close() error { c.closed.Add(1); return nil }

// batchRig is a server of an upperBatch whose inputs are files under root
// and, the same bytes, objects of a source server.
type batchRig struct {
	t     *testing.T
	s     *Server
	base  string
	root  string
	src   string
	tr    *upperBatch
	input map[string]string
}

func newBatchRig(t *testing.T, batch *BatchOptions, input map[string]string) *batchRig {
	t.Helper()
	r := &batchRig{t: t, root: t.TempDir(), tr: &upperBatch{}, input: input}
	for k, v := range input {
		if err := os.WriteFile(filepath.Join(r.root, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		v, ok := input[strings.TrimPrefix(req.URL.Path, "/")]
		if !ok || v == "missing" {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, v)
	}))
	t.Cleanup(src.Close)
	r.src = src.URL
	r.s, r.base = startServer(t, r.tr, &ServerOptions{Roots: []string{r.root}, Batch: batch})
	return r
}

// batchModes are the client options whose inputs the server can group.
var batchModes = []struct {
	name   string
	mode   Mode
	source bool // by source URL, else by local file
}{
	{"ws, local file", WS, false},
	{"hpush, local file", HPush, false},
	{"hpull, local file", HPull, false},
	{"ws, source URL", WS, true},
	{"hpull, source URL", HPull, true},
}

func (r *batchRig) dial(mode Mode, source bool, o DialOptions) *Client {
	r.t.Helper()
	o.Mode = mode
	o.Logger = quietLogger()
	if source {
		o.SourceURL = func(obj insitu.Object) (string, string, error) { return r.src + "/" + obj.Name.Key, "", nil }
	} else {
		o.LocalFile = true
	}
	c, err := Dial(testCtx(r.t), r.base, &o)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func (r *batchRig) in(key string) *insitu.Input {
	return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: key}, Size: -1, Path: filepath.Join(r.root, key)}}
}

type outcome struct {
	out string
	err error
}

// transformAll transforms the objects of keys at once and returns what
// each got.
func (r *batchRig) transformAll(ctx context.Context, c *Client, keys []string) map[string]outcome {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		got = make(map[string]outcome)
	)
	for _, k := range keys {
		wg.Go(func() {
			var out bytes.Buffer
			err := c.Transform(ctx, r.in(k), &out)
			mu.Lock()
			got[k] = outcome{out.String(), err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// check wants every object but those of fails byte-exact, and those
// failed with their code.
func (r *batchRig) check(what string, got map[string]outcome, fails map[string]insitu.Code) {
	r.t.Helper()
	for k, o := range got {
		if code, ok := fails[k]; ok {
			if !errors.Is(o.err, code) || !strings.Contains(o.err.Error(), k) {
				r.t.Errorf("%s, %s: %q, %v; want %v naming it", what, k, o.out, o.err, code)
			}
			continue
		}
		if want := strings.ToUpper(r.input[k]); o.err != nil || o.out != want {
			r.t.Errorf("%s, %s: %q, %v; want %q", what, k, o.out, o.err, want)
		}
	}
	if made, closed := r.tr.made.Load(), r.tr.closed.Load(); made != closed {
		r.t.Errorf("%s: %d batch outputs made, %d closed", what, made, closed)
	}
}

func inputs(n int, special map[int]string) (map[string]string, []string) {
	input := make(map[string]string)
	var keys []string
	for i := range n {
		k := fmt.Sprintf("obj-%02d", i)
		input[k] = fmt.Sprintf("object %d, %s", i, strings.Repeat("abc", i*100))
		if v, ok := special[i]; ok {
			input[k] = v
		}
		keys = append(keys, k)
	}
	return input, keys
}

// TestBatchGroups: requests that arrive together, over several connections
// of every transport whose input can be read again, go to TransformBatch
// in batches of Size (24 requests, Size 4: six full batches, the long Wait
// never reached), and each gets exactly its own output.
func TestBatchGroups(t *testing.T) {
	t.Parallel()
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			input, keys := inputs(24, nil)
			r := newBatchRig(t, &BatchOptions{Size: 4, Wait: 10 * time.Second}, input)
			c := r.dial(m.mode, m.source, DialOptions{})
			got := r.transformAll(testCtx(t), c, keys)
			r.check(m.name, got, nil)
			if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{4, 4, 4, 4, 4, 4}) || r.tr.alone.Load() != 0 {
				t.Errorf("%s: batches of %v and %d alone; want six of 4", m.name, sizes, r.tr.alone.Load())
			}
		})
	}
}

// TestBatchBadInput: a batch that fails (an input the transform refuses,
// a source that has not the object) or panics is done again one object at
// a time, so that only the bad object fails, with its own code, and the
// others get their bytes.
func TestBatchBadInput(t *testing.T) {
	t.Parallel()
	for _, m := range batchModes {
		for _, bad := range []string{"bad", "panic", "missing"} {
			if bad == "missing" && !m.source {
				continue
			}
			t.Run(m.name+", "+bad, func(t *testing.T) {
				t.Parallel()
				input, keys := inputs(6, map[int]string{3: bad})
				r := newBatchRig(t, &BatchOptions{Size: 6, Wait: 10 * time.Second}, input)
				c := r.dial(m.mode, m.source, DialOptions{})
				got := r.transformAll(testCtx(t), c, keys)
				fails := map[string]insitu.Code{}
				switch bad {
				case "bad":
					fails[keys[3]] = insitu.InvalidArgument
				case "missing":
					fails[keys[3]] = insitu.NotFound
				}
				r.check(m.name, got, fails)
				alone := int32(6)
				if bad == "missing" {
					alone = 5 // the missing one fails at its fetch
				}
				if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{6}) || r.tr.alone.Load() != alone {
					t.Errorf("%s: batches of %v and %d alone; want one of 6, then %d alone", m.name, sizes, r.tr.alone.Load(), alone)
				}
			})
		}
	}
}

// TestBatchOneSlot: a batch takes one transform slot for all its
// requests, which hold none while they wait for it: with one slot,
// batches still fill up.
func TestBatchOneSlot(t *testing.T) {
	t.Parallel()
	input, keys := inputs(8, nil)
	r := &batchRig{t: t, root: t.TempDir(), tr: &upperBatch{}, input: input}
	for k, v := range input {
		if err := os.WriteFile(filepath.Join(r.root, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.s, r.base = startServer(t, r.tr, &ServerOptions{MaxConcurrent: 1, Roots: []string{r.root}, Batch: &BatchOptions{Size: 4, Wait: 10 * time.Second}})
	got := r.transformAll(testCtx(t), r.dial(WS, false, DialOptions{}), keys)
	r.check("one slot", got, nil)
	if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{4, 4}) {
		t.Errorf("batches of %v; want two of 4", sizes)
	}
}

// TestBatchOff: with Size 1, and for inputs that travel with their request
// (which could not be given again after a failed batch), every object is
// transformed alone, as by a transform that takes no batches.
func TestBatchOff(t *testing.T) {
	t.Parallel()
	input, keys := inputs(8, map[int]string{5: "bad"})
	fails := map[string]insitu.Code{keys[5]: insitu.InvalidArgument}

	r := newBatchRig(t, &BatchOptions{Size: 1}, input)
	if r.s.batch != nil {
		t.Error("Size 1: the server batches")
	}
	for _, m := range batchModes {
		r.check("Size 1, "+m.name, r.transformAll(testCtx(t), r.dial(m.mode, m.source, DialOptions{}), keys), fails)
	}
	if sizes := r.tr.batchSizes(); len(sizes) != 0 || int(r.tr.alone.Load()) != len(keys)*len(batchModes) {
		t.Errorf("Size 1: batches of %v and %d alone; want none and all alone", sizes, r.tr.alone.Load())
	}

	r = newBatchRig(t, &BatchOptions{Size: 8, Wait: 10 * time.Second}, input)
	for _, mode := range []Mode{WS, HPush} {
		c, err := Dial(testCtx(t), r.base, &DialOptions{Mode: mode, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := make(map[string]outcome)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() {
				var out bytes.Buffer
				in := r.in(k)
				in.Body = strings.NewReader(input[k])
				err := c.Transform(testCtx(t), in, &out)
				mu.Lock()
				got[k] = outcome{out.String(), err}
				mu.Unlock()
			})
		}
		wg.Wait()
		r.check(mode.String()+", bytes", got, fails)
	}
	if sizes := r.tr.batchSizes(); len(sizes) != 0 || int(r.tr.alone.Load()) != 2*len(keys) {
		t.Errorf("pushed bytes: batches of %v and %d alone; want none and all alone", sizes, r.tr.alone.Load())
	}
}

// TestBatchCancelWhileGathering: a request canceled while its batch is
// gathered leaves it, and the batch goes on without it.
func TestBatchCancelWhileGathering(t *testing.T) {
	t.Parallel()
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			input, keys := inputs(3, nil)
			// A batch goes only when full: three requests, the first of
			// them gone by then.
			r := newBatchRig(t, &BatchOptions{Size: 3, Wait: time.Hour}, input)
			joined, left := make(chan insitu.Name, 3), make(chan insitu.Name, 3)
			r.s.batch.onJoin = func(n insitu.Name) { joined <- n }
			r.s.batch.onLeave = func(n insitu.Name) { left <- n }
			c := r.dial(m.mode, m.source, DialOptions{})

			ctx, cancel := context.WithCancel(testCtx(t))
			done := make(chan error, 1)
			go func() { done <- c.Transform(ctx, r.in(keys[0]), io.Discard) }()
			if n := <-joined; n.Key != keys[0] {
				t.Fatalf("%s joined, want %s", n, keys[0])
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("the canceled request: %v, want context.Canceled", err)
			}
			if n := <-left; n.Key != keys[0] {
				t.Fatalf("%s left, want %s", n, keys[0])
			}
			got := r.transformAll(testCtx(t), c, keys[1:])
			r.check(m.name, got, nil)
			if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{2}) || r.tr.alone.Load() != 0 {
				t.Errorf("batches of %v and %d alone; want one of 2", sizes, r.tr.alone.Load())
			}
		})
	}
}

// TestBatchDeadline: requests whose deadline passes while their batch
// runs fail with DeadlineExceeded, each at its own deadline, and the batch
// call is canceled once all of them are gone (goleak sees it end).
func TestBatchDeadline(t *testing.T) {
	t.Parallel()
	input, keys := inputs(2, map[int]string{0: "wait"})
	r := newBatchRig(t, &BatchOptions{Size: 2, Wait: 10 * time.Second}, input)
	for _, mode := range []Mode{WS, HPull} {
		c := r.dial(mode, false, DialOptions{Timeout: 500 * time.Millisecond})
		got := r.transformAll(testCtx(t), c, keys)
		for k, o := range got {
			if !errors.Is(o.err, insitu.DeadlineExceeded) {
				t.Errorf("%s, %s: %v, want DeadlineExceeded", mode, k, o.err)
			}
		}
	}
	if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{2, 2}) {
		t.Errorf("batches of %v; want two of 2", sizes)
	}
}

// TestBatchLeaveWhileRunning: a request whose deadline passes while its
// batch runs fails at once; the batch goes on for the others, and the
// output made for the one that left is closed unread.
func TestBatchLeaveWhileRunning(t *testing.T) {
	t.Parallel()
	input, keys := inputs(2, map[int]string{1: "gate"})
	r := newBatchRig(t, &BatchOptions{Size: 2, Wait: 10 * time.Second}, input)
	r.tr.entered, r.tr.gate = make(chan struct{}, 1), make(chan struct{})
	joined, left := make(chan insitu.Name, 2), make(chan insitu.Name, 1)
	r.s.batch.onJoin = func(n insitu.Name) { joined <- n }
	r.s.batch.onLeave = func(n insitu.Name) { left <- n }
	short := r.dial(WS, false, DialOptions{Timeout: 300 * time.Millisecond})
	long := r.dial(HPull, false, DialOptions{})
	done := make(chan outcome, 1)
	go func() {
		var out bytes.Buffer
		err := long.Transform(testCtx(t), r.in(keys[1]), &out)
		done <- outcome{out.String(), err}
	}()
	<-joined // the long request is in first, so the short one cannot be alone
	if err := short.Transform(testCtx(t), r.in(keys[0]), io.Discard); !errors.Is(err, insitu.DeadlineExceeded) {
		t.Errorf("the request past its deadline: %v, want DeadlineExceeded", err)
	}
	<-r.tr.entered
	if n := <-left; n.Key != keys[0] {
		t.Errorf("%s left, want %s", n, keys[0])
	}
	close(r.tr.gate)
	if o := <-done; o.err != nil || o.out != "GATE" {
		t.Errorf("the request that stayed: %q, %v; want GATE", o.out, o.err)
	}
	if made, closed := r.tr.made.Load(), r.tr.closed.Load(); made != 2 || closed != 2 {
		t.Errorf("%d batch outputs made, %d closed; want 2 and 2", made, closed)
	}
}

// TestBatchShutdown: Shutdown waits for a running batch and its requests'
// answers; forced, it ends the batch call and its requests fail with
// Unavailable.
func TestBatchShutdown(t *testing.T) {
	t.Parallel()
	for _, forced := range []bool{false, true} {
		t.Run(fmt.Sprint("forced=", forced), func(t *testing.T) {
			t.Parallel()
			input, keys := inputs(2, map[int]string{1: "gate"})
			r := newBatchRig(t, &BatchOptions{Size: 2, Wait: 10 * time.Second}, input)
			r.tr.entered, r.tr.gate = make(chan struct{}, 1), make(chan struct{})
			c := r.dial(HPull, false, DialOptions{})
			all := make(chan map[string]outcome, 1)
			go func() { all <- r.transformAll(testCtx(t), c, keys) }()
			<-r.tr.entered
			ctx, cancel := context.WithCancel(testCtx(t))
			shut := make(chan error, 1)
			go func() { shut <- r.s.Shutdown(ctx) }()
			if forced {
				cancel()
				if err := <-shut; !errors.Is(err, context.Canceled) {
					t.Errorf("forced Shutdown: %v", err)
				}
				for k, o := range <-all {
					if !errors.Is(o.err, insitu.Unavailable) {
						t.Errorf("%s: %v, want Unavailable", k, o.err)
					}
				}
				return
			}
			defer cancel()
			select {
			case err := <-shut:
				t.Errorf("Shutdown returned %v while a batch ran", err)
			default:
			}
			close(r.tr.gate)
			r.check("Shutdown", <-all, nil)
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := c.Transform(testCtx(t), r.in(keys[0]), io.Discard); !errors.Is(err, insitu.Unavailable) {
				t.Errorf("a request after Shutdown: %v, want Unavailable", err)
			}
		})
	}
}

// TestBatchDirectPut: a batch's outputs go to each request's direct-put
// destination, whole.
func TestBatchDirectPut(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	stored := map[string]string{}
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		mu.Lock()
		stored[req.URL.Path] = string(b)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]int{"size": len(b)})
	}))
	defer dst.Close()
	input, keys := inputs(6, nil)
	r := newBatchRig(t, &BatchOptions{Size: 6, Wait: 10 * time.Second}, input)
	for _, mode := range []Mode{WS, HPush, HPull} {
		c := r.dial(mode, false, DialOptions{})
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() {
				res, err := c.TransformTo(testCtx(t), r.in(k), insitu.Destination{URL: dst.URL + "/" + mode.String() + "/" + k})
				if want := int64(len(input[k])); err != nil || res.Size != want {
					t.Errorf("%s, %s: %+v, %v; want %d bytes stored", mode, k, res, err, want)
				}
			})
		}
		wg.Wait()
		for _, k := range keys {
			if got, want := stored["/"+mode.String()+"/"+k], strings.ToUpper(input[k]); got != want {
				t.Errorf("%s, %s: stored %q, want %q", mode, k, got, want)
			}
		}
	}
	if sizes := r.tr.batchSizes(); !slices.Equal(sizes, []int{6, 6, 6}) || r.tr.alone.Load() != 0 {
		t.Errorf("batches of %v and %d alone; want three of 6", sizes, r.tr.alone.Load())
	}
}

// TestNewServerBatchOptions: negative bounds are refused.
func TestNewServerBatchOptions(t *testing.T) {
	for _, b := range []BatchOptions{{Size: -1}, {Bytes: -1}, {Wait: -1}} {
		if _, err := NewServer(&upperBatch{}, &ServerOptions{Batch: &b}); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%+v: %v, want InvalidArgument", b, err)
		}
	}
}

// recordingWAV is ffmpeg's WAV with its batch sizes recorded.
type recordingWAV struct {
	insitu.BatchTransform
	mu    sync.Mutex
	sizes []int
}

func (w *recordingWAV) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	w.mu.Lock()
	w.sizes = append(w.sizes, len(ins))
	w.mu.Unlock()
	return w.BatchTransform.TransformBatch(ctx, ins)
}

// TestBatchFFmpeg: ffmpeg's WAV served with batches gives each FLAC file
// of a batch the bytes WAV.Transform gives it alone.
func TestBatchFFmpeg(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg; skipped with -short")
	}
	bin, err := ffmpeg.Lookup("")
	if err != nil {
		t.Skip(err)
	}
	t.Parallel()
	w, err := ffmpeg.NewWAV(nil)
	if err != nil {
		t.Fatal(err)
	}
	bt, ok := any(w).(insitu.BatchTransform)
	if !ok {
		t.Skip("ffmpeg.WAV is not a BatchTransform yet")
	}
	dir := t.TempDir()
	paths, err := ffmpegtest.GenerateSet(t.Context(), bin, dir, 4, func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: i, Duration: 300 * time.Millisecond}
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingWAV{BatchTransform: bt}
	_, base := startServer(t, rec, &ServerOptions{Roots: []string{dir}, Batch: &BatchOptions{Size: 4, Wait: 10 * time.Second}})
	c := dialLocal(t, base, DialOptions{Mode: WS, LocalFile: true})
	got := make([][]byte, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() {
			var out bytes.Buffer
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: filepath.Base(p)}, Size: -1, Path: p}}
			if err := c.Transform(testCtx(t), in, &out); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			got[i] = out.Bytes()
		})
	}
	wg.Wait()
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		err = w.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "x"}, Size: -1, Path: p}, Body: f}, &want)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[i], want.Bytes()) {
			t.Errorf("%s: %d bytes through a batch, %d alone", p, len(got[i]), want.Len())
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Equal(rec.sizes, []int{4}) {
		t.Errorf("batches of %v; want one of 4", rec.sizes)
	}
}

// openAllFirst is an upperBatch that, as ffmpeg does, opens every input
// of a batch (reads its first byte) before it reads any to the end.
type openAllFirst struct{ *upperBatch }

func (o openAllFirst) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	for _, in := range ins {
		var b [1]byte
		n, err := io.ReadFull(in.Body, b[:])
		if err != nil && err != io.EOF {
			return nil, err
		}
		in.Body = io.MultiReader(bytes.NewReader(b[:n]), in.Body)
	}
	return o.upperBatch.TransformBatch(ctx, ins)
}

// TestBatchFetchesAtOnce: a batch whose transform holds every input open
// at once fetches them all at once: the server's connections to a source
// must not run out before its batches' inputs do (with one slot and
// batches of 6, the fetches of a batch once needed more connections than
// the server kept for a host, and the batch waited until its timeout).
func TestBatchFetchesAtOnce(t *testing.T) {
	t.Parallel()
	input, keys := inputs(12, nil)
	tr := &upperBatch{}
	r := &batchRig{t: t, root: t.TempDir(), tr: tr, input: input}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, input[strings.TrimPrefix(req.URL.Path, "/")])
	}))
	t.Cleanup(src.Close)
	r.src = src.URL
	r.s, r.base = startServer(t, openAllFirst{tr}, &ServerOptions{MaxConcurrent: 1, Timeout: 20 * time.Second,
		Batch: &BatchOptions{Size: 6, Wait: 10 * time.Second}})
	got := r.transformAll(testCtx(t), r.dial(HPull, true, DialOptions{}), keys)
	r.check("inputs held at once", got, nil)
	if sizes := tr.batchSizes(); !slices.Equal(sizes, []int{6, 6}) {
		t.Errorf("batches of %v; want two of 6", sizes)
	}
}
