package node_test

import (
	"archive/tar"
	"bufio"
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
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"go.uber.org/goleak"
)

// batchUpper upper-cases ASCII letters; it fails an object whose key
// holds "bad" with InvalidArgument, and makes an object whose key holds
// "big" 1.5 MiB long (more than a batch holds in memory).
var batchUpper = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	if strings.Contains(in.Object.Name.Key, "bad") {
		return insitu.Errorf(insitu.InvalidArgument, "no bad keys")
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	b = bytes.ToUpper(b)
	if strings.Contains(in.Object.Name.Key, "big") {
		b = bytes.Repeat(b, (3<<19)/len(b)+1)[:3<<19]
	}
	_, err = out.Write(b)
	return err
})

// batchSeed stores n objects "obj-%05d" in bucket, the i-th of size(i)
// bytes of batchASCII, each written straight into its owner's store (a
// PUT each, with its fsync, would take a minute for 10,000), and returns
// their names and bytes.
func batchSeed(t testing.TB, c *nodetest.Cluster, bucket string, n int, size func(int) int) ([]insitu.Name, map[insitu.Name][]byte) {
	t.Helper()
	names := make([]insitu.Name, n)
	data := make(map[insitu.Name][]byte, n)
	for _, nd := range c.Nodes() {
		if err := os.MkdirAll(filepath.Join(nd.Dir(), bucket), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		name := insitu.Name{Bucket: bucket, Key: fmt.Sprintf("obj-%05d", i)}
		b := batchASCII(name.Key, size(i))
		if err := os.WriteFile(c.Node(c.Map().Owner(name).ID).Path(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names[i] = name
		data[name] = b
	}
	return names, data
}

// batchASCII returns n deterministic bytes of lower-case letters and
// spaces derived from seed.
func batchASCII(seed string, n int) []byte {
	b := content(seed, n)
	for i, c := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz  "[int(c)%28]
	}
	return b
}

// batchResult is what a BatchGet yielded for one index.
type batchResult struct {
	index  int
	name   insitu.Name
	data   []byte
	err    error
	batch  bool   // an error about the batch (a nil entry)
	origin string // the entry's Object.Origin
}

func batchCollect(t *testing.T, c *locality.Client, names []insitu.Name, opts *locality.BatchGetOptions) []batchResult {
	t.Helper()
	var out []batchResult
	for e, err := range c.BatchGet(t.Context(), names, opts) {
		if e == nil {
			out = append(out, batchResult{err: err, batch: true})
			continue
		}
		r := batchResult{index: e.Index, name: e.Object.Name, err: err, origin: e.Object.Origin}
		if err == nil {
			b, rerr := io.ReadAll(e.Body)
			if rerr != nil {
				t.Fatalf("reading entry %d (%s): %v", e.Index, e.Object.Name, rerr)
			}
			if e.Object.Size >= 0 && int64(len(b)) != e.Object.Size {
				t.Errorf("entry %d: %d bytes, Size %d", e.Index, len(b), e.Object.Size)
			}
			r.data = b
		}
		out = append(out, r)
	}
	return out
}

// TestBatchGetOrderAndDuplicates: a batch over three owners yields every
// name in the order asked, duplicates included, with the right bytes,
// whether entries are read ahead (small) or streamed (over BufferBytes),
// and a missing object is an error entry in place.
func TestBatchGetOrderAndDuplicates(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	names, data := batchSeed(t, c, "bat", 300, func(i int) int { return 1 + (i*997)%20000 })
	var ask []insitu.Name
	for i := range 600 {
		ask = append(ask, names[(i*7)%len(names)]) // every name twice, shuffled
	}
	missing := insitu.Name{Bucket: "bat", Key: "missing"}
	ask = append(ask[:100], append([]insitu.Name{missing}, ask[100:]...)...)
	// A key that a ustar header cannot hold (long, not ASCII): a pax one.
	long := insitu.Name{Bucket: "bat", Key: "dir/ünïcödé/" + strings.Repeat("x", 200)}
	data[long] = []byte("long")
	if _, err := c.Put(t.Context(), long, bytes.NewReader(data[long]), 4); err != nil {
		t.Fatal(err)
	}
	ask = append(ask, long, names[0], long)
	owners := map[string]int{}
	for _, n := range ask {
		owners[c.Map().Owner(n).ID]++
	}
	if len(owners) != 3 {
		t.Fatalf("the batch spans owners %v, want 3", owners)
	}
	for _, opts := range []*locality.BatchGetOptions{nil, {Window: 2, BufferBytes: 4096}} {
		got := batchCollect(t, c.Client(), ask, opts)
		if len(got) != len(ask) {
			t.Fatalf("opts %+v: %d results for %d names", opts, len(got), len(ask))
		}
		for i, r := range got {
			switch {
			case r.index != i || r.name != ask[i]:
				t.Fatalf("result %d is entry %d (%s), want %s", i, r.index, r.name, ask[i])
			case ask[i] == missing:
				if !errors.Is(r.err, insitu.NotFound) || r.batch {
					t.Fatalf("missing object: %v, want a not_found entry", r.err)
				}
			case r.err != nil:
				t.Fatalf("entry %d (%s): %v", i, r.name, r.err)
			case !bytes.Equal(r.data, data[ask[i]]):
				t.Fatalf("entry %d (%s): %d bytes, checksum %s, want %d, %s", i, r.name, len(r.data), checksum(r.data), len(data[ask[i]]), checksum(data[ask[i]]))
			}
		}
	}
}

// TestBatchGetFailMode: with OnErrorFail, the entries before a missing
// object are yielded, then its error, and nothing after.
func TestBatchGetFailMode(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	names, data := batchSeed(t, c, "fail", 50, func(int) int { return 100 })
	ask := append(append(append([]insitu.Name{}, names[:20]...), insitu.Name{Bucket: "fail", Key: "nope"}), names[20:]...)
	got := batchCollect(t, c.Client(), ask, &locality.BatchGetOptions{OnError: locality.OnErrorFail})
	if len(got) != 21 {
		t.Fatalf("%d results, want 20 entries and the error", len(got))
	}
	for i, r := range got[:20] {
		if r.err != nil || !bytes.Equal(r.data, data[names[i]]) {
			t.Fatalf("entry %d: %v", i, r.err)
		}
	}
	last := got[20]
	if last.batch || last.index != 20 || last.name.Key != "nope" || !errors.Is(last.err, insitu.NotFound) {
		t.Fatalf("last result %+v, want entry 20's not_found", last)
	}
}

// TestBatchGetTransformed: a batch through a transform yields each output
// (one over the 1 MiB the node holds in memory, spooled), an error entry
// for an object the transform fails (its code), or fails at it; an
// unknown transform fails the batch before anything.
func TestBatchGetTransformed(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": batchUpper}})
	names, data := batchSeed(t, c, "tx", 40, func(i int) int { return 10 + i*50 })
	put := func(key string) insitu.Name {
		name := insitu.Name{Bucket: "tx", Key: key}
		b := batchASCII(key, 3000)
		if _, err := c.Put(t.Context(), name, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		data[name] = b
		return name
	}
	big, bad := put("big-one"), put("bad-one")
	ask := append(append([]insitu.Name{}, names[:10]...), big, names[10], bad, big)
	ask = append(ask, names[10:]...)
	want := func(name insitu.Name) []byte {
		b := bytes.ToUpper(data[name])
		if name == big {
			b = bytes.Repeat(b, (3<<19)/len(b)+1)[:3<<19]
		}
		return b
	}
	got := batchCollect(t, c.Client(), ask, &locality.BatchGetOptions{Transform: "upper"})
	if len(got) != len(ask) {
		t.Fatalf("%d results for %d names", len(got), len(ask))
	}
	for i, r := range got {
		switch {
		case ask[i] == bad:
			if !errors.Is(r.err, insitu.InvalidArgument) || !strings.Contains(r.err.Error(), "no bad keys") {
				t.Fatalf("entry %d (bad): %v, want the transform's invalid_argument", i, r.err)
			}
		case r.err != nil:
			t.Fatalf("entry %d (%s): %v", i, r.name, r.err)
		case !bytes.Equal(r.data, want(ask[i])):
			t.Fatalf("entry %d (%s): %d bytes %s, want %d bytes %s", i, r.name, len(r.data), checksum(r.data), len(want(ask[i])), checksum(want(ask[i])))
		}
	}
	got = batchCollect(t, c.Client(), ask, &locality.BatchGetOptions{Transform: "upper", OnError: locality.OnErrorFail})
	if n := len(got); n != 13 || !errors.Is(got[12].err, insitu.InvalidArgument) || got[12].name != bad {
		t.Fatalf("fail mode: %d results, last %+v; want 12 entries and bad's error", n, got[n-1])
	}
	for _, tc := range []struct {
		opts *locality.BatchGetOptions
		code insitu.Code
	}{
		{&locality.BatchGetOptions{Transform: "nope"}, insitu.NotFound},
		{&locality.BatchGetOptions{Transform: "upper,upper"}, insitu.InvalidArgument},
		{&locality.BatchGetOptions{Transform: "upper", Args: strings.Repeat("a", node.MaxReadArgs+1)}, insitu.InvalidArgument},
		{&locality.BatchGetOptions{Args: "x"}, insitu.InvalidArgument},
		{&locality.BatchGetOptions{OnError: "maybe"}, insitu.InvalidArgument},
	} {
		got := batchCollect(t, c.Client(), ask, tc.opts)
		if len(got) != 1 || !got[0].batch || !errors.Is(got[0].err, tc.code) {
			t.Fatalf("%+v: %+v, want one batch error %v", tc.opts, got, tc.code)
		}
	}
}

// TestBatchGetTooMany: a batch of 1,000,000 names is refused whole: by
// the client before any request, by a node with 400 invalid_argument
// before it reads them all.
func TestBatchGetTooMany(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	names := make([]insitu.Name, 1_000_000)
	for i := range names {
		names[i] = insitu.Name{Bucket: "b", Key: fmt.Sprint(i)}
	}
	got := batchCollect(t, c.Client(), names, nil)
	if len(got) != 1 || !got[0].batch || !errors.Is(got[0].err, insitu.InvalidArgument) {
		t.Fatalf("client: %+v, want one invalid_argument batch error", got)
	}
	body, err := json.Marshal(locality.BatchRequest{Objects: names})
	if err != nil {
		t.Fatal(err)
	}
	// On a connection of its own: the node answers before the body is
	// all sent, and closes the connection.
	nd, _ := c.Map().Node("n1")
	conn, err := net.Dial("tcp", strings.TrimPrefix(nd.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
			c.Secret().AdminToken(time.Now().Add(time.Minute)), len(body))
		_, _ = conn.Write(body) // fails once the node has closed the connection
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	conn.Close()
	<-wrote
	if resp.StatusCode != http.StatusBadRequest || errorBody(t, raw).Code != insitu.InvalidArgument || !strings.Contains(string(raw), "at most 100000") {
		t.Fatalf("node: %s %s, want 400 invalid_argument", resp.Status, raw)
	}
	// A body over the limit is too_large; bad requests are invalid_argument.
	long := bytes.Repeat([]byte(" "), locality.MaxBatchBody+1)
	for _, tc := range []struct {
		body   []byte
		status int
	}{
		{append([]byte(`{"objects":[]`), append(long, '}')...), http.StatusRequestEntityTooLarge},
		{[]byte(`{"objects":[{"bucket":"b","key":"k"}],"extra":1}`), http.StatusBadRequest},
		{[]byte(`{"objects":[],"objects":[]}`), http.StatusBadRequest},
		{[]byte(`{"objects":[{"bucket":"b","key":"../k"}]}`), http.StatusBadRequest},
		{[]byte(`{"objects":[],"on_error":"later"}`), http.StatusBadRequest},
		{[]byte(`{"objects":[]} {}`), http.StatusBadRequest},
		{[]byte(`[]`), http.StatusBadRequest},
	} {
		resp, raw := batchPost(t, c, "n1", tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%.60s: %s %s, want %d", tc.body, resp.Status, raw, tc.status)
		}
	}
	if err := c.Client().Health(t.Context(), c.Map().Nodes()[0]); err != nil {
		t.Fatalf("the node is not healthy: %v", err)
	}
}

// batchPost posts body to node id's /v1/batch with an administrative
// token, and returns the response and its whole body.
func batchPost(t *testing.T, c *nodetest.Cluster, id string, body []byte) (*http.Response, []byte) {
	t.Helper()
	nd, _ := c.Map().Node(id)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, nd.URL+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Secret().AdminToken(time.Now().Add(time.Minute)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// TestBatchWire checks the node's answers on the wire: the tar members and
// the end member; error members; fail mode before the first byte (the
// usual error response) and after it (no end member, the trailers); the
// tokens a batch needs.
func TestBatchWire(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, nil)
	var mine []insitu.Name
	for i := 0; len(mine) < 3; i++ {
		name := insitu.Name{Bucket: "w", Key: fmt.Sprintf("k%d", i)}
		if c.Map().Owner(name).ID == "n1" {
			b := []byte(name.Key)
			if _, err := c.Put(t.Context(), name, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
			mine = append(mine, name)
		}
	}
	foreign := nameOwnedBy(t, "w", c.Map(), "n2", nil, "")
	missing := insitu.Name{Bucket: "w", Key: "missing"}
	for missing = (insitu.Name{Bucket: "w", Key: "missing"}); c.Map().Owner(missing).ID != "n1"; missing.Key += "x" {
	}
	req := func(onError string, names ...insitu.Name) []byte {
		b, _ := json.Marshal(locality.BatchRequest{Objects: names, OnError: onError})
		return b
	}
	type member struct {
		name, code string
		body       string
	}
	members := func(raw []byte) ([]member, error) {
		tr := tar.NewReader(bytes.NewReader(raw))
		var out []member
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return out, err
			}
			out = append(out, member{hdr.Name, hdr.PAXRecords[locality.BatchErrorRecord], string(b)})
		}
	}

	resp, raw := batchPost(t, c, "n1", req("", mine[0], missing, foreign, mine[1], mine[0]))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != locality.BatchContentType {
		t.Fatalf("%s %q", resp.Status, raw)
	}
	got, err := members(raw)
	if err != nil || len(got) != 6 {
		t.Fatalf("members %+v, %v", got, err)
	}
	wantNames := []string{"w/" + mine[0].Key, "w/missing", foreign.String(), "w/" + mine[1].Key, "w/" + mine[0].Key, locality.BatchEndMember}
	for i, m := range got {
		if m.name != wantNames[i] {
			t.Fatalf("member %d is %q, want %q", i, m.name, wantNames[i])
		}
	}
	if got[0].body != mine[0].Key || got[3].body != mine[1].Key || got[0].code != "" {
		t.Fatalf("object members %+v", got)
	}
	var eb wire.ErrorBody
	if got[1].code != "not_found" || json.Unmarshal([]byte(got[1].body), &eb) != nil || eb.Code != insitu.NotFound {
		t.Fatalf("missing member %+v", got[1])
	}
	if got[2].code != "not_owner" || json.Unmarshal([]byte(got[2].body), &eb) != nil || eb.Code != insitu.NotOwner || eb.MapVersion != 1 {
		t.Fatalf("foreign member %+v", got[2])
	}
	var end locality.BatchEnd
	if json.Unmarshal([]byte(got[5].body), &end) != nil || end != (locality.BatchEnd{Count: 5, Errors: 2}) {
		t.Fatalf("end member %q", got[5].body)
	}
	if resp.Trailer.Get(wire.ErrorCode) != "" {
		t.Fatalf("a whole stream with an error trailer %q", resp.Trailer.Get(wire.ErrorCode))
	}

	// Fail mode: a name not owned, or a first object missing, fails before
	// the first byte.
	for _, tc := range []struct {
		names []insitu.Name
		code  insitu.Code
	}{{[]insitu.Name{mine[0], foreign}, insitu.NotOwner}, {[]insitu.Name{missing, mine[0]}, insitu.NotFound}} {
		resp, raw := batchPost(t, c, "n1", req("fail", tc.names...))
		if resp.StatusCode != wire.Status(tc.code) || errorBody(t, raw).Code != tc.code || !strings.Contains(errorBody(t, raw).Message, "objects[") {
			t.Fatalf("fail mode %v: %s %s, want %v naming the object", tc.names, resp.Status, raw, tc.code)
		}
	}
	// After the first byte: the members before it, no end member, and the
	// code in the trailers.
	resp, raw = batchPost(t, c, "n1", req("fail", mine[0], mine[1], missing, mine[2]))
	got, _ = members(raw)
	if resp.StatusCode != http.StatusOK || len(got) != 2 || resp.Trailer.Get(wire.ErrorCode) != "not_found" ||
		!strings.Contains(resp.Trailer.Get(wire.ErrorMessage), "objects%5B2%5D") {
		t.Fatalf("fail mode mid-stream: %s, %d members, trailers %v", resp.Status, len(got), resp.Trailer)
	}

	// A batch needs the administrative token: an object token is refused.
	nd, _ := c.Map().Node("n1")
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, nd.URL+"/v1/batch", bytes.NewReader(req("", mine[0])))
	r.Header.Set("Authorization", "Bearer "+c.Secret().ObjectToken(locality.Read, mine[0], time.Now().Add(time.Minute)))
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a batch with a read token: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	r, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, nd.URL+"/v1/batch", nil)
	r.Header.Set("Authorization", "Bearer "+c.Secret().AdminToken(time.Now().Add(time.Minute)))
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/batch: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestBatchGetNodeDown: the entries of a node that is down are
// unavailable errors in entry mode, and fail the batch at the first of
// them in fail mode; the other owners' entries are whole.
func TestBatchGetNodeDown(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	names, data := batchSeed(t, c, "down", 60, func(int) int { return 200 })
	if err := c.StopNode(t.Context(), "n2"); err != nil {
		t.Fatal(err)
	}
	got := batchCollect(t, c.Client(), names, nil)
	if len(got) != len(names) {
		t.Fatalf("%d results for %d names", len(got), len(names))
	}
	firstDown := -1
	for i, r := range got {
		down := c.Map().Owner(names[i]).ID == "n2"
		switch {
		case down && firstDown < 0:
			firstDown = i
			fallthrough
		case down:
			if !errors.Is(r.err, insitu.Unavailable) || r.batch || r.name != names[i] {
				t.Fatalf("entry %d on the stopped node: %+v, want an unavailable entry", i, r)
			}
		case r.err != nil || !bytes.Equal(r.data, data[names[i]]):
			t.Fatalf("entry %d: %v", i, r.err)
		}
	}
	if firstDown < 0 {
		t.Fatal("no name on n2")
	}
	got = batchCollect(t, c.Client(), names, &locality.BatchGetOptions{OnError: locality.OnErrorFail})
	if len(got) != firstDown+1 || !errors.Is(got[firstDown].err, insitu.Unavailable) || got[firstDown].name != names[firstDown] {
		t.Fatalf("fail mode: %d results, want %d ending in an unavailable entry", len(got), firstDown+1)
	}
}

// TestBatchGetStopsEarly: leaving the loop half-way through a batch of
// 10,000 objects stops every request and goroutine of the call.
func TestBatchGetStopsEarly(t *testing.T) {
	// Not parallel: goleak looks at every goroutine of the process.
	if testing.Short() {
		t.Skip("10,000 objects")
	}
	c := startCluster(t, 3, nil)
	names, _ := batchSeed(t, c, "stop", 10_000, func(int) int { return 1024 })
	client := c.Client()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer client.Close() // its idle connections, and the nodes' ends of them
	for _, stopAt := range []int{0, 1, 5_000} {
		n := 0
		for e, err := range client.BatchGet(t.Context(), names, &locality.BatchGetOptions{Window: 16}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Index == stopAt {
				break
			}
			n++
		}
		if n != stopAt {
			t.Fatalf("stopped after %d entries, want %d", n, stopAt)
		}
	}
}

// TestBatchClientStopsReading: a client that stops reading a batch half-way
// is cut off by the node after its ProgressTimeout; the node serves others
// meanwhile, and stops with nothing left running; the cut stream is never
// taken for whole.
func TestBatchClientStopsReading(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	c := startCluster(t, 1, &nodetest.Options{
		Logger:      debugLogger(logs),
		NodeOptions: func(_ string, o *node.Options) { o.ProgressTimeout, o.ProgressBytes = 300*time.Millisecond, 64<<10 },
	})
	names, _ := batchSeed(t, c, "slow", 96, func(int) int { return 256 << 10 }) // 24 MiB: more than the sockets hold
	body, _ := json.Marshal(locality.BatchRequest{Objects: names})
	nd, _ := c.Map().Node("n1")
	conn, err := net.Dial("tcp", strings.TrimPrefix(nd.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		c.Secret().AdminToken(time.Now().Add(time.Minute)), len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	// The client stops reading. Others are served meanwhile.
	got := batchCollect(t, c.Client(), names[:3], nil)
	if len(got) != 3 || got[2].err != nil {
		t.Fatalf("another batch meanwhile: %+v", got)
	}
	// The node stops: it waits for the stalled request, which its
	// ProgressTimeout ends.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.StopNode(ctx, "n1"); err != nil {
		t.Fatalf("stopping the node: %v", err)
	}
	if !strings.Contains(logs.String(), "request cut off") {
		t.Fatalf("no cut-off in the log:\n%s", logs)
	}
	// What is left of the response is not a whole stream.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net
	tr := tar.NewReader(io.MultiReader(bytes.NewReader(nil), resp.Body))
	var last string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		last = hdr.Name
		if _, err := io.Copy(io.Discard, tr); err != nil {
			break
		}
	}
	if last == locality.BatchEndMember {
		t.Fatal("the cut stream ends with the end member")
	}
}

// TestBatchGetBoundedMemory: a batch of 10,000 objects of 1 KiB (15 MB of
// tar) never has more than the window of entries per owner read from the
// network ahead of the caller.
func TestBatchGetBoundedMemory(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("10,000 objects")
	}
	c := startCluster(t, 3, nil)
	names, data := batchSeed(t, c, "mem", 10_000, func(int) int { return 1024 })
	ct := &batchCounting{rt: http.DefaultTransport.(*http.Transport).Clone()}
	defer ct.rt.CloseIdleConnections()
	client, err := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: c.Secret(), HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	for _, window := range []int{16, locality.DefaultBatchWindow} {
		// An entry is a 512-byte header and 1 KiB; a part may also have
		// read the next header, and its request's first bytes.
		bound := int64(3 * ((window+2)*1536 + 2048))
		ct.read.Store(0)
		var consumed, peak int64
		n := 0
		for e, err := range client.BatchGet(t.Context(), names, &locality.BatchGetOptions{Window: window}) {
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(e.Body)
			if !bytes.Equal(b, data[names[e.Index]]) {
				t.Fatalf("entry %d differs", e.Index)
			}
			consumed += 1536
			peak = max(peak, ct.read.Load()-consumed)
			n++
		}
		if n != len(names) {
			t.Fatalf("%d entries", n)
		}
		if peak > bound {
			t.Fatalf("window %d: %d bytes read ahead of the caller, over the bound %d", window, peak, bound)
		}
		t.Logf("window %d: at most %d bytes read ahead of the caller (bound %d) over %d bytes", window, peak, bound, ct.read.Load())
	}
}

// TestBatchGetHeapBounded: a batch of 10,000 objects of 16 KiB (160 MiB)
// goes through a heap that never holds more than a fraction of it: the
// process's HeapInuse, sampled every 100 entries, stays under 64 MiB
// over what it was before (the client reads at most 3 x 4 MiB ahead; the
// nodes hold at most 18 small objects each).
func TestBatchGetHeapBounded(t *testing.T) {
	// Not parallel: the heap is the whole process's.
	if testing.Short() {
		t.Skip("160 MiB")
	}
	c := startCluster(t, 3, nil)
	names, _ := batchSeed(t, c, "heap", 10_000, func(int) int { return 16 << 10 })
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	var total int64
	for e, err := range c.Client().BatchGet(t.Context(), names, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, e.Body)
		if err != nil || n != 16<<10 {
			t.Fatalf("entry %d: %d bytes, %v", e.Index, n, err)
		}
		total += n
		if e.Index%100 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if total != 10_000*16<<10 {
		t.Fatalf("read %d bytes", total)
	}
	t.Logf("HeapInuse %d MiB before, at most %d MiB during a batch of %d MiB", base>>20, peak>>20, total>>20)
	if peak-base > 64<<20 {
		t.Fatalf("HeapInuse grew by %d MiB during the batch, over 64 MiB", (peak-base)>>20)
	}
}

// batchCounting counts the bytes of the batch responses read.
type batchCounting struct {
	rt   *http.Transport
	read atomic.Int64
}

func (c *batchCounting) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil && r.URL.Path == "/v1/batch" {
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}

// Read many objects of a cluster in one call: the client asks each owner
// for its objects in one stream, and yields them in the order asked, a
// missing one as an error in its place.
func Example_batchGet() {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": batchUpper}})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	var names []insitu.Name
	for _, key := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		name := insitu.Name{Bucket: "docs", Key: key}
		if _, err := c.Put(ctx, name, strings.NewReader("text of "+key), -1); err != nil {
			panic(err)
		}
		names = append(names, name)
	}
	names = append(names, insitu.Name{Bucket: "docs", Key: "missing.txt"}, names[0])

	for e, err := range c.Client().BatchGet(ctx, names, &locality.BatchGetOptions{Transform: "upper"}) {
		if err != nil {
			if e == nil {
				panic(err) // the batch failed
			}
			fmt.Printf("%d %s: %v\n", e.Index, e.Object.Name, insitu.CodeOf(err))
			continue
		}
		b, _ := io.ReadAll(e.Body)
		fmt.Printf("%d %s: %s\n", e.Index, e.Object.Name, b)
	}
	// Output:
	// 0 docs/a.txt: TEXT OF A.TXT
	// 1 docs/b.txt: TEXT OF B.TXT
	// 2 docs/c.txt: TEXT OF C.TXT
	// 3 docs/d.txt: TEXT OF D.TXT
	// 4 docs/missing.txt: not_found
	// 5 docs/a.txt: TEXT OF A.TXT
}

// TestBatchGetStaleMap: a client whose map lacks a node reads the objects
// that node owns alone, in their places (the nodes answer not_owner for
// them), and brings its map up to date on the way; through a transform
// too.
func TestBatchGetStaleMap(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 4, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": batchUpper}})
	names, data := batchSeed(t, c, "stale", 80, func(i int) int { return 1 + i*13 })
	moved := 0
	for _, n := range names {
		if c.Map().Owner(n).ID == "n4" {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no name on n4")
	}
	for _, transform := range []string{"", "upper"} {
		old, err := locality.NewMap(0, c.Map().Nodes()[:3]...) // without n4
		if err != nil {
			t.Fatal(err)
		}
		client, err := locality.NewClient(old, &locality.ClientOptions{Secret: c.Secret()})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		got := batchCollect(t, client, names, &locality.BatchGetOptions{Transform: transform})
		if len(got) != len(names) {
			t.Fatalf("%d results for %d names", len(got), len(names))
		}
		for i, r := range got {
			want := data[names[i]]
			if transform != "" {
				want = bytes.ToUpper(want)
			}
			if r.err != nil || r.index != i || !bytes.Equal(r.data, want) {
				t.Fatalf("transform %q: entry %d (%s): %d bytes, %v", transform, i, names[i], len(r.data), r.err)
			}
		}
		if client.Map().Version() != 1 {
			t.Errorf("the client's map after the batch: %v", client.Map())
		}
	}
}

// TestBatchClientGoesAway: clients that close the connection just after
// the answer's status, while the node still opens objects ahead, leave
// nothing running: the node stops at once after.
func TestBatchClientGoesAway(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	names, _ := batchSeed(t, c, "away", 2000, func(int) int { return 100 })
	body, _ := json.Marshal(locality.BatchRequest{Objects: names})
	nd, _ := c.Map().Node("n1")
	for range 20 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(nd.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net
		fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
			c.Secret().AdminToken(time.Now().Add(time.Minute)), len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%v %v %s", resp.Status, err, b)
		}
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.StopNode(ctx, "n1"); err != nil {
		t.Fatalf("stopping the node after the clients left: %v", err)
	}
}

// TestBatchGetTransformedTooLarge: a transformed output over the node's
// MaxObjectSize is that entry's too_large, spooling stops there, and the
// entries after it are whole.
func TestBatchGetTransformedTooLarge(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": batchUpper},
		NodeOptions: func(_ string, o *node.Options) { o.MaxObjectSize = 2 << 20 }})
	names, data := batchSeed(t, c, "tl", 5, func(i int) int { return 100 })
	big := insitu.Name{Bucket: "tl", Key: "big-one"} // upper makes 1.5 MiB of it
	b := batchASCII("big-one", 3000)
	if _, err := c.Put(t.Context(), big, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	c2 := startCluster(t, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": batchUpper},
		NodeOptions: func(_ string, o *node.Options) { o.MaxObjectSize = 1 << 20 }})
	if _, err := c2.Put(t.Context(), big, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := c2.Put(t.Context(), name, bytes.NewReader(data[name]), -1); err != nil {
			t.Fatal(err)
		}
	}
	ask := append([]insitu.Name{big}, names...)
	for i, tc := range []struct {
		c        *nodetest.Cluster
		tooLarge bool
	}{{c, false}, {c2, true}} {
		got := batchCollect(t, tc.c.Client(), ask, &locality.BatchGetOptions{Transform: "upper"})
		if len(got) != len(ask) {
			t.Fatalf("cluster %d: %d results for %d names", i, len(got), len(ask))
		}
		if tc.tooLarge != errors.Is(got[0].err, insitu.TooLarge) || !tc.tooLarge && got[0].err != nil {
			t.Errorf("cluster %d: the big output: %d bytes, %v; want too_large %v", i, len(got[0].data), got[0].err, tc.tooLarge)
		}
		if !tc.tooLarge && len(got[0].data) != 3<<19 {
			t.Errorf("cluster %d: the big output is %d bytes, want %d", i, len(got[0].data), 3<<19)
		}
		for j, r := range got[1:] {
			if r.err != nil || !bytes.Equal(r.data, bytes.ToUpper(data[names[j]])) {
				t.Errorf("cluster %d, entry %d: %v", i, j+1, r.err)
			}
		}
	}
}

// TestBatchGetConfined: a batch answers every name as a GET of it does,
// and never with bytes from outside the store: an object (with its
// origin), one under a directory, a directory, a planted link to a file
// outside, a link to an object inside (refused too), a key through a
// linked directory, a bucket that is a link; and the origin a Put
// recorded comes back with the entry.
func TestBatchGetConfined(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	nd := c.Nodes()[0]
	store := nd.Dir()
	ctx := t.Context()
	origin := insitu.Origin{Input: insitu.Name{Bucket: "src", Key: "in"}, Version: "5-1", Transform: "t", Args: insitu.ArgsDigest("a")}
	if _, err := nd.PutOrigin(ctx, insitu.Name{Bucket: "b", Key: "file"}, strings.NewReader("hello"), 5, origin); err != nil {
		t.Fatal(err)
	}
	if _, err := nd.Put(ctx, insitu.Name{Bucket: "b", Key: "dir/inner"}, strings.NewReader("inner"), 5); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	outdir := filepath.Dir(outside)
	if err := os.WriteFile(outside, []byte("secret bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outdir, "x"), []byte("more secret bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		os.Symlink(outside, filepath.Join(store, "b", "link")),
		os.Symlink(filepath.Join(store, "b", "file"), filepath.Join(store, "b", "inlink")),
		os.Symlink("file", filepath.Join(store, "b", "rellink")),
		os.Symlink(outdir, filepath.Join(store, "b", "linkdir")),
		os.Symlink(outdir, filepath.Join(store, "linkb")),
		os.Symlink("b", filepath.Join(store, "inb")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var names []insitu.Name
	for _, n := range []string{"b/file", "b/dir/inner", "b/dir", "b/link", "b/inlink", "b/rellink", "b/linkdir/x", "linkb/x", "inb/file", "b/missing", "b/file/x"} {
		bucket, key, _ := strings.Cut(n, "/")
		names = append(names, insitu.Name{Bucket: bucket, Key: key})
	}
	got := batchCollect(t, c.Client(), names, nil)
	if len(got) != len(names) {
		t.Fatalf("%d results for %d names", len(got), len(names))
	}
	for i, r := range got {
		name := names[i]
		var want []byte
		rc, obj, werr := c.Client().Get(ctx, name)
		if werr == nil {
			want, werr = io.ReadAll(rc)
			rc.Close()
		}
		switch {
		case r.batch || r.index != i:
			t.Fatalf("%s: result %+v", name, r)
		case bytes.Contains(r.data, []byte("secret")) || strings.Contains(fmt.Sprint(r.err), "secret"):
			t.Errorf("%s: bytes from outside the store: %q, %v", name, r.data, r.err)
		case insitu.CodeOf(r.err) != insitu.CodeOf(werr):
			t.Errorf("%s: batch %v, GET %v: want the same code", name, r.err, werr)
		case !bytes.Equal(r.data, want):
			t.Errorf("%s: batch %q, GET %q", name, r.data, want)
		case r.err == nil && r.origin != obj.Origin:
			t.Errorf("%s: batch origin %q, GET %q", name, r.origin, obj.Origin)
		}
	}
	wantCodes := map[string]insitu.Code{"b/dir": insitu.NotFound, "b/link": insitu.PermissionDenied, "b/inlink": insitu.PermissionDenied,
		"b/rellink": insitu.PermissionDenied, "b/missing": insitu.NotFound}
	for i, r := range got {
		if code, ok := wantCodes[names[i].String()]; ok && insitu.CodeOf(r.err) != code {
			t.Errorf("%s: %v, want %v", names[i], r.err, code)
		}
	}
	if string(got[0].data) != "hello" || got[0].origin != origin.String() || string(got[1].data) != "inner" {
		t.Errorf("the objects: %q (origin %q), %q; want hello (origin %q), inner", got[0].data, got[0].origin, got[1].data, origin.String())
	}
}

// TestBatchWireBytes: the node's batch stream is, byte for byte, what
// archive/tar writes for the members it decodes to (the node writes the
// ustar headers of small objects by hand): sizes around a block, names
// of 100 bytes (ustar), 101 (ustar's prefix), not ASCII (pax), an origin
// (pax), times with a fraction of a second, before 1970 and past ustar's
// octal field, an object over the size read whole, an error member and
// the end member.
func TestBatchWireBytes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	nd := c.Nodes()[0]
	ctx := t.Context()
	var names []insitu.Name
	put := func(key string, size int) insitu.Name {
		t.Helper()
		name := insitu.Name{Bucket: "b", Key: key}
		if _, err := nd.Put(ctx, name, bytes.NewReader(batchASCII(key, size)), int64(size)); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		return name
	}
	for _, size := range []int{0, 1, 511, 512, 513, 1000, 70_000} {
		put(fmt.Sprintf("size-%d", size), size)
	}
	put(strings.Repeat("k", 98), 10) // "b/" + 98: 100 bytes
	put(strings.Repeat("k", 99), 10) // 101
	put("d/"+strings.Repeat("k", 120), 10)
	put("ünï", 10)
	for i, when := range []time.Time{time.Unix(1_700_000_000, 499_999_999), time.Unix(1_700_000_000, 500_000_000), time.Unix(-5, 0), time.Unix(1<<33, 0), time.Unix(1<<33-1, 0)} {
		name := put(fmt.Sprintf("time-%d", i), 3)
		if err := os.Chtimes(nd.Path(name), when, when); err != nil {
			t.Fatal(err)
		}
	}
	origin := insitu.Origin{Input: insitu.Name{Bucket: "src", Key: "in"}, Version: "5-1", Transform: "t", Args: insitu.ArgsDigest("")}
	if _, err := nd.PutOrigin(ctx, insitu.Name{Bucket: "b", Key: "origin"}, strings.NewReader("abc"), 3, origin); err != nil {
		t.Fatal(err)
	}
	names = append(names, insitu.Name{Bucket: "b", Key: "origin"}, insitu.Name{Bucket: "b", Key: "missing"}, names[0], names[2])

	body, _ := json.Marshal(locality.BatchRequest{Objects: names})
	resp, raw := batchPost(t, c, nd.ID(), body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %q", resp.Status, raw)
	}
	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	tr := tar.NewReader(bytes.NewReader(raw))
	members := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, code := hdr.PAXRecords[locality.BatchErrorRecord]; !code && hdr.Name != locality.BatchEndMember {
			bucket, key, _ := strings.Cut(hdr.Name, "/")
			fi, err := os.Stat(nd.Path(insitu.Name{Bucket: bucket, Key: key}))
			if err != nil || !hdr.ModTime.Equal(fi.ModTime().Round(time.Second)) || hdr.Size != fi.Size() {
				t.Errorf("%s: modified %v, %d bytes; want %v, %d (%v)", hdr.Name, hdr.ModTime, hdr.Size, fi.ModTime().Round(time.Second), fi.Size(), err)
			}
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: hdr.Name, Size: hdr.Size, Mode: 0o644, ModTime: hdr.ModTime}
		for _, k := range []string{locality.BatchErrorRecord, locality.BatchOriginRecord} {
			if v, ok := hdr.PAXRecords[k]; ok {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
		members++
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if members != len(names)+1 {
		t.Fatalf("%d members for %d names", members, len(names))
	}
	if !bytes.Equal(raw, want.Bytes()) {
		for i := range min(len(raw), want.Len()) {
			if raw[i] != want.Bytes()[i] {
				t.Fatalf("the stream (%d bytes) differs from archive/tar's (%d bytes) at byte %d (block %d, offset %d): %q, want %q",
					len(raw), want.Len(), i, i/512, i%512, raw[i/512*512:i/512*512+512], want.Bytes()[i/512*512:i/512*512+512])
			}
		}
		t.Fatalf("the stream has %d bytes, archive/tar's %d", len(raw), want.Len())
	}
}
