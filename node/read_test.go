package node_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/hash"
)

// streamUpper upper-cases its input as it reads it, 4 KiB at a time, and
// records the Path it got.
func streamUpper(paths *atomic.Value) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if paths != nil {
			paths.Store(in.Path)
		}
		buf := make([]byte, 4096)
		for {
			n, err := in.Body.Read(buf)
			if n > 0 {
				if _, werr := out.Write(bytes.ToUpper(buf[:n])); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// failAfter writes n bytes, then fails with code.
func failAfter(n int, code insitu.Code) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := out.Write(bytes.Repeat([]byte("x"), n)); err != nil {
			return err
		}
		return insitu.Errorf(code, "gave up after %d bytes", n)
	})
}

func readCluster(t *testing.T, extra map[string]insitu.Transform) (*nodetest.Cluster, *atomic.Value) {
	t.Helper()
	var paths atomic.Value
	ts := map[string]insitu.Transform{
		"upper":      streamUpper(&paths),
		"md5":        hash.MD5(),
		"xxh64":      hash.XXH64(),
		"fail-early": failAfter(0, insitu.InvalidArgument),
		"fail-late":  failAfter(100<<10, insitu.InvalidArgument),
	}
	for k, v := range extra {
		ts[k] = v
	}
	return startCluster(t, 3, &nodetest.Options{Transforms: ts}), &paths
}

func readTransformed(t *testing.T, c *locality.Client, name insitu.Name, chain []string, args string) ([]byte, error) {
	t.Helper()
	rc, obj, err := c.GetTransformed(t.Context(), name, chain, args)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if obj.Owner == "" || obj.Size != -1 && obj.Size != int64(len(b)) {
		t.Errorf("GetTransformed object %+v: want an owner, and size -1 or %d", obj, len(b))
	}
	return b, err
}

func TestGetTransformed(t *testing.T) {
	t.Parallel()
	c, paths := readCluster(t, nil)
	client := c.Client()
	objs := map[string][]byte{}
	for i := range 12 {
		k := fmt.Sprintf("doc-%02d.txt", i)
		objs[k] = asciiContent(k, 1000+50_000*i)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: k}, bytes.NewReader(objs[k]), -1); err != nil {
			t.Fatal(err)
		}
	}
	for k, b := range objs {
		name := insitu.Name{Bucket: "in", Key: k}
		got, err := readTransformed(t, client, name, []string{"upper"}, "")
		if err != nil || !bytes.Equal(got, bytes.ToUpper(b)) {
			t.Fatalf("%s upper: %d bytes, %v", k, len(got), err)
		}
		// A chain, by name, with args for every stage.
		got, err = readTransformed(t, client, name, []string{"upper", "md5"}, "")
		sum := md5.Sum(bytes.ToUpper(b))
		if err != nil || string(got) != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s upper,md5: %q, %v", k, got, err)
		}
		if _, err := readTransformed(t, client, name, []string{"xxh64"}, "42"); err != nil {
			t.Fatalf("%s xxh64 with args: %v", k, err)
		}
	}
	// The first stage read the file opened through the store.
	if p, _ := paths.Load().(string); !strings.HasPrefix(p, "/proc/") {
		t.Errorf("the transform's Input.Path was %q, want the open file's /proc path", p)
	}
	// Known answers of the ais-etl hashing transformer, on the owner.
	text := testFile(t, "test-text.txt")
	name := insitu.Name{Bucket: "in", Key: "test-text.txt"}
	if _, err := c.Put(t.Context(), name, bytes.NewReader(text), -1); err != nil {
		t.Fatal(err)
	}
	if got, err := readTransformed(t, client, name, []string{"xxh64"}, "42"); err != nil || string(got) != "e31ae61f6b8c93a9" {
		t.Errorf("xxh64 seed 42 of test-text.txt: %q, %v", got, err)
	}
}

func TestGetTransformedErrors(t *testing.T) {
	t.Parallel()
	c, _ := readCluster(t, nil)
	client := c.Client()
	name := insitu.Name{Bucket: "in", Key: "a.txt"}
	if _, err := c.Put(t.Context(), name, strings.NewReader("some text"), -1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		chain []string
		args  string
		code  insitu.Code
	}{
		{[]string{"nope"}, "", insitu.NotFound},
		{[]string{"upper", "nope"}, "", insitu.NotFound},
		{[]string{"upper", "upper"}, "", insitu.InvalidArgument},
		{[]string{"upper", "md5", "xxh64", "fail-early", "fail-late", "a", "b", "c", "d"}, "", insitu.InvalidArgument},
		{[]string{"upper"}, strings.Repeat("a", 5000), insitu.InvalidArgument},
		{[]string{"fail-early"}, "", insitu.InvalidArgument},
		{[]string{""}, "", insitu.InvalidArgument},
		{nil, "", insitu.InvalidArgument},
	} {
		rc, _, err := client.GetTransformed(t.Context(), name, tc.chain, tc.args)
		if insitu.CodeOf(err) != tc.code {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("chain %q: error %v, want %v", tc.chain, err, tc.code)
		}
	}
	if _, err := readTransformed(t, client, insitu.Name{Bucket: "in", Key: "missing"}, []string{"upper"}, ""); !errors.Is(err, insitu.NotFound) {
		t.Errorf("missing object: %v, want not_found", err)
	}
	// A failure after the first bytes: the reader ends with the chain's
	// error and code, never with io.EOF.
	got, err := readTransformed(t, client, name, []string{"fail-late"}, "")
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("fail-late: %d bytes, error %v; want invalid_argument with the transform's message", len(got), err)
	}
	// Raw HTTP: HEAD, Range and args without a transform are refused.
	owner := c.Map().Owner(name)
	for _, tc := range []struct{ method, query, rng string }{
		{http.MethodHead, "?transform=upper", ""},
		{http.MethodGet, "?transform=upper", "bytes=0-1"},
		{http.MethodGet, "?args=1", ""},
		{http.MethodGet, "?transform=", ""},
		{http.MethodGet, "?transform=&args=1", ""},
	} {
		req, _ := http.NewRequest(tc.method, locality.ObjectURL(owner, name)+tc.query, nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		c.Secret().Authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(wire.ErrorCode) != "invalid_argument" {
			t.Errorf("%s %s (Range %q): %s, code %q; want 400 invalid_argument", tc.method, tc.query, tc.rng, resp.Status, resp.Header.Get(wire.ErrorCode))
		}
	}
}

// TestGetTransformedClientStops: a client that stops reading half-way
// stops the owner's transform, and the node stays healthy.
func TestGetTransformedClientStops(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	endless := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		buf := bytes.Repeat([]byte("y"), 64<<10)
		for {
			if _, err := out.Write(buf); err != nil {
				stopped <- err
				return err
			}
		}
	})
	c, _ := readCluster(t, map[string]insitu.Transform{"endless": endless})
	name := insitu.Name{Bucket: "in", Key: "seed"}
	if _, err := c.Put(t.Context(), name, strings.NewReader("x"), -1); err != nil {
		t.Fatal(err)
	}
	rc, _, err := c.Client().GetTransformed(t.Context(), name, []string{"endless"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if err := <-stopped; err == nil {
		t.Fatal("the transform was not stopped")
	}
	if got, err := readTransformed(t, c.Client(), name, []string{"upper"}, ""); err != nil || string(got) != "X" {
		t.Fatalf("after a client stopped: %q, %v", got, err)
	}
}

// TestGetTransformedDetectsCutBodies: the client's reader refuses a body
// without its checksum trailer and one whose checksum differs (served
// here by a stand-in for a broken owner).
func TestGetTransformedDetectsCutBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, checksum string }{{"no trailer", ""}, {"wrong checksum", "0123456789abcdef"}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", wire.Checksum)
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "part of an output")
				if tc.checksum != "" {
					w.Header().Set(wire.Checksum, tc.checksum)
				}
			}))
			defer srv.Close()
			m, err := locality.NewMap(1, locality.Node{ID: "n1", URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			client, err := locality.NewClient(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			got, err := readTransformed(t, client, insitu.Name{Bucket: "b", Key: "k"}, []string{"t"}, "")
			if !errors.Is(err, insitu.Unavailable) {
				t.Fatalf("read %q, error %v; want unavailable", got, err)
			}
		})
	}
}

// asciiContent is n bytes of lower-case letters and spaces picked by seed.
func asciiContent(seed string, n int) []byte {
	b := content(seed, n)
	for i, c := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz  "[int(c)%28]
	}
	return b
}

// TestClusterSourceTransform: a pipeline that reads a cluster bucket
// through a transform chain run on each object's owner gets the chain's
// outputs, and only they reach it.
func TestClusterSourceTransform(t *testing.T) {
	t.Parallel()
	c, _ := readCluster(t, nil)
	want := map[string]string{}
	for i := range 30 {
		k := fmt.Sprintf("d/%02d.txt", i)
		b := asciiContent(k, 500+i*300)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: k}, bytes.NewReader(b), -1); err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(bytes.ToUpper(b))
		want[k] = hex.EncodeToString(sum[:])
	}
	src, err := source.Cluster(c.Client(), "in", &source.ClusterOptions{Transform: []string{"upper", "md5"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst, err := sink.Dir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(t.Context(), src, insitu.Identity, dst, nil)
	if err != nil || rep.Transformed != 30 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if rep.BytesIn != 30*32 {
		t.Errorf("%d bytes read, want only the 30 digests' %d", rep.BytesIn, 30*32)
	}
	for k, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil || string(got) != w {
			t.Errorf("%s: %q, %v; want %s", k, got, err, w)
		}
	}
	if _, err := source.Cluster(c.Client(), "in", &source.ClusterOptions{TransformArgs: "1"}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("TransformArgs without Transform: %v", err)
	}
}

// TestTransformedReadsAreBounded: with every slot of
// Options.MaxTransformedReads taken, one more read waits, then is
// unavailable; a plain GET is not held.
func TestTransformedReadsAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 5 s slot wait; skipped with -short")
	}
	t.Parallel()
	started := make(chan struct{}, 1)
	hold := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		out.Write(bytes.Repeat([]byte("h"), 64<<10)) // past the first chunk: the answer goes
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	c := startCluster(t, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{"hold": hold, "upper": streamUpper(nil)},
		NodeOptions: func(id string, o *node.Options) { o.MaxTransformedReads = 1 }})
	name := insitu.Name{Bucket: "in", Key: "a"}
	if _, err := c.Put(t.Context(), name, strings.NewReader("abc"), -1); err != nil {
		t.Fatal(err)
	}
	rc, _, err := c.Client().GetTransformed(t.Context(), name, []string{"hold"}, "")
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := readTransformed(t, c.Client(), name, []string{"upper"}, ""); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("a read past the limit: %v, want unavailable", err)
	}
	if got, _, err := readAll(t.Context(), c.Client(), name); err != nil || string(got) != "abc" {
		t.Errorf("a plain GET meanwhile: %q, %v", got, err)
	}
	rc.Close()
	if got, err := readTransformed(t, c.Client(), name, []string{"upper"}, ""); err != nil || string(got) != "ABC" {
		t.Errorf("once the slot is free: %q, %v", got, err)
	}
}

// TestGetAndHeadCarryVersion: a GET and a HEAD tell the object's version,
// the one its owner's listing gives, and a rewrite changes it.
func TestGetAndHeadCarryVersion(t *testing.T) {
	t.Parallel()
	c, _ := readCluster(t, nil)
	client := c.Client()
	name := insitu.Name{Bucket: "in", Key: "v.txt"}
	if _, err := c.Put(t.Context(), name, strings.NewReader("one"), -1); err != nil {
		t.Fatal(err)
	}
	page, err := client.List(t.Context(), c.Map().Owner(name), "in", nil)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Version == "" {
		t.Fatalf("List = %+v, %v", page, err)
	}
	listed := page.Objects[0].Version
	head, err := client.Head(t.Context(), name)
	if err != nil || head.Version != listed {
		t.Fatalf("Head version %q, %v; the listing says %q", head.Version, err, listed)
	}
	rc, obj, err := client.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if obj.Version != listed {
		t.Errorf("Get version %q, want %q", obj.Version, listed)
	}
	if _, err := c.Put(t.Context(), name, strings.NewReader("two!"), -1); err != nil {
		t.Fatal(err)
	}
	if head, err := client.Head(t.Context(), name); err != nil || head.Version == listed || head.Version == "" {
		t.Errorf("after a rewrite: %q, %v; want another version", head.Version, err)
	}
}
