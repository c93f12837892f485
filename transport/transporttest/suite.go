package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// Run runs the conformance suite against the implementation h starts,
// each check as a subtest: identity roundtrips of 0 B to 64 MiB (16 MiB
// under -short), with known and unknown sizes; the object's name, size,
// owner and args reach the transform; a transform's error, late error and
// skip come back with their codes and messages; the per-object timeout; a
// thousand concurrent objects. When h.SendsBytes: a nil Body and a Body
// whose length is not Input.Size are InvalidArgument, in both directions,
// and a mismatch is never transformed as a whole input. When h.Remote: a
// panic is Internal, a server killed mid-stream fails its objects with
// Unavailable and serves again after a restart, local-file input is
// confined to the roots, and a client without the secret is refused.
// Direct put runs when the endpoint has a TransformTo.
func Run(t *testing.T, h Harness) {
	if h.Name == "" || h.Start == nil {
		t.Fatal("transporttest: Harness.Name and Harness.Start are required")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
		when bool
	}{
		{"Identity", testIdentity, true},
		{"ObjectFields", testObjectFields, true},
		{"TransformError", testTransformError, true},
		{"ErrorAfterOutput", testErrorAfterOutput, true},
		{"Skip", testSkip, true},
		{"Timeout", testTimeout, true},
		{"Concurrent", testConcurrent, true},
		{"NilBody", testNilBody, h.SendsBytes},
		{"SizeMismatch", testSizeMismatch, h.SendsBytes},
		{"Panic", testPanic, h.Remote},
		{"ServerKilled", testServerKilled, h.Remote},
		{"LocalFile", testLocalFile, h.Remote},
		{"Unauthenticated", testUnauthenticated, h.Remote},
		{"DirectPut", testDirectPut, true},
	}
	for _, tc := range tests {
		if tc.when {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
		}
	}
}

// start starts h for one test and fails t if it cannot.
func start(t *testing.T, h Harness, tr insitu.Transform, cfg Config) *Endpoint {
	t.Helper()
	e, err := h.Start(t, tr, cfg)
	if err != nil {
		t.Fatalf("%s: Start: %v", h.Name, err)
	}
	return e
}

// identity copies its input; a transform of the suite.
var identity = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	_, err := io.Copy(out, in.Body)
	return err
})

// gen returns n deterministic pseudo-random bytes of a seed, made as they
// are read, and their checksum.
func gen(seed uint64, n int64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func genBytes(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(gen(seed, n))
	return b
}

func hex16(v uint64) string { return fmt.Sprintf("%016x", v) }

// sum hashes what is written to it.
type sum struct {
	d *xxhash.Digest
	n int64
}

func newSum() *sum { return &sum{d: xxhash.New()} }

func (s *sum) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return s.d.Write(p)
}

func (s *sum) String() string { return hex16(s.d.Sum64()) }

// checksumOf reads r through and returns its size and checksum.
func checksumOf(r io.Reader) (int64, string) {
	s := newSum()
	io.Copy(s, r)
	return s.n, s.String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func input(bucket, key string, body io.Reader, size int64) *insitu.Input {
	return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: bucket, Key: key}, Size: size}, Body: body}
}

// wantCode fails t unless err carries code (as errors.Is and insitu.CodeOf see it).
func wantCode(t *testing.T, err error, code insitu.Code, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	if !errors.Is(err, code) && insitu.CodeOf(err) != code {
		t.Fatalf("%s: error %q has code %s, want %s", what, err, insitu.CodeOf(err), code)
	}
}

func testIdentity(t *testing.T, h Harness) {
	e := start(t, h, identity, Config{})
	cases := []struct {
		name  string
		size  int64
		known bool
	}{
		{"0B", 0, true}, {"1B", 1, true}, {"16KiB", 16 << 10, true},
		{"64MiB", 64 << 20, true}, {"1MiB-unknown-size", 1 << 20, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.size > 16<<20 {
				t.Skip("a 64 MiB object: skipped under -short")
			}
			seed := uint64(i + 1)
			wantN, want := checksumOf(gen(seed, c.size))
			size := c.size
			if !c.known {
				size = -1
			}
			got := newSum()
			if err := e.Client.Transform(ctxT(t), input("b", "identity/"+c.name, gen(seed, c.size), size), got); err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if got.n != wantN || got.String() != want {
				t.Fatalf("output is %d bytes with checksum %s, want %d bytes with %s", got.n, got, wantN, want)
			}
		})
	}
}

func testObjectFields(t *testing.T, h Harness) {
	e := start(t, h, insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%q\n%d\n%q\n%q\n%q", in.Name.String(), in.Size, in.Owner, in.Args, b)
		return err
	}), Config{})
	args := []string{
		"",
		"-ar 44100 -ac 2",
		"ünïcödé, spaces, 100% \"quotes\", new\nlines\ttabs & ?query=#frag",
		strings.Repeat("long args ", 2000),
	}
	names := []insitu.Name{
		{Bucket: "b", Key: "plain.txt"},
		{Bucket: "", Key: "no-bucket/file.flac"},
		{Bucket: "My_Bucket-2.0", Key: "dir/sub dir/ünï%20?#&+;=.bin"},
	}
	for i, a := range args {
		name := names[i%len(names)]
		body := fmt.Sprintf("body %d", i)
		in := &insitu.Input{
			Object: insitu.Object{Name: name, Size: int64(len(body)), Owner: "node-7"},
			Args:   a, Body: strings.NewReader(body),
		}
		var out bytes.Buffer
		if err := e.Client.Transform(ctxT(t), in, &out); err != nil {
			t.Fatalf("Transform(%v, args %d): %v", name, i, err)
		}
		want := fmt.Sprintf("%q\n%d\n%q\n%q\n%q", name.String(), len(body), "node-7", a, body)
		if out.String() != want {
			t.Errorf("the transform saw\n%s\nwant\n%s", trunc(out.String()), trunc(want))
		}
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// failing fails objects whose key starts with "fail" and copies the others.
var failing = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if strings.HasPrefix(in.Name.Key, "fail") {
		return insitu.Errorf(insitu.NotFound, "no such %s in %s", "thing", in.Name.Key)
	}
	return identity(ctx, in, out)
})

func testTransformError(t *testing.T, h Harness) {
	e := start(t, h, failing, Config{})
	ctx := ctxT(t)
	for i := range 3 {
		err := e.Client.Transform(ctx, input("b", "fail.bin", strings.NewReader("x"), 1), io.Discard)
		wantCode(t, err, insitu.NotFound, "a failing transform")
		var ie *insitu.Error
		if !errors.As(err, &ie) {
			t.Fatalf("error %T %q is not an *insitu.Error", err, err)
		}
		if ie.Msg != "no such thing in fail.bin" {
			t.Fatalf("error message %q, want %q", ie.Msg, "no such thing in fail.bin")
		}
		// The next object on the same connection succeeds.
		var out bytes.Buffer
		body := fmt.Sprintf("after failure %d", i)
		if err := e.Client.Transform(ctx, input("b", "ok.bin", strings.NewReader(body), int64(len(body))), &out); err != nil {
			t.Fatalf("the object after a failure: %v", err)
		}
		if out.String() != body {
			t.Fatalf("the object after a failure: output %q, want %q", out.String(), body)
		}
	}
}

func testErrorAfterOutput(t *testing.T, h Harness) {
	e := start(t, h, insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := io.Copy(out, in.Body); err != nil {
			return err
		}
		return insitu.Errorf(insitu.InvalidArgument, "bad data at the end")
	}), Config{})
	const n = 300 << 10
	err := e.Client.Transform(ctxT(t), input("b", "late-failure", gen(7, n), n), io.Discard)
	wantCode(t, err, insitu.InvalidArgument, "a transform that fails after writing")
	if !strings.Contains(err.Error(), "bad data at the end") {
		t.Fatalf("error %q does not hold the transform's message", err)
	}
}

func testSkip(t *testing.T, h Harness) {
	e := start(t, h, insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "skip-me" {
			return insitu.ErrSkip
		}
		return identity(context.Background(), in, out)
	}), Config{})
	ctx := ctxT(t)
	err := e.Client.Transform(ctx, input("b", "skip-me", strings.NewReader("abc"), 3), io.Discard)
	if !errors.Is(err, insitu.ErrSkip) {
		t.Fatalf("a skipped object: error %v, want insitu.ErrSkip", err)
	}
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "keep-me", strings.NewReader("abc"), 3), &out); err != nil || out.String() != "abc" {
		t.Fatalf("the object after a skip: %q, %v", out.String(), err)
	}
}

// blocking blocks objects whose key starts with "block" until their
// context ends, after reading their input and writing a little.
func blocking(started chan<- string) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if !strings.HasPrefix(in.Name.Key, "block") {
			return identity(ctx, in, out)
		}
		if _, err := io.Copy(io.Discard, in.Body); err != nil {
			return err
		}
		out.Write([]byte("partial output"))
		if started != nil {
			started <- in.Name.Key
		}
		<-ctx.Done()
		return ctx.Err()
	})
}

func testTimeout(t *testing.T, h Harness) {
	e := start(t, h, blocking(nil), Config{Timeout: 300 * time.Millisecond})
	ctx := ctxT(t)
	start := time.Now()
	err := e.Client.Transform(ctx, input("b", "block-timeout", strings.NewReader("x"), 1), io.Discard)
	wantCode(t, err, insitu.DeadlineExceeded, "a transform that outlives the timeout")
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the timeout fired after %v", d)
	}
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "quick", strings.NewReader("fast"), 4), &out); err != nil || out.String() != "fast" {
		t.Fatalf("the object after a timeout: %q, %v", out.String(), err)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	e := start(t, h, identity, Config{})
	ctx := ctxT(t)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := strings.Repeat(fmt.Sprintf("object %d;", i), 1+i%200)
			var out bytes.Buffer
			err := e.Client.Transform(ctx, input("b", fmt.Sprintf("many/%04d", i), strings.NewReader(body), int64(len(body))), &out)
			switch {
			case err != nil:
				errs <- fmt.Errorf("object %d: %w", i, err)
			case out.String() != body:
				errs <- fmt.Errorf("object %d: output of %d bytes, want %d", i, out.Len(), len(body))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testPanic(t *testing.T, h Harness) {
	e := start(t, h, insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "panic" {
			panic("transform bug")
		}
		return identity(context.Background(), in, out)
	}), Config{})
	ctx := ctxT(t)
	err := e.Client.Transform(ctx, input("b", "panic", strings.NewReader("x"), 1), io.Discard)
	wantCode(t, err, insitu.Internal, "a panicking transform")
	if !strings.Contains(err.Error(), "transform bug") {
		t.Fatalf("error %q does not tell the panic", err)
	}
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "after-panic", strings.NewReader("alive"), 5), &out); err != nil || out.String() != "alive" {
		t.Fatalf("the object after a panic: %q, %v", out.String(), err)
	}
}

func testServerKilled(t *testing.T, h Harness) {
	const n = 4
	started := make(chan string, n)
	e := start(t, h, blocking(started), Config{})
	ctx := ctxT(t)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			body := genBytes(uint64(i), 100<<10)
			errs <- e.Client.Transform(ctx, input("b", fmt.Sprintf("block-%d", i), bytes.NewReader(body), int64(len(body))), io.Discard)
		}()
	}
	for range n {
		select {
		case <-started:
		case err := <-errs:
			t.Fatalf("an object ended before the kill: %v", err)
		}
	}
	e.Kill()
	for range n {
		wantCode(t, <-errs, insitu.Unavailable, "an object in flight when its server died")
	}
	e.Restart()
	for i := range 3 {
		body := genBytes(uint64(100+i), 64<<10)
		var out bytes.Buffer
		if err := e.Client.Transform(ctx, input("b", fmt.Sprintf("after-restart-%d", i), bytes.NewReader(body), int64(len(body))), &out); err != nil {
			t.Fatalf("object %d after the restart: %v", i, err)
		}
		if !bytes.Equal(out.Bytes(), body) {
			t.Fatalf("object %d after the restart: wrong output", i)
		}
	}
}

func testLocalFile(t *testing.T, h Harness) {
	root, outside := t.TempDir(), t.TempDir()
	inRoot := filepath.Join(root, "in.bin")
	data := genBytes(42, 1<<20)
	must(t, os.WriteFile(inRoot, data, 0o644))
	secret := filepath.Join(outside, "secret.bin")
	must(t, os.WriteFile(secret, []byte("not yours"), 0o644))
	link := filepath.Join(root, "escape.bin")
	must(t, os.Symlink(secret, link))

	before, err := os.Stat(inRoot)
	must(t, err)
	// "path" opens Input.Path itself, as a tool such as ffmpeg does, and
	// says whether it is the file the client named, then copies it.
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if strings.HasPrefix(in.Name.Key, "path") {
			f, err := os.Open(in.Path)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !os.SameFile(fi, before) {
				return insitu.Errorf(insitu.Internal, "Input.Path %s is not the file the client named", in.Path)
			}
			_, err = io.Copy(out, f)
			return err
		}
		return identity(ctx, in, out)
	})
	e := start(t, h, tr, Config{Roots: []string{root}, LocalFile: true})
	ctx := ctxT(t)
	fileInput := func(key, p string) *insitu.Input {
		return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: key}, Size: -1, Path: p}, Body: strings.NewReader("the bytes must not be sent")}
	}

	var out bytes.Buffer
	if err := e.Client.Transform(ctx, fileInput("file", inRoot), &out); err != nil {
		t.Fatalf("a file inside the root: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("a file inside the root: %d bytes back, want the file's %d", out.Len(), len(data))
	}
	out.Reset()
	if err := e.Client.Transform(ctx, fileInput("path", inRoot), &out); err != nil {
		t.Fatalf("a transform that opens Input.Path: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("a transform that opens Input.Path: %d bytes, want the file's %d", out.Len(), len(data))
	}
	for _, c := range []struct{ what, path string }{
		{"a file outside the roots", secret},
		{"a missing file outside the roots", filepath.Join(outside, "missing.bin")},
		{"a link out of the root", link},
		{"a path that climbs out of the root", filepath.Join(root, "..", filepath.Base(outside), "secret.bin")},
	} {
		err := e.Client.Transform(ctx, fileInput("file", c.path), io.Discard)
		wantCode(t, err, insitu.PermissionDenied, c.what)
	}
	err = e.Client.Transform(ctx, fileInput("file", filepath.Join(root, "missing.bin")), io.Discard)
	wantCode(t, err, insitu.NotFound, "a missing file inside the root")

	// A server with no roots refuses every path.
	e2 := start(t, h, tr, Config{LocalFile: true})
	err = e2.Client.Transform(ctx, fileInput("file", inRoot), io.Discard)
	wantCode(t, err, insitu.PermissionDenied, "local-file input on a server without roots")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUnauthenticated(t *testing.T, h Harness) {
	ctx := ctxT(t)
	server := locality.Secret("server secret")
	for _, c := range []struct {
		what   string
		client locality.Secret
	}{{"no secret", nil}, {"a wrong secret", locality.Secret("guess")}} {
		// The refusal may come when the client connects, or with the
		// first object.
		e, err := h.Start(t, identity, Config{Secret: server, ClientSecret: c.client})
		if err == nil {
			err = e.Client.Transform(ctx, input("b", "k", strings.NewReader("x"), 1), io.Discard)
		}
		wantCode(t, err, insitu.PermissionDenied, "a client with "+c.what)
	}
	e := start(t, h, identity, Config{Secret: server, ClientSecret: server})
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "k", strings.NewReader("x"), 1), &out); err != nil || out.String() != "x" {
		t.Fatalf("a client with the secret: %q, %v", out.String(), err)
	}
}

func testDirectPut(t *testing.T, h Harness) {
	e := start(t, h, failing, Config{})
	if e.TransformTo == nil {
		t.Skipf("%s cannot put directly", h.Name)
	}
	ctx := ctxT(t)
	n := startNode(t, "node-token")
	for i, size := range []int64{0, 1, 1 << 20} {
		name := insitu.Name{Bucket: "out", Key: fmt.Sprintf("put/%d.bin", size)}
		data := genBytes(uint64(i), size)
		res, err := e.TransformTo(ctx, input("b", name.Key, bytes.NewReader(data), size), n.dest(name))
		if err != nil {
			t.Fatalf("TransformTo %d bytes: %v", size, err)
		}
		stored, ok := n.get(name)
		if !ok || !bytes.Equal(stored, data) {
			t.Fatalf("TransformTo %d bytes: the node has %d bytes (stored %v), want the input", size, len(stored), ok)
		}
		if res.Size != size || res.Checksum != checksum(data) || res.Name != name {
			t.Fatalf("TransformTo %d bytes: result %+v, want name %v, size %d, checksum %s", size, res, name, size, checksum(data))
		}
	}

	// A failed transform puts nothing.
	name := insitu.Name{Bucket: "out", Key: "fail/x"}
	_, err := e.TransformTo(ctx, input("b", "fail-put", strings.NewReader("x"), 1), n.dest(name))
	wantCode(t, err, insitu.NotFound, "a failing transform with direct put")
	if _, ok := n.get(name); ok {
		t.Fatalf("a failed transform left an object at its destination")
	}

	// The node refuses a bad token.
	dst := n.dest(insitu.Name{Bucket: "out", Key: "badtoken"})
	dst.Token = "wrong"
	_, err = e.TransformTo(ctx, input("b", "k", strings.NewReader("x"), 1), dst)
	wantCode(t, err, insitu.PermissionDenied, "a direct put with a wrong token")

	// A destination the server does not allow is refused before anything is sent.
	e2 := start(t, h, identity, Config{AllowPut: func(u *url.URL) bool { return u.Host == n.host() }})
	_, err = e2.TransformTo(ctx, input("b", "k", strings.NewReader("x"), 1),
		Destination("http://127.0.0.1:1/v1/objects/out/k", "t"))
	wantCode(t, err, insitu.InvalidArgument, "a direct put to a destination that is not allowed")
}

// wholeInputs is a transform that reads its whole input before it writes
// it back, and counts the inputs it got whole, by length.
type wholeInputs struct {
	mu    sync.Mutex
	calls int
	whole map[string]int64 // key → length of the input it read whole
}

func (w *wholeInputs) Transform(_ context.Context, in *insitu.Input, out io.Writer) error {
	w.mu.Lock()
	w.calls++
	w.mu.Unlock()
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.whole[in.Name.Key] = int64(len(b))
	w.mu.Unlock()
	_, err = out.Write(b)
	return err
}

func testNilBody(t *testing.T, h Harness) {
	tr := &wholeInputs{whole: map[string]int64{}}
	e := start(t, h, tr, Config{})
	ctx := ctxT(t)
	for _, size := range []int64{-1, 0, 3} {
		in := input("b", fmt.Sprintf("nil-body-%d", size), nil, size)
		err := e.Client.Transform(ctx, in, io.Discard)
		wantCode(t, err, insitu.InvalidArgument, fmt.Sprintf("an input of size %d with a nil Body", size))
	}
	if e.TransformTo != nil {
		n := startNode(t, "node-token")
		name := insitu.Name{Bucket: "out", Key: "nil-body"}
		_, err := e.TransformTo(ctx, input("b", "nil-body-put", nil, 3), n.dest(name))
		wantCode(t, err, insitu.InvalidArgument, "a direct put of an input with a nil Body")
		if _, ok := n.get(name); ok {
			t.Error("an input with a nil Body left an object at its destination")
		}
	}
	tr.mu.Lock()
	calls := tr.calls
	tr.mu.Unlock()
	if calls != 0 {
		t.Errorf("inputs with a nil Body reached the transform %d times; the client must refuse them before sending", calls)
	}
	// The client still works.
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "after-nil", strings.NewReader("abc"), 3), &out); err != nil || out.String() != "abc" {
		t.Fatalf("the object after the nil Bodies: %q, %v", out.String(), err)
	}
}

func testSizeMismatch(t *testing.T, h Harness) {
	tr := &wholeInputs{whole: map[string]int64{}}
	e := start(t, h, tr, Config{})
	ctx := ctxT(t)
	const big = 300 << 10 // more than a chunk: the mismatch shows mid-stream
	cases := []struct {
		name       string
		size, have int64
	}{
		{"shorter", 5, 3}, {"longer", 3, 5},
		{"size 0, one byte", 0, 1}, {"size 1, empty", 1, 0},
		{"shorter by one, mid-stream", big + 1, big}, {"longer by one, mid-stream", big, big + 1},
		{"longer by a chunk", big, 2 * big},
	}
	for i, c := range cases {
		key := fmt.Sprintf("mismatch-%d", i)
		err := e.Client.Transform(ctx, input("b", key, bytes.NewReader(genBytes(uint64(i), c.have)), c.size), io.Discard)
		wantCode(t, err, insitu.InvalidArgument, fmt.Sprintf("%s: a Body of %d bytes with Size %d", c.name, c.have, c.size))
	}
	if e.TransformTo != nil {
		n := startNode(t, "node-token")
		for i, c := range cases {
			name := insitu.Name{Bucket: "out", Key: fmt.Sprintf("mismatch-%d", i)}
			_, err := e.TransformTo(ctx, input("b", "put-"+name.Key, bytes.NewReader(genBytes(uint64(i), c.have)), c.size), n.dest(name))
			wantCode(t, err, insitu.InvalidArgument, fmt.Sprintf("%s, with direct put", c.name))
			if b, ok := n.get(name); ok {
				t.Errorf("%s, with direct put: the destination holds %d bytes; a wrong input must store nothing", c.name, len(b))
			}
		}
	}
	// No transform got an input of the announced size that was not the
	// caller's whole input.
	tr.mu.Lock()
	for i, c := range cases {
		for _, key := range []string{fmt.Sprintf("mismatch-%d", i), fmt.Sprintf("put-mismatch-%d", i)} {
			if n, ok := tr.whole[key]; ok {
				t.Errorf("%s: the transform read an input of %d bytes to its end (Size %d, Body %d bytes); a mismatch must fail the object", c.name, n, c.size, c.have)
			}
		}
	}
	tr.mu.Unlock()
	// The client still works.
	var out bytes.Buffer
	if err := e.Client.Transform(ctx, input("b", "after-mismatch", strings.NewReader("abc"), 3), &out); err != nil || out.String() != "abc" {
		t.Fatalf("the object after the mismatches: %q, %v", out.String(), err)
	}
}
