package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
)

// noPathIn fails the test when a response's status line, headers or body
// hold one of the paths.
func noPathIn(t *testing.T, what string, resp *http.Response, body []byte, paths ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(resp.Status)
	for k, vs := range resp.Header {
		b.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
	}
	b.WriteString("\n")
	b.Write(body)
	for _, p := range paths {
		if strings.Contains(b.String(), p) {
			t.Errorf("%s: the response holds the path %s:\n%s", what, p, b.String())
		}
	}
}

// send sends an authorized request to the node behind srv and returns the
// response and its body.
func send(t *testing.T, srv string, secret locality.Secret, method, target string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv+target, r)
	if err != nil {
		t.Fatal(err)
	}
	secret.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return resp, b
}

// TestErrorsHoldNoPaths sends requests that fail in every way the object
// API can fail, against a store with planted links, special files and
// clashes: no answer holds the store's absolute path (or any path outside
// the store); clients see store-relative names only.
func TestErrorsHoldNoPaths(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	store := s.node.Dir()
	ctx := context.Background()
	for _, key := range []string{"file", "dir/inner"} {
		if _, err := s.node.Put(ctx, insitu.Name{Bucket: "bkt", Key: key}, strings.NewReader("hello"), 5); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(s.parent, "outside")
	outdir := filepath.Join(s.parent, "outdir")
	if err := os.WriteFile(outside, []byte("secret bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outdir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outdir, "x"), []byte("more secret bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		os.Symlink(outside, filepath.Join(store, "bkt", "link")),
		os.Symlink(outdir, filepath.Join(store, "bkt", "linkdir")),
		os.Symlink(outdir, filepath.Join(store, "linkbkt")),
		os.Symlink(filepath.Join(store, "bkt", "file"), filepath.Join(store, "bkt", "inlink")),
		syscall.Mkfifo(filepath.Join(store, "bkt", "fifo"), 0o644),
		os.WriteFile(filepath.Join(store, "filebkt"), []byte("not a bucket"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{
		"nope", "file/x", "dir", "dir/", "link", "linkdir/x", "linkdir/sub/y", "inlink",
		"fifo", "fifo/x", "%2e%2e/x", "a/%2e%2e/%2e%2e/x", ".insitu-tmp-x", "a/.insitu-tmp-x",
		"a%00b", strings.Repeat("k", 300), strings.Repeat("d/", 3000) + "x",
	}
	type request struct{ method, target string }
	var reqs []request
	for _, bucket := range []string{"bkt", "linkbkt", "filebkt", "nobkt", "BAD"} {
		for _, key := range keys {
			for _, method := range []string{"GET", "HEAD", "PUT", "DELETE", "POST"} {
				reqs = append(reqs, request{method, "/v1/objects/" + bucket + "/" + key})
			}
		}
		for _, q := range []string{"", "?limit=x", "?limit=-1", "?prefix=../", "?prefix=linkdir/", "?prefix=fifo/", "?after=%ff", "?prefix=" + strings.Repeat("p", 5000)} {
			reqs = append(reqs, request{"GET", "/v1/objects/" + bucket + q}, request{"DELETE", "/v1/objects/" + bucket + q})
		}
	}
	reqs = append(reqs, request{"GET", "/v1/objects/"}, request{"GET", "/v1/nothing"})
	for _, rq := range reqs {
		var body []byte
		if rq.method == "PUT" {
			body = []byte("new bytes")
		}
		resp, b := send(t, s.srv.URL, s.secret, rq.method, rq.target, body)
		noPathIn(t, rq.method+" "+rq.target, resp, b, s.parent)
	}
	// A PUT whose declared size is over the limit, and one whose body is
	// shorter than it said.
	resp, b := raw(t, s.addr(), "PUT /v1/objects/bkt/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+s.secret.AdminToken(time.Now().Add(time.Hour))+"\r\nContent-Length: 99999999999999\r\nConnection: close\r\n\r\n")
	noPathIn(t, "PUT of a size over the limit", resp, b, s.parent)
	// The files outside the store are as they were.
	if got, err := os.ReadFile(outside); err != nil || string(got) != "secret bytes" {
		t.Errorf("the file outside the store: %q, %v", got, err)
	}
}

// TestWriteErrorHoldsNoPath fills the node's file system (a small tmpfs,
// as root): the PUT fails with Unavailable (no space), and its answer names
// the object, not the store's file.
func TestWriteErrorHoldsNoPath(t *testing.T) {
	t.Parallel()
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("mounting a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	secret := locality.Secret("test secret")
	var log syncBuffer
	nd, err := node.New(t.Context(), "solo", filepath.Join(mnt, "store"), m, &node.Options{Secret: secret, Logger: debugLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(nd.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := nd.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	resp, b := send(t, srv.URL, secret, "PUT", "/v1/objects/bkt/a/big.bin", content("big", 1<<20))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Insitu-Error-Code") != "unavailable" {
		t.Errorf("PUT on a full disk: %s %s, want 503 unavailable", resp.Status, b)
	}
	noPathIn(t, "PUT on a full disk", resp, b, mnt)
	if e := errorBody(t, b); !strings.Contains(e.Message, "no space left on device") {
		t.Errorf("PUT on a full disk: message %q does not say why", e.Message)
	}
	// Nothing is left of the upload.
	if left := files(t, nd.Dir()); len(left) != 0 {
		t.Errorf("files left in the store: %v", left)
	}
}

// TestJobFailuresHoldNoPaths: a transform's error that names its input's
// file (Input.Path, in the store) reaches the coordinator with the path
// made store-relative: the node's paths stay on the node.
func TestJobFailuresHoldNoPaths(t *testing.T) {
	t.Parallel()
	namesPath := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, _ io.Writer) error {
		return insitu.Errorf(insitu.InvalidArgument, "cannot decode %s", in.Path)
	})
	c := startCluster(t, 2, &nodetest.Options{Transforms: map[string]insitu.Transform{"fail": namesPath}})
	for i := range 6 {
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: fmt.Sprintf("f%d", i)}, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	rep, _ := cluster.Run(t.Context(), c.Client(), cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "fail", ContinueOnError: true}, nil)
	if rep.Failed != 6 || len(rep.Failures) != 6 {
		t.Fatalf("want 6 failures:\n%s", rep)
	}
	for _, f := range rep.Failures {
		if strings.Contains(f.Message, c.Dir()) || !strings.Contains(f.Message, "in/"+f.Name.Key) {
			t.Errorf("failure message %q holds the store's path, or not the object's", f.Message)
		}
	}
}
