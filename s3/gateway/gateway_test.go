package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/s3/gateway"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

const (
	accessKey = "AKIDINSITUTEST"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	nMany     = 1200 // keys under many/, more than one page of 1000
)

// upper is the transform the "upper" bucket reads through.
var upper = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	_, err = out.Write(bytes.ToUpper(b))
	return err
})

// failMid writes 256 KiB of its output, then fails.
var failMid = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if _, err := out.Write(bytes.Repeat([]byte("x"), 256<<10)); err != nil {
		return err
	}
	return errors.New("the transform broke half way")
})

// env is a 3-node cluster with bucket "data", and a gateway over it on
// httptest.
type env struct {
	c       *nodetest.Cluster
	srv     *httptest.Server
	objects map[string][]byte // the keys of bucket data and their bytes
	lists   atomic.Int64      // ListObjectsV2 requests the gateway served
}

// bigBody is 300 KiB of mixed-case text.
func bigBody() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 300<<10; i++ {
		fmt.Fprintf(&b, "Line %d of the Big Object, MiXeD case.\n", i)
	}
	return b.Bytes()
}

// startEnv starts the cluster and the gateway (with opts, or the four
// buckets plain, upper, broken and ghost), with the nMany keys under
// many/ when many is set.
func startEnv(t *testing.T, opts *gateway.Options, many bool) *env {
	t.Helper()
	t.Parallel()
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper, "failmid": failMid}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{c: c, objects: map[string][]byte{
		"hello.txt":      []byte("hello, world"),
		"big.bin":        bigBody(),
		"dir/a":          []byte("a"),
		"dir/b":          []byte("bb"),
		"dir/sub/c":      []byte("ccc"),
		"empty":          {},
		"sp ace/ü+%.txt": []byte("odd key"),
	}}
	for i := range nMany * btoi(many) {
		e.objects[fmt.Sprintf("many/%04d", i)] = fmt.Appendf(nil, "object %d", i)
	}
	keys := make(chan string)
	var wg sync.WaitGroup
	var perr atomic.Value
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				if _, err := c.Put(ctx, insitu.Name{Bucket: "data", Key: k}, bytes.NewReader(e.objects[k]), int64(len(e.objects[k]))); err != nil {
					perr.Store(err)
				}
			}
		})
	}
	for k := range e.objects {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err, _ := perr.Load().(error); err != nil {
		t.Fatal(err)
	}
	o := gateway.Options{
		Buckets: map[string]gateway.Bucket{
			"plain":  {Source: "data"},
			"upper":  {Source: "data", Transform: []string{"upper"}},
			"broken": {Source: "data", Transform: []string{"failmid"}},
			"ghost":  {Source: "data", Transform: []string{"nosuch"}},
		},
		Credentials: map[string]string{accessKey: secretKey},
	}
	if opts != nil {
		o = *opts
	}
	g, err := gateway.New(c.Client(), &o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("list-type") == "2" {
			e.lists.Add(1)
		}
		g.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *env) client(t *testing.T, key, secret string) *minio.Client {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(key, secret, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath, MaxRetries: 1, Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func code(err error) string { return minio.ToErrorResponse(err).Code }

func TestListObjectsV2(t *testing.T) {
	e := startEnv(t, nil, true)
	mc := e.client(t, accessKey, secretKey)
	ctx := context.Background()

	list := func(bucket string, o minio.ListObjectsOptions) ([]string, []int64) {
		t.Helper()
		var keys []string
		var sizes []int64
		for oi := range mc.ListObjects(ctx, bucket, o) {
			if oi.Err != nil {
				t.Fatalf("list %s %+v: %v", bucket, o, oi.Err)
			}
			keys = append(keys, oi.Key)
			sizes = append(sizes, oi.Size)
		}
		return keys, sizes
	}
	all := make([]string, 0, len(e.objects))
	for k := range e.objects {
		all = append(all, k)
	}
	slices.Sort(all)

	// Everything, in pages of the default 1000.
	e.lists.Store(0)
	keys, sizes := list("plain", minio.ListObjectsOptions{Recursive: true})
	if !slices.Equal(keys, all) {
		t.Fatalf("listed %d keys, want %d in order", len(keys), len(all))
	}
	for i, k := range keys {
		if sizes[i] != int64(len(e.objects[k])) {
			t.Errorf("%s: size %d, want %d", k, sizes[i], len(e.objects[k]))
		}
	}
	if n := e.lists.Load(); n != 2 {
		t.Errorf("%d keys in %d pages, want 2", len(keys), n)
	}

	// A prefix, in pages of 300.
	e.lists.Store(0)
	keys, _ = list("plain", minio.ListObjectsOptions{Prefix: "many/", Recursive: true, MaxKeys: 300})
	if len(keys) != nMany || keys[0] != "many/0000" || keys[nMany-1] != fmt.Sprintf("many/%04d", nMany-1) || !slices.IsSorted(keys) {
		t.Fatalf("many/: %d keys", len(keys))
	}
	if n := e.lists.Load(); n != 4 {
		t.Errorf("%d keys in pages of 300: %d pages, want 4", nMany, n)
	}

	// The delimiter "/": common prefixes, with the 1,200 keys under many/
	// skipped.
	// (minio-go yields a page's objects, then its common prefixes.)
	want := []string{"big.bin", "dir/", "empty", "hello.txt", "many/", "sp ace/"}
	if keys, _ = list("plain", minio.ListObjectsOptions{}); !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
		t.Errorf("top level: %q, want %q", keys, want)
	}
	// One entry a page: the continuation token after a common prefix
	// skips its keys.
	e.lists.Store(0)
	if keys, _ = list("plain", minio.ListObjectsOptions{MaxKeys: 1}); !slices.Equal(keys, want) {
		t.Errorf("top level, one a page: %q, want %q", keys, want)
	}
	if n := e.lists.Load(); n != int64(len(want)) {
		t.Errorf("%d entries one a page in %d pages", len(want), n)
	}
	want = []string{"dir/a", "dir/b", "dir/sub/"}
	if keys, _ = list("plain", minio.ListObjectsOptions{Prefix: "dir/"}); !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
		t.Errorf("dir/: %q, want %q", keys, want)
	}
	// start-after.
	if keys, _ = list("plain", minio.ListObjectsOptions{Prefix: "many/", StartAfter: "many/1195", Recursive: true}); !slices.Equal(keys, []string{"many/1196", "many/1197", "many/1198", "many/1199"}) {
		t.Errorf("start-after many/1195: %q", keys)
	}
	// A transformed bucket lists the same keys, with unknown sizes.
	keys, sizes = list("upper", minio.ListObjectsOptions{Prefix: "dir/", Recursive: true})
	if !slices.Equal(keys, []string{"dir/a", "dir/b", "dir/sub/c"}) || sizes[0] != -1 {
		t.Errorf("upper dir/: %q %v", keys, sizes)
	}
	// An unmapped bucket.
	for oi := range mc.ListObjects(ctx, "data", minio.ListObjectsOptions{}) {
		if code(oi.Err) != "NoSuchBucket" {
			t.Errorf("listing an unmapped bucket: %v", oi.Err)
		}
	}
	// Buckets.
	bs, err := mc.ListBuckets(ctx)
	if err != nil || len(bs) != 4 || bs[0].Name != "broken" || bs[3].Name != "upper" {
		t.Errorf("ListBuckets: %v, %v", bs, err)
	}
	if ok, err := mc.BucketExists(ctx, "upper"); !ok || err != nil {
		t.Errorf("BucketExists(upper): %v, %v", ok, err)
	}
	if ok, err := mc.BucketExists(ctx, "data"); ok || err != nil {
		t.Errorf("BucketExists(data): %v, %v", ok, err)
	}
}

func TestRawListRefusals(t *testing.T) {
	e := startEnv(t, nil, true)
	for _, tc := range []struct{ query, code string }{
		{"list-type=2&delimiter=-", "NotImplemented"},
		{"list-type=2&max-keys=-1", "InvalidArgument"},
		{"list-type=2&continuation-token=%21%21", "InvalidArgument"},
		{"list-type=2&prefix=" + strings.Repeat("p", 1025), "KeyTooLongError"},
		{"", "NotImplemented"}, // ListObjects V1
		{"acl=", "NotImplemented"},
		{"list-type=2&versions=", "NotImplemented"},
	} {
		resp := e.do(t, http.MethodGet, "/plain/?"+tc.query, nil)
		if got := errCode(t, resp); got != tc.code {
			t.Errorf("GET /plain/?%.40s: %s, want %s", tc.query, got, tc.code)
		}
	}
	// A max-keys over 1000 is lowered to it.
	resp := e.do(t, http.MethodGet, "/plain/?list-type=2&max-keys=5000&prefix=many/", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(b), "<Contents>"); n != 1000 || !strings.Contains(string(b), "<MaxKeys>1000</MaxKeys>") || !strings.Contains(string(b), "<IsTruncated>true</IsTruncated>") {
		t.Errorf("max-keys=5000: %d objects", n)
	}
}

// do sends a request signed with the right key.
func (e *env) do(t *testing.T, method, path string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps := req.Header
	for k, v := range h {
		maps[k] = v
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, accessKey, secretKey, "", "us-east-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// errCode reads the S3 error code of resp's XML body, and closes it.
func errCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	if !strings.HasPrefix(string(b), "<?xml") || resp.Header.Get("Content-Type") != "application/xml" {
		t.Errorf("%s: error body %q is not S3's XML", resp.Status, b)
	}
	i, j := strings.Index(string(b), "<Code>"), strings.Index(string(b), "</Code>")
	if i < 0 || j < i {
		return "no code"
	}
	return string(b[i+6 : j])
}

func TestGetObject(t *testing.T) {
	e := startEnv(t, nil, false)
	mc := e.client(t, accessKey, secretKey)
	ctx := context.Background()
	get := func(bucket, key string, o minio.GetObjectOptions) ([]byte, error) {
		obj, err := mc.GetObject(ctx, bucket, key, o)
		if err != nil {
			return nil, err
		}
		defer obj.Close()
		return io.ReadAll(obj)
	}
	for _, k := range []string{"hello.txt", "big.bin", "empty", "dir/sub/c", "sp ace/ü+%.txt"} {
		b, err := get("plain", k, minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(b, e.objects[k]) {
			t.Errorf("plain/%s: %d bytes, %v; want %d", k, len(b), err, len(e.objects[k]))
		}
		b, err = get("upper", k, minio.GetObjectOptions{})
		if err != nil || !bytes.Equal(b, bytes.ToUpper(e.objects[k])) {
			t.Errorf("upper/%s: %d bytes, %v; want %d", k, len(b), err, len(e.objects[k]))
		}
	}
	// A range of a plain object.
	var o minio.GetObjectOptions
	_ = o.SetRange(100, 199)
	if b, err := get("plain", "big.bin", o); err != nil || !bytes.Equal(b, e.objects["big.bin"][100:200]) {
		t.Errorf("range 100-199: %q, %v", b, err)
	}
	_ = o.SetRange(0, -5)
	if b, err := get("plain", "big.bin", o); err != nil || !bytes.Equal(b, e.objects["big.bin"][len(e.objects["big.bin"])-5:]) {
		t.Errorf("last 5 bytes: %q, %v", b, err)
	}

	// Stat.
	before := time.Now().Add(-time.Minute)
	st, err := mc.StatObject(ctx, "plain", "big.bin", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(e.objects["big.bin"])) || st.ETag == "" || st.LastModified.Before(before) {
		t.Errorf("stat plain/big.bin: %+v, %v", st, err)
	}
	st2, err := mc.StatObject(ctx, "upper", "big.bin", minio.StatObjectOptions{})
	if err != nil || st2.Size != int64(len(e.objects["big.bin"])) || st2.ETag == "" || st2.ETag == st.ETag || !st2.LastModified.Equal(st.LastModified) {
		t.Errorf("stat upper/big.bin: %+v, %v (plain ETag %s)", st2, err, st.ETag)
	}
	// The listing says the same.
	for _, b := range []string{"plain", "upper"} {
		for oi := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{Prefix: "big.bin"}) {
			want := st.ETag
			if b == "upper" {
				want = st2.ETag
			}
			if oi.Err != nil || oi.ETag != want || !oi.LastModified.Truncate(time.Second).Equal(st.LastModified) {
				t.Errorf("%s: listed %+v, stat says ETag %s", b, oi, want)
			}
		}
	}
	if st, err := mc.StatObject(ctx, "plain", "hello.txt", minio.StatObjectOptions{}); err != nil || st.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("stat plain/hello.txt: content type %q, %v", st.ContentType, err)
	}
	resp := e.do(t, http.MethodHead, "/upper/hello.txt", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != "12" || resp.Header.Get("ETag") != etagOf(t, mc, "upper", "hello.txt") {
		t.Errorf("HEAD upper/hello.txt: %s %v", resp.Status, resp.Header)
	}
	// The ETag is stable, and If-Match holds it to the version.
	var gm minio.GetObjectOptions
	_ = gm.SetMatchETag(st.ETag)
	if b, err := get("plain", "big.bin", gm); err != nil || len(b) != len(e.objects["big.bin"]) {
		t.Errorf("If-Match the ETag: %d bytes, %v", len(b), err)
	}
	_ = gm.SetMatchETag("0123")
	if _, err := get("plain", "big.bin", gm); code(err) != "PreconditionFailed" {
		t.Errorf("If-Match another ETag: %v", err)
	}

	// Missing objects and buckets.
	if _, err := get("plain", "nope", minio.GetObjectOptions{}); code(err) != "NoSuchKey" {
		t.Errorf("GET plain/nope: %v", err)
	}
	if _, err := get("upper", "nope", minio.GetObjectOptions{}); code(err) != "NoSuchKey" {
		t.Errorf("GET upper/nope: %v", err)
	}
	if _, err := mc.StatObject(ctx, "plain", "dir", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
		t.Errorf("stat plain/dir (a prefix): %v", err)
	}
	if _, err := get("data", "hello.txt", minio.GetObjectOptions{}); code(err) != "NoSuchBucket" {
		t.Errorf("GET data/hello.txt (unmapped): %v", err)
	}
	// (minio-go refuses such a key itself.)
	if resp := e.do(t, http.MethodGet, "/plain/"+strings.Repeat("k", 1025), nil); errCode(t, resp) != "KeyTooLongError" {
		t.Errorf("a key of 1025 bytes: %s", resp.Status)
	}
	// An owner that does not know the transform.
	if _, err := get("ghost", "hello.txt", minio.GetObjectOptions{}); code(err) != "InternalError" {
		t.Errorf("GET through an unknown transform: %v", err)
	}
	// Ranges of a transformed object (its chain runs once to count the
	// output, once to serve the range).
	big := bytes.ToUpper(e.objects["big.bin"])
	for _, r := range [][2]int64{{0, 9}, {1000, 99999}, {int64(len(big)) - 10, 0}, {0, -7}, {int64(len(big)) - 1, int64(len(big)) + 100}} {
		_ = o.SetRange(r[0], r[1])
		want := big[r[0]:]
		switch {
		case r[1] < 0:
			want = big[int64(len(big))+r[1]:]
		case r[1] > 0:
			want = big[r[0]:min(r[1]+1, int64(len(big)))]
		}
		if b, err := get("upper", "big.bin", o); err != nil || !bytes.Equal(b, want) {
			t.Errorf("upper/big.bin range %v: %d bytes, %v; want %d", r, len(b), err, len(want))
		}
	}
	_ = o.SetRange(int64(len(big)), 0)
	if _, err := get("upper", "big.bin", o); code(err) != "InvalidRange" {
		t.Errorf("a range past the end of a transformed object: %v", err)
	}
	if _, err := mc.StatObject(ctx, "broken", "hello.txt", minio.StatObjectOptions{}); minio.ToErrorResponse(err).StatusCode != http.StatusInternalServerError {
		t.Errorf("HEAD of an object whose transform fails: %v", err)
	}
}

func etagOf(t *testing.T, mc *minio.Client, bucket, key string) string {
	t.Helper()
	st, err := mc.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return `"` + st.ETag + `"`
}

// TestCutMidStream: a transform that fails after 256 KiB of output; the S3
// client's reader ends with an error, not a short clean read.
func TestCutMidStream(t *testing.T) {
	e := startEnv(t, nil, false)
	mc := e.client(t, accessKey, secretKey)
	obj, err := mc.GetObject(context.Background(), "broken", "hello.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	n, err := io.Copy(io.Discard, obj)
	if err == nil {
		t.Fatalf("minio-go read %d bytes of a broken output and no error", n)
	}
	if n >= 256<<10 {
		t.Errorf("read %d bytes: all of the output before the failure", n)
	}
	t.Logf("minio-go: %d bytes, then %v", n, err)

	// Plain net/http too.
	resp := e.do(t, http.MethodGet, "/broken/big.bin", nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 {
		t.Fatalf("%s, length %d", resp.Status, resp.ContentLength)
	}
	n, err = io.Copy(io.Discard, resp.Body)
	if err == nil || n >= 256<<10 {
		t.Errorf("net/http read %d bytes, %v", n, err)
	}
}

func TestAuth(t *testing.T) {
	e := startEnv(t, nil, false)
	ctx := context.Background()
	get := func(mc *minio.Client) error {
		obj, err := mc.GetObject(ctx, "plain", "hello.txt", minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		_, err = io.ReadAll(obj)
		return err
	}
	if err := get(e.client(t, accessKey, "wrong secret")); code(err) != "SignatureDoesNotMatch" {
		t.Errorf("a wrong secret: %v", err)
	}
	if err := get(e.client(t, "AKIDUNKNOWN", secretKey)); code(err) != "InvalidAccessKeyId" {
		t.Errorf("an unknown key: %v", err)
	}
	if _, err := e.client(t, accessKey, "wrong").StatObject(ctx, "plain", "hello.txt", minio.StatObjectOptions{}); minio.ToErrorResponse(err).StatusCode != http.StatusForbidden {
		t.Errorf("HEAD with a wrong secret: %v", err)
	}

	// Anonymous.
	resp, err := http.Get(e.srv.URL + "/plain/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := errCode(t, resp); got != "AccessDenied" || resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous: %s %s", resp.Status, got)
	}

	// Tampered: the signature, the path, a signed header.
	sign := func(path string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req.Header.Set("Range", "bytes=0-3")
		return signer.SignV4(*req, accessKey, secretKey, "", "us-east-1")
	}
	send := func(req *http.Request) (*http.Response, string) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, errCode(t, resp)
	}
	if _, got := send(sign("/plain/hello.txt")); got != "status 206" {
		t.Fatalf("a good signature: %s", got)
	}
	req := sign("/plain/hello.txt")
	a := req.Header.Get("Authorization")
	last := a[len(a)-1]
	flip := byte('0')
	if last == '0' {
		flip = '1'
	}
	req.Header.Set("Authorization", a[:len(a)-1]+string(flip))
	if resp, got := send(req); got != "SignatureDoesNotMatch" || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a tampered signature: %s %s", resp.Status, got)
	}
	req = sign("/plain/hello.txt")
	req.URL.Path = "/plain/big.bin"
	if _, got := send(req); got != "SignatureDoesNotMatch" {
		t.Errorf("a tampered path: %s", got)
	}
	req = sign("/plain/hello.txt")
	req.Header.Set("Range", "bytes=0-9")
	if _, got := send(req); got != "SignatureDoesNotMatch" {
		t.Errorf("a tampered signed header: %s", got)
	}
	req = sign("/plain/hello.txt")
	req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "us-east-1", "eu-west-1", 1))
	if _, got := send(req); got != "AuthorizationHeaderMalformed" {
		t.Errorf("another region: %s", got)
	}
	req = sign("/plain/hello.txt")
	req.Header.Set("Authorization", "AWS "+accessKey+":c2lnbmF0dXJl")
	if _, got := send(req); got != "AccessDenied" {
		t.Errorf("Signature V2: %s", got)
	}

	// Read-only.
	mc := e.client(t, accessKey, secretKey)
	if _, err := mc.PutObject(ctx, "plain", "new.txt", strings.NewReader("new"), 3, minio.PutObjectOptions{}); code(err) != "AccessDenied" {
		t.Errorf("PutObject: %v", err)
	}
	if err := mc.RemoveObject(ctx, "plain", "hello.txt", minio.RemoveObjectOptions{}); code(err) != "AccessDenied" {
		t.Errorf("RemoveObject: %v", err)
	}
	if _, err := e.c.Client().Head(ctx, insitu.Name{Bucket: "data", Key: "hello.txt"}); err != nil {
		t.Errorf("hello.txt after RemoveObject: %v", err)
	}
	if _, err := e.c.Client().Head(ctx, insitu.Name{Bucket: "data", Key: "new.txt"}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("new.txt after PutObject: %v", err)
	}
	if resp := e.do(t, http.MethodOptions, "/plain/hello.txt", nil); resp.StatusCode != http.StatusMethodNotAllowed || errCode(t, resp) != "MethodNotAllowed" {
		t.Errorf("OPTIONS: %s", resp.Status)
	}

	// Presigned URLs.
	u, err := mc.PresignedGetObject(ctx, "upper", "hello.txt", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "HELLO, WORLD" {
		t.Errorf("a presigned GET: %s %q", resp.Status, b)
	}
	bad := *u
	q := bad.Query()
	q.Set("X-Amz-Signature", strings.Repeat("0", 64))
	bad.RawQuery = q.Encode()
	if resp, err = http.Get(bad.String()); err != nil {
		t.Fatal(err)
	}
	if got := errCode(t, resp); got != "SignatureDoesNotMatch" {
		t.Errorf("a tampered presigned URL: %s", got)
	}
}

// TestClock: a request signed 20 minutes ago (the gateway's clock runs
// ahead) is refused, and so is a presigned URL past its expiry.
func TestClock(t *testing.T) {
	var skew atomic.Int64
	e := startEnv(t, &gateway.Options{
		Buckets:     map[string]gateway.Bucket{"plain": {Source: "data"}},
		Credentials: map[string]string{accessKey: secretKey},
		Now:         func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	}, false)
	mc := e.client(t, accessKey, secretKey)
	ctx := context.Background()
	u, err := mc.PresignedGetObject(ctx, "plain", "hello.txt", 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(14 * time.Minute))
	if _, err := mc.StatObject(ctx, "plain", "hello.txt", minio.StatObjectOptions{}); err != nil {
		t.Errorf("14 minutes apart: %v", err)
	}
	skew.Store(int64(20 * time.Minute))
	if resp := e.do(t, http.MethodGet, "/plain/hello.txt", nil); errCode(t, resp) != "RequestTimeTooSkewed" || resp.StatusCode != http.StatusForbidden {
		t.Errorf("20 minutes apart: %s", resp.Status)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := errCode(t, resp); got != "AccessDenied" {
		t.Errorf("an expired presigned URL: %s", got)
	}
}

// TestNodeDown: a listing that would miss a node's objects fails.
func TestNodeDown(t *testing.T) {
	e := startEnv(t, nil, false)
	if err := e.c.StopNode(context.Background(), "n2"); err != nil {
		t.Fatal(err)
	}
	resp := e.do(t, http.MethodGet, "/plain/?list-type=2", nil)
	if got := errCode(t, resp); got != "ServiceUnavailable" || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("listing with a node down: %s %s", resp.Status, got)
	}
}

func TestNew(t *testing.T) {
	c, err := nodetest.Start(context.Background(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	creds := map[string]string{"k": "s"}
	for _, o := range []*gateway.Options{
		nil,
		{Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: "b"}}},
		{Buckets: map[string]gateway.Bucket{"a/b": {Source: "b"}}, Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: ""}}, Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: "b", Transform: []string{"x", "x"}}}, Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: "b", Transform: []string{"x,y"}}}, Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: "b", Args: "w=1"}}, Credentials: creds},
		{Buckets: map[string]gateway.Bucket{"a": {Source: "b"}}, Credentials: map[string]string{"k": ""}},
	} {
		if _, err := gateway.New(c.Client(), o); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("New(%+v): %v", o, err)
		}
	}
	if _, err := gateway.New(nil, &gateway.Options{Buckets: map[string]gateway.Bucket{"a": {Source: "b"}}, Credentials: creds}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("New(nil client): %v", err)
	}
}
