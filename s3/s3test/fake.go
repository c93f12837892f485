package s3test

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Fake is a small in-memory S3 service on 127.0.0.1, for what a real
// server cannot hold or cannot do on demand: keys a posix-backed server
// refuses or rewrites ("a//b", "../x", "/abs", "x/./y"), listings and PUTs
// that fail with 503 SlowDown, bodies cut short. It serves ListObjectsV2
// (prefix, start-after, continuation-token, max-keys, encoding-type=url),
// GetObject, HeadObject and single PutObject (plain or aws-chunked
// bodies), with path-style addressing, and checks no signatures. Use
// [Start] for everything else.
type Fake struct {
	// Endpoint is the server's "127.0.0.1:port"; URL is "http://" + Endpoint.
	Endpoint, URL string
	// Client is a client of the fake with minio-go's own retries off
	// (MaxRetries 1), so that a failure shows at once.
	Client *minio.Client

	srv *http.Server

	mu        sync.Mutex
	buckets   map[string]map[string][]byte
	failLists int  // the next failLists listing requests answer 503 SlowDown
	failPuts  int  // the next failPuts PUTs answer 503 SlowDown
	puts      int  // PUT requests served
	cutBodies bool // GETs send half the body, then drop the connection
	lists     int  // listing requests served
}

// StartFake starts a Fake for the test t and stops it when t ends.
func StartFake(t testing.TB) *Fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	f := &Fake{Endpoint: l.Addr().String(), buckets: map[string]map[string][]byte{}}
	f.URL = "http://" + f.Endpoint
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(l)
	t.Cleanup(func() { f.srv.Close() })
	f.Client, err = minio.New(f.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: Region, MaxRetries: 1,
	})
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return f
}

// Put stores data under bucket/key, creating the bucket.
func (f *Fake) Put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[bucket] == nil {
		f.buckets[bucket] = map[string][]byte{}
	}
	f.buckets[bucket][key] = data
}

// MakeBucket creates an empty bucket.
func (f *Fake) MakeBucket(bucket string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[bucket] == nil {
		f.buckets[bucket] = map[string][]byte{}
	}
}

// FailLists makes the next n listing requests fail with 503 SlowDown.
func (f *Fake) FailLists(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failLists = n
}

// FailPuts makes the next n PUT requests fail with 503 SlowDown.
func (f *Fake) FailPuts(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPuts = n
}

// Puts returns the number of PUT requests served, failed ones included.
func (f *Fake) Puts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts
}

// Object returns the bytes stored under bucket/key.
func (f *Fake) Object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket][key]
	return b, ok
}

// CutBodies makes GETs send half of the body they announce, then drop the
// connection.
func (f *Fake) CutBodies(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutBodies = on
}

// Lists returns the number of listing requests served, failed ones
// included.
func (f *Fake) Lists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

type listResult struct {
	XMLName               xml.Name   `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string     `xml:"Name"`
	Prefix                string     `xml:"Prefix"`
	StartAfter            string     `xml:"StartAfter,omitempty"`
	KeyCount              int        `xml:"KeyCount"`
	MaxKeys               int        `xml:"MaxKeys"`
	IsTruncated           bool       `xml:"IsTruncated"`
	ContinuationToken     string     `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string     `xml:"NextContinuationToken,omitempty"`
	EncodingType          string     `xml:"EncodingType"`
	Contents              []contents `xml:"Contents"`
}

type contents struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	p, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		fakeError(w, http.StatusBadRequest, "InvalidURI", err.Error())
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.buckets[bucket]
	switch {
	case !ok:
		fakeError(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
	case key == "" && r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
		f.list(w, r, bucket, objs)
	case key != "" && r.Method == http.MethodPut && len(r.URL.Query()) == 0:
		f.puts++
		if f.failPuts > 0 {
			f.failPuts--
			io.Copy(io.Discard, r.Body)
			fakeError(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		}
		data, err := readBody(r)
		if err != nil {
			fakeError(w, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
		objs[key] = data
		w.Header().Set("ETag", `"fake"`)
		w.WriteHeader(http.StatusOK)
	case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		data, ok := objs[key]
		if !ok {
			fakeError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("ETag", `"fake"`)
		w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		if f.cutBodies {
			w.Write(data[:len(data)/2])
			panic(http.ErrAbortHandler) // drops the connection
		}
		w.Write(data)
	default:
		fakeError(w, http.StatusNotImplemented, "NotImplemented", "the fake does not do "+r.Method+" "+r.URL.String())
	}
}

func (f *Fake) list(w http.ResponseWriter, r *http.Request, bucket string, objs map[string][]byte) {
	f.lists++
	if f.failLists > 0 {
		f.failLists--
		fakeError(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	}
	q := r.URL.Query()
	res := listResult{Name: bucket, Prefix: q.Get("prefix"), StartAfter: q.Get("start-after"), MaxKeys: 1000,
		ContinuationToken: q.Get("continuation-token"), EncodingType: "url"}
	if n, err := strconv.Atoi(q.Get("max-keys")); err == nil && n > 0 && n < 1000 {
		res.MaxKeys = n
	}
	after := max(res.StartAfter, res.ContinuationToken) // the token is the last key sent
	keys := make([]string, 0, len(objs))
	for k := range objs {
		if strings.HasPrefix(k, res.Prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > res.MaxKeys {
		keys = keys[:res.MaxKeys]
		res.IsTruncated = true
		res.NextContinuationToken = keys[len(keys)-1]
	}
	for _, k := range keys {
		res.Contents = append(res.Contents, contents{Key: url.QueryEscape(k), LastModified: "2024-01-01T00:00:00.000Z",
			ETag: `"fake"`, Size: len(objs[k]), StorageClass: "STANDARD"})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}

func fakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>%s</Message></Error>", xml.Header, code, msg)
}

// readBody reads a PUT's body, decoding the aws-chunked encoding of
// minio-go's streaming signature: "<hex size>;chunk-signature=<sig>\r\n",
// the bytes, "\r\n", ending with a chunk of size 0.
func readBody(r *http.Request) ([]byte, error) {
	if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return io.ReadAll(r.Body)
	}
	br := bufio.NewReader(r.Body)
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked header: %w", err)
		}
		hexSize, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(hexSize, 16, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("aws-chunked size %q", hexSize)
		}
		if n == 0 {
			return out, nil
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(br, out[start:]); err != nil {
			return nil, fmt.Errorf("aws-chunked data: %w", err)
		}
		if crlf, err := br.ReadString('\n'); err != nil || crlf != "\r\n" {
			return nil, fmt.Errorf("aws-chunked: no CRLF after a chunk")
		}
	}
}
