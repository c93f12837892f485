package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
)

func TestObjectRoundTrip(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	client := c.Client()
	ctx := context.Background()
	sizes := map[string]int{
		"rt/empty": 0, "rt/one": 1, "rt/16k.bin": 16 << 10, "rt/1m.bin": 1<<20 + 3,
		"rt/deep/a/b/c.bin": 777, "rt/é/ü ß.txt": 42,
	}
	for key, size := range sizes {
		name := insitu.Name{Bucket: "bkt", Key: key}
		data := content(key, size)
		res, err := client.Put(ctx, name, bytes.NewReader(data), int64(size))
		if err != nil {
			t.Fatalf("Put(%s): %v", name, err)
		}
		owner := c.Map().Owner(name).ID
		if res.Name != name || res.Size != int64(size) || res.Checksum != checksum(data) || res.Owner != owner {
			t.Errorf("Put(%s) = %+v, want size %d, checksum %s, owner %s", name, res, size, checksum(data), owner)
		}
		got, obj, err := readAll(ctx, client, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get(%s): %d bytes (checksum %s), %v; want %d bytes (%s)", name, len(got), checksum(got), err, size, checksum(data))
		}
		if obj.Size != int64(size) || obj.Owner != owner {
			t.Errorf("Get(%s) object %+v", name, obj)
		}
		head, err := client.Head(ctx, name)
		if err != nil || head.Size != int64(size) || head.Owner != owner || head.Name != name {
			t.Errorf("Head(%s) = %+v, %v", name, head, err)
		}
		// The file is on its owner, and on no other node.
		for _, nd := range c.Nodes() {
			_, err := os.Stat(nd.Path(name))
			if (nd.ID() == owner) != (err == nil) {
				t.Errorf("%s on node %s (owner %s): stat %v", name, nd.ID(), owner, err)
			}
		}
		// The local view agrees.
		local, err := c.Node(owner).Stat(ctx, name)
		if err != nil || local.Size != int64(size) || local.Path != c.Node(owner).Path(name) {
			t.Errorf("local Stat(%s) = %+v, %v", name, local, err)
		}
	}
	// Delete removes the object and the directories it leaves empty.
	deep := insitu.Name{Bucket: "bkt", Key: "rt/deep/a/b/c.bin"}
	if err := client.Delete(ctx, deep); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Head(ctx, deep); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Head after Delete: %v, want NotFound", err)
	}
	if _, _, err := client.Get(ctx, deep); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Get after Delete: %v, want NotFound", err)
	}
	if err := client.Delete(ctx, deep); !errors.Is(err, insitu.NotFound) {
		t.Errorf("second Delete: %v, want NotFound", err)
	}
	ownerDir := c.Node(c.Map().Owner(deep).ID).Dir()
	if _, err := os.Stat(filepath.Join(ownerDir, "bkt", "rt", "deep")); !os.IsNotExist(err) {
		t.Errorf("empty directories left after Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ownerDir, "bkt")); err != nil {
		t.Errorf("the bucket directory went away: %v", err)
	}
	// Missing objects and directories are NotFound.
	for _, key := range []string{"missing", "rt", "rt/one/deeper"} {
		if _, err := client.Head(ctx, insitu.Name{Bucket: "bkt", Key: key}); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Head(%s): %v, want NotFound", key, err)
		}
	}
}

func TestPutAnswer(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	data := content("answer", 5000)
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/v1/objects/b/x/y.bin", bytes.NewReader(data))
	s.secret.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res insitu.PutResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	want := insitu.PutResult{Name: insitu.Name{Bucket: "b", Key: "x/y.bin"}, Size: 5000, Checksum: checksum(data), Owner: "solo"}
	if resp.StatusCode != http.StatusOK || res != want {
		t.Fatalf("PUT: %s %+v, want 200 %+v", resp.Status, res, want)
	}
	if h := resp.Header; h.Get(wire.Checksum) != checksum(data) || h.Get(wire.Owner) != "solo" || h.Get(wire.MapVersion) != "1" {
		t.Errorf("PUT headers: %v", h)
	}
	b, err := os.ReadFile(filepath.Join(s.node.Dir(), "b", "x", "y.bin"))
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("stored file: %d bytes, %v", len(b), err)
	}
	// GET honours ranges (http.ServeContent).
	req, _ = http.NewRequest(http.MethodGet, s.srv.URL+"/v1/objects/b/x/y.bin", nil)
	s.secret.Authorize(req)
	req.Header.Set("Range", "bytes=10-19")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[10:20]) {
		t.Errorf("range GET: %s %x", resp2.Status, part)
	}
}

// TestPutInProgressIsInvisible checks that a reader never sees a partial
// object: while an upload is half done, GET still returns the old bytes.
func TestPutInProgressIsInvisible(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	client := c.Client()
	ctx := context.Background()
	name := insitu.Name{Bucket: "b", Key: "atomic/obj"}
	old := content("old", 3000)
	if _, err := client.Put(ctx, name, bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	next := content("new", 1<<20)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(ctx, name, pr, int64(len(next)))
		done <- err
	}()
	// Write half: once Write returns, the node is reading the upload.
	if _, err := pw.Write(next[:len(next)/2]); err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(ctx, client, name)
	if err != nil || !bytes.Equal(got, old) {
		t.Fatalf("GET during the upload: %d bytes, %v; want the old %d", len(got), err, len(old))
	}
	b, _ := os.ReadFile(c.Nodes()[0].Path(name))
	if !bytes.Equal(b, old) {
		t.Fatal("the file under the final name changed during the upload")
	}
	if _, err := pw.Write(next[len(next)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _, err = readAll(ctx, client, name)
	if err != nil || !bytes.Equal(got, next) {
		t.Fatalf("GET after the upload: %d bytes, %v", len(got), err)
	}
	if fs := files(t, c.Nodes()[0].Dir()); len(fs) != 1 {
		t.Fatalf("store holds %v, want the object alone", fs)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{MaxObjectSize: 1000})
	client := c.Client()
	ctx := context.Background()
	ok := insitu.Name{Bucket: "b", Key: "fits"}
	if _, err := client.Put(ctx, ok, bytes.NewReader(content("fits", 1000)), 1000); err != nil {
		t.Fatalf("Put of exactly the limit: %v", err)
	}
	for _, tc := range []struct {
		n    int
		size int64
	}{{1001, 1001}, {5000, -1}} {
		name := insitu.Name{Bucket: "b", Key: fmt.Sprintf("big%d", tc.size)}
		_, err := client.Put(ctx, name, bytes.NewReader(content("big", tc.n)), tc.size)
		if !errors.Is(err, insitu.TooLarge) {
			t.Errorf("Put of %d bytes (size %d) over a 1000-byte limit: %v, want TooLarge", tc.n, tc.size, err)
		}
	}
	// A chunked upload that grows past the limit, on the wire.
	s := startSingle(t, &node.Options{MaxObjectSize: 1000})
	body := strings.Repeat("x", 3000)
	req := "PUT /v1/objects/b/chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + s.secret.AdminToken(time.Now().Add(time.Hour)) +
		"\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	resp, rawBody := raw(t, s.addr(), req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorBody(t, rawBody).Code != insitu.TooLarge {
		t.Errorf("chunked upload over the limit: %s %s", resp.Status, rawBody)
	}
	// A Content-Length over the limit is refused before the body.
	req = "PUT /v1/objects/b/declared HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + s.secret.AdminToken(time.Now().Add(time.Hour)) +
		"\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n"
	resp, rawBody = raw(t, s.addr(), req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorBody(t, rawBody).Code != insitu.TooLarge {
		t.Errorf("declared size over the limit: %s %s", resp.Status, rawBody)
	}
	s.srv.Close() // waits for the handlers
	if fs := files(t, s.node.Dir()); len(fs) != 0 {
		t.Errorf("refused uploads left %v", fs)
	}
	if fs := files(t, c.Nodes()[0].Dir()); len(fs) != 1 {
		t.Errorf("store holds %v, want the object that fits alone", fs)
	}
}

// TestTruncatedUploadLeavesNothing disconnects in the middle of a body.
func TestTruncatedUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	for i, framing := range []string{"Content-Length: 100000\r\n\r\n", "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", 100000)} {
		conn, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		req := fmt.Sprintf("PUT /v1/objects/b/truncated%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s", i, s.secret.AdminToken(time.Now().Add(time.Hour)), framing)
		if _, err := io.WriteString(conn, req+strings.Repeat("y", 50000)); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	s.srv.Close() // returns once every handler has returned
	if fs := files(t, s.node.Dir()); len(fs) != 0 {
		t.Fatalf("truncated uploads left %v", fs)
	}
}

// TestClientBodyFailures checks the client side: a failing reader, a
// canceled context and a wrong size each leave nothing on the node.
func TestClientBodyFailures(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	client := c.Client()
	boom := errors.New("boom")
	name := insitu.Name{Bucket: "b", Key: "fail"}
	if _, err := client.Put(context.Background(), name, io.MultiReader(bytes.NewReader(content("a", 70000)), errReader{boom}), -1); !errors.Is(err, boom) {
		t.Errorf("failing reader, unknown size: %v", err)
	}
	if _, err := client.Put(context.Background(), name, io.MultiReader(bytes.NewReader(content("a", 70000)), errReader{boom}), 100000); !errors.Is(err, boom) {
		t.Errorf("failing reader, known size: %v", err)
	}
	for _, tc := range []struct{ n, size int }{{1000, 1001}, {1001, 1000}, {1, 0}, {0, 1}} {
		_, err := client.Put(context.Background(), name, bytes.NewReader(content("s", tc.n)), int64(tc.size))
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%d bytes with size %d: %v, want InvalidArgument", tc.n, tc.size, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(ctx, name, pr, 1<<20)
		done <- err
	}()
	if _, err := pw.Write(content("c", 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The client is blocked reading the pipe: end that read, as a producer
	// that sees its context end would.
	pw.CloseWithError(errors.New("producer stopped"))
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Put: %v, want context.Canceled", err)
	}
	if err := c.StopNode(context.Background(), "n1"); err != nil { // waits for the handlers
		t.Fatal(err)
	}
	if fs := files(t, c.Nodes()[0].Dir()); len(fs) != 0 {
		t.Fatalf("failed uploads left %v", fs)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestBadNamesNeverEscape sends hostile names on the wire: none may touch
// a file outside the store, and none may be stored.
func TestBadNamesNeverEscape(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	secretFile := filepath.Join(s.parent, "secret.txt")
	if err := os.WriteFile(secretFile, []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Make the bucket exist, so the paths below reach the file system.
	if _, err := s.node.Put(context.Background(), insitu.Name{Bucket: "b", Key: "ok"}, strings.NewReader("ok"), 2); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", insitu.MaxKeyLen+1)
	paths := []string{
		"/v1/objects/b/..%2f..%2fsecret.txt",
		"/v1/objects/b/%2e%2e/%2e%2e/secret.txt",
		"/v1/objects/b/%2E%2E%2F%2E%2E%2Fsecret.txt",
		"/v1/objects/b/../../secret.txt",
		"/v1/objects/%2e%2e/secret.txt",
		"/v1/objects/..%2f/secret.txt",
		"/v1/objects/b/%2Fetc%2Fpasswd",
		"/v1/objects/b//etc/passwd",
		"/v1/objects/b/a/%00/x",
		"/v1/objects/b/nul%00byte",
		"/v1/objects/b/" + long,
		"/v1/objects/b/a/.insitu-tmp-x",
		"/v1/objects/b/a/./b",
		"/v1/objects/b/%ff%fe",
		"/v1/objects/b/",
	}
	for _, p := range paths {
		for _, method := range []string{"PUT", "GET", "DELETE"} {
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\nContent-Length: 5\r\n\r\nevil!", method, p, s.secret.AdminToken(time.Now().Add(time.Hour)))
			resp, body := raw(t, s.addr(), req)
			if resp.StatusCode < 300 {
				t.Errorf("%s %.60s: %s %q", method, p, resp.Status, body)
			}
			if bytes.Contains(body, []byte("top secret")) {
				t.Errorf("%s %.60s leaked the file outside the store", method, p)
			}
			if resp.StatusCode == http.StatusBadRequest && errorBody(t, body).Code != insitu.InvalidArgument {
				t.Errorf("%s %.60s: %s", method, p, body)
			}
		}
	}
	// The names the mux does not redirect reach the node and are refused
	// as invalid.
	for _, p := range []string{"/v1/objects/b/nul%00byte", "/v1/objects/b/" + long, "/v1/objects/b/%2Fetc%2Fpasswd", "/v1/objects/b/a/.insitu-tmp-x", "/v1/objects/b/%ff%fe"} {
		resp, body := raw(t, s.addr(), "PUT "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "+s.secret.AdminToken(time.Now().Add(time.Hour))+"\r\nContent-Length: 1\r\n\r\nx")
		if resp.StatusCode != http.StatusBadRequest || errorBody(t, body).Code != insitu.InvalidArgument {
			t.Errorf("PUT %.60s: %s %s, want 400 invalid_argument", p, resp.Status, body)
		}
	}
	s.srv.Close()
	if b, err := os.ReadFile(secretFile); err != nil || string(b) != "top secret" {
		t.Fatalf("the file outside the store changed: %q, %v", b, err)
	}
	entries, _ := os.ReadDir(s.parent)
	if len(entries) != 2 {
		t.Errorf("the store's parent holds %d entries, want the store and secret.txt", len(entries))
	}
	if fs := files(t, s.node.Dir()); len(fs) != 1 || fs["b/ok"] != 2 {
		t.Errorf("store holds %v, want b/ok alone", fs)
	}
	// The local API refuses them as well.
	for _, key := range []string{"../secret.txt", "/etc/passwd", "a/../../x", "nul\x00", long, ".insitu-tmp-x"} {
		_, err := s.node.Put(context.Background(), insitu.Name{Bucket: "b", Key: key}, strings.NewReader("x"), 1)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("local Put(%.40q): %v, want InvalidArgument", key, err)
		}
	}
}

func TestKeyClashes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	client := c.Client()
	ctx := context.Background()
	put := func(key string) error {
		_, err := client.Put(ctx, insitu.Name{Bucket: "b", Key: key}, strings.NewReader("x"), 1)
		return err
	}
	if err := put("a/b"); err != nil {
		t.Fatal(err)
	}
	if err := put("a"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put(a) over the directory of a/b: %v, want InvalidArgument", err)
	}
	if err := put("a/b/c"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put(a/b/c) under the object a/b: %v, want InvalidArgument", err)
	}
	if fs := files(t, c.Nodes()[0].Dir()); len(fs) != 1 {
		t.Errorf("store holds %v", fs)
	}
}

func TestNotOwnerRefused(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	n1 := c.Map().Nodes()[0]
	name := nameOwnedBy(t, "b", c.Map(), "n2", nil, "")
	for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodHead, http.MethodDelete} {
		req, _ := http.NewRequest(method, locality.ObjectURL(n1, name), strings.NewReader("stray"))
		c.Secret().Authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || resp.Header.Get(wire.MapVersion) != "1" || resp.Header.Get(wire.ErrorCode) != "not_owner" {
			t.Errorf("%s to a non-owner: %s %v", method, resp.Status, resp.Header)
		}
		if method != http.MethodHead {
			if e := errorBody(t, body); e.Code != insitu.NotOwner || e.MapVersion != 1 || !strings.Contains(e.Message, "n2") {
				t.Errorf("%s to a non-owner: body %+v", method, e)
			}
		}
	}
	if fs := files(t, c.Node("n1").Dir()); len(fs) != 0 {
		t.Errorf("non-owner stored %v", fs)
	}
	// The local API refuses too.
	if _, err := c.Node("n1").Put(context.Background(), name, strings.NewReader("x"), 1); !errors.Is(err, insitu.NotOwner) {
		t.Errorf("local Put on a non-owner: %v", err)
	}
}

// TestClientRefreshesStaleMap gives the client an old map: the cluster
// grew a node since. A PUT to the old owner is refused, and the client
// fetches the new map and puts to the new owner.
func TestClientRefreshesStaleMap(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 4, nil)
	all := c.Map().Nodes()
	old, err := locality.NewMap(0, all[:3]...) // without n4
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(old, &locality.ClientOptions{Secret: c.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	name := nameOwnedBy(t, "b", c.Map(), "n4", nil, "")
	data := content("moved", 100000)
	res, err := client.Put(context.Background(), name, &onlyReader{bytes.NewReader(data)}, int64(len(data)))
	if err != nil {
		t.Fatalf("Put with a stale map: %v", err)
	}
	if res.Owner != "n4" || res.Checksum != checksum(data) {
		t.Errorf("Put = %+v", res)
	}
	// Small bodies, which the client holds in memory and sends again
	// whatever the reader: each reaches n4.
	for i, r := range []io.Reader{strings.NewReader("small"), &onlyReader{strings.NewReader("small")}} {
		stale, err := locality.NewClient(old, &locality.ClientOptions{Secret: c.Secret()})
		if err != nil {
			t.Fatal(err)
		}
		defer stale.Close()
		small := nameOwnedBy(t, "small"+strconv.Itoa(i), c.Map(), "n4", nil, "")
		res, err := stale.Put(context.Background(), small, r, 5)
		if err != nil || res.Owner != "n4" || res.Checksum != checksum([]byte("small")) {
			t.Fatalf("small Put %d with a stale map = %+v, %v", i, res, err)
		}
		if got, _, err := readAll(context.Background(), stale, small); err != nil || string(got) != "small" {
			t.Fatalf("small object %d: %q, %v", i, got, err)
		}
	}
	if client.Map().Version() != 1 || client.Map().Len() != 4 {
		t.Errorf("client map after the refresh: %v", client.Map())
	}
	for _, nd := range c.Nodes() {
		if fs := files(t, nd.Dir()); (len(fs) == 3) != (nd.ID() == "n4") {
			t.Errorf("node %s holds %v", nd.ID(), fs)
		}
	}
	// A stale client also finds objects.
	client2, _ := locality.NewClient(old, &locality.ClientOptions{Secret: c.Secret()})
	defer client2.Close()
	got, _, err := readAll(context.Background(), client2, name)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get with a stale map: %d bytes, %v", len(got), err)
	}
}

// TestClientUpdatesStaleNode gives one node an old map: the cluster lost
// a node, and n2 did not hear of it. The client gives n2 its newer map
// and the PUT goes through.
func TestClientUpdatesStaleNode(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 4, nil)
	v1 := c.Map()
	v2, err := v1.Without("n4")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n3", "n4"} {
		c.Node(id).SetMap(v2)
	}
	client, err := locality.NewClient(v2, &locality.ClientOptions{Secret: c.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	name := nameOwnedBy(t, "b", v2, "n2", v1, "n4")
	res, err := client.Put(context.Background(), name, strings.NewReader("hello"), 5)
	if err != nil {
		t.Fatalf("Put to a node with a stale map: %v", err)
	}
	if res.Owner != "n2" || c.Node("n2").Map().Version() != v2.Version() {
		t.Errorf("Put = %+v; n2's map is %v", res, c.Node("n2").Map())
	}
}

// onlyReader hides every method but Read, so the client cannot seek.
type onlyReader struct{ r io.Reader }

func (o *onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestMapEndpoints(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, nil)
	client := c.Client()
	ctx := context.Background()
	n1, _ := c.Map().Node("n1")
	m, err := client.GetMap(ctx, n1)
	if err != nil || m.String() != c.Map().String() {
		t.Fatalf("GetMap = %v, %v", m, err)
	}
	// An older map is not installed; a newer one is.
	older, _ := locality.NewMap(0, c.Map().Nodes()[:1]...)
	if got, err := client.PushMap(ctx, n1, older); err != nil || got.Version() != 1 {
		t.Errorf("PushMap(older) = %v, %v", got, err)
	}
	newer, _ := c.Map().With(locality.Node{ID: "n9", URL: "http://127.0.0.1:9"})
	if got, err := client.PushMap(ctx, n1, newer); err != nil || got.Version() != 2 || c.Node("n1").Map().Version() != 2 {
		t.Errorf("PushMap(newer) = %v, %v", got, err)
	}
	// RefreshMap takes the newest map any node has.
	if got, err := client.RefreshMap(ctx); err != nil || got.Version() != 2 || got.Len() != 3 {
		t.Errorf("RefreshMap = %v, %v", got, err)
	}
	// A bad map is refused.
	req, _ := http.NewRequest(http.MethodPut, n1.URL+"/v1/map", strings.NewReader(`{"version":9,"nodes":[]}`))
	c.Secret().Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || c.Node("n1").Map().Version() != 2 {
		t.Errorf("bad map: %s", resp.Status)
	}
}

func TestHealthAndUnknownEndpoints(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	resp, err := http.Get(s.srv.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("health: %s %s", resp.Status, body)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code         insitu.Code
	}{
		{"GET", "/v1/nope", 404, insitu.NotFound},
		{"GET", "/", 404, insitu.NotFound},
		{"POST", "/v1/objects/b/k", 405, insitu.InvalidArgument},
		{"POST", "/v1/health", 405, insitu.InvalidArgument},
		{"GET", "/v1/objects/b?limit=x", 400, insitu.InvalidArgument},
		{"GET", "/v1/objects/nobucket", 404, insitu.NotFound},
		{"GET", "/v1/objects/bad%2Fbucket/k", 400, insitu.InvalidArgument},
	} {
		req, _ := http.NewRequest(tc.method, s.srv.URL+tc.path, nil)
		s.secret.Authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || errorBody(t, body).Code != tc.code {
			t.Errorf("%s %s: %s %s, want %d %v", tc.method, tc.path, resp.Status, body, tc.status, tc.code)
		}
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"})
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for what, call := range map[string]func() error{
		"no ID":  func() error { _, err := node.New(t.Context(), "", dir, m, nil); return err },
		"no Dir": func() error { _, err := node.New(t.Context(), "n1", "", m, nil); return err },
		"no Map": func() error { _, err := node.New(t.Context(), "n1", dir, nil, nil); return err },
		"negative limit": func() error {
			_, err := node.New(t.Context(), "n1", dir, m, &node.Options{MaxObjectSize: -1})
			return err
		},
	} {
		if err := call(); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", what, err)
		}
	}
	if _, err := node.New(t.Context(), "n1", filepath.Join(file, "store"), m, nil); err == nil {
		t.Error("a store under a file was accepted")
	}
	if _, err := nodetest.Start(context.Background(), 0, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("StartCluster(0): %v", err)
	}
}

func TestPutNilReader(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	name := insitu.Name{Bucket: "bkt", Key: "nil/reader"}
	for _, size := range []int64{-1, 0, 10} {
		_, err := s.node.Put(context.Background(), name, nil, size)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "nil reader") {
			t.Errorf("Put(nil reader, size %d): %v, want InvalidArgument \"nil reader\"", size, err)
		}
	}
	if got := files(t, s.node.Dir()); len(got) != 0 {
		t.Errorf("files stored: %v", got)
	}
	if _, err := s.node.Stat(context.Background(), name); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat after the refused Put: %v, want NotFound", err)
	}
}

// TestMapJumpRefused: a map pushed with a version far past the node's
// (such as MaxMapVersion, which no later map could pass) is refused with
// InvalidArgument and the node keeps its map; the next version is taken.
func TestMapJumpRefused(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	client, err := locality.NewClient(s.node.Map(), &locality.ClientOptions{Secret: s.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	self := locality.Node{ID: "solo", URL: s.srv.URL}
	cur := s.node.Map()
	nodes := cur.Nodes()
	for _, v := range []int64{locality.MaxMapVersion, cur.Version() + locality.MaxMapStep + 1} {
		jump, err := locality.NewMap(v, nodes...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.PushMap(t.Context(), self, jump); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("push of version %d = %v, want InvalidArgument", v, err)
		}
		if got := s.node.Map().Version(); got != cur.Version() {
			t.Fatalf("the node took version %d", got)
		}
	}
	next, _ := locality.NewMap(cur.Version()+1, nodes...)
	got, err := client.PushMap(t.Context(), self, next)
	if err != nil || got.Version() != next.Version() {
		t.Fatalf("push of the next version = %v, %v", got, err)
	}
}

// TestPlantedLinkRefused: a symbolic link planted in the store answers as a
// refusal (PermissionDenied), for HEAD and GET alike, and never serves the
// file it points at.
func TestPlantedLinkRefused(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.node.Dir(), "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.node.Dir(), "b", "link")); err != nil {
		t.Fatal(err)
	}
	name := insitu.Name{Bucket: "b", Key: "link"}
	if _, err := s.node.Stat(t.Context(), name); !errors.Is(err, insitu.PermissionDenied) {
		t.Errorf("Stat = %v, want PermissionDenied", err)
	}
	if f, _, err := s.node.Open(t.Context(), name); !errors.Is(err, insitu.PermissionDenied) {
		if f != nil {
			f.Close()
		}
		t.Errorf("Open = %v, want PermissionDenied", err)
	}
	for _, method := range []string{"HEAD", "GET"} {
		resp, body := raw(t, s.addr(), method+" /v1/objects/b/link HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+s.secret.AdminToken(time.Now().Add(time.Hour))+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "outside bytes") {
			t.Errorf("%s of a planted link: %d %q, want 403 without its bytes", method, resp.StatusCode, body)
		}
	}
}
