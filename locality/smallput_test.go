package locality_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/locality"
)

// putServer is a node's PUT endpoint on 127.0.0.1 that keeps what it was
// sent and counts the connections it accepted. handle, when set, runs
// before the answer and may answer itself (it returns true then).
type putServer struct {
	*httptest.Server
	conns  atomic.Int64
	mu     sync.Mutex
	bodies map[string][]byte
	handle func(w http.ResponseWriter, r *http.Request) bool
}

func startPutServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request) bool) (*putServer, *locality.Client) {
	t.Helper()
	s := &putServer{bodies: map[string][]byte{}, handle: handle}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if s.handle != nil && s.handle(w, r) {
			return
		}
		s.mu.Lock()
		s.bodies[r.URL.Path] = body
		s.mu.Unlock()
		json.NewEncoder(w).Encode(insitu.PutResult{Size: int64(len(body)), Checksum: putcheck.Hex(xxhash.Sum64(body)), Owner: "n1"})
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	m, err := locality.NewMap(1, locality.Node{ID: "n1", URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	c, err := locality.NewClient(m, &locality.ClientOptions{ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

func (s *putServer) body(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies["/v1/objects/b/"+key]
}

// TestSmallPutsShareConnection: small puts, one after another, go over one
// kept-alive connection, each body whole, each answer read.
func TestSmallPutsShareConnection(t *testing.T) {
	t.Parallel()
	s, c := startPutServer(t, nil)
	for i := range 20 {
		key := fmt.Sprintf("k%d", i)
		data := bytes.Repeat([]byte{byte(i)}, 4096+i)
		res, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: key}, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		if res.Size != int64(len(data)) || res.Checksum != putcheck.Hex(xxhash.Sum64(data)) || res.Owner != "n1" {
			t.Fatalf("Put %d = %+v", i, res)
		}
		if !bytes.Equal(s.body(key), data) {
			t.Fatalf("Put %d: the node got %d bytes, want %d", i, len(s.body(key)), len(data))
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("20 puts opened %d connections, want 1", n)
	}
}

// TestSmallPutAfterNodeClosedConnection: a kept-alive connection the node
// closed is replaced, and the put sent again on the new one.
func TestSmallPutAfterNodeClosedConnection(t *testing.T) {
	t.Parallel()
	s, c := startPutServer(t, nil)
	for i := range 3 {
		key := fmt.Sprintf("k%d", i)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: key}, bytes.NewReader([]byte(key)), int64(len(key))); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		if string(s.body(key)) != key {
			t.Fatalf("Put %d: the node got %q", i, s.body(key))
		}
		s.CloseClientConnections()
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("3 puts, each after the node closed the connections, opened %d connections, want 3", n)
	}
	// Several idle connections, all closed by the node (a restart): the
	// next put still goes through.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("c%d", i)
			if _, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: key}, bytes.NewReader([]byte(key)), int64(len(key))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.CloseClientConnections()
	if _, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: "after"}, bytes.NewReader([]byte("after")), 5); err != nil {
		t.Fatalf("Put after the node closed every idle connection: %v", err)
	}
	if string(s.body("after")) != "after" {
		t.Errorf("the node got %q", s.body("after"))
	}
}

// TestSmallPutErrorKeepsConnection: a refusal answered in full leaves the
// connection reusable, and its code reaches the caller; an answer with
// Connection: close is not reused.
func TestSmallPutErrorKeepsConnection(t *testing.T) {
	t.Parallel()
	s, c := startPutServer(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/v1/objects/b/refused":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"code":"too_large","message":"over the limit"}`)
			return true
		case "/v1/objects/b/bye":
			w.Header().Set("Connection", "close")
		}
		return false
	})
	put := func(key string) error {
		_, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: key}, bytes.NewReader([]byte("data")), 4)
		return err
	}
	if err := put("refused"); !errors.Is(err, insitu.TooLarge) {
		t.Fatalf("Put of a refused body: %v, want TooLarge", err)
	}
	if err := put("ok"); err != nil {
		t.Fatal(err)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("after a refusal and a put: %d connections, want 1", n)
	}
	if err := put("bye"); err != nil {
		t.Fatal(err)
	}
	if err := put("ok2"); err != nil {
		t.Fatal(err)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("after an answer with Connection: close: %d connections, want 2", n)
	}
}

// TestSmallPutCanceled: a put whose context ends while the node holds
// the answer returns the context's error, and the node's slow answer
// reaches no later put.
func TestSmallPutCanceled(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	s, c := startPutServer(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/objects/b/slow" {
			close(arrived)
			<-release
		}
		return false
	})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	if _, err := c.Put(ctx, insitu.Name{Bucket: "b", Key: "slow"}, bytes.NewReader([]byte("slow")), 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put canceled while the node held it: %v, want context.Canceled", err)
	}
	res, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: "next"}, bytes.NewReader([]byte("next!")), 5)
	if err != nil || res.Size != 5 {
		t.Fatalf("the put after = %+v, %v", res, err)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the canceled put's is not reused", n)
	}
}

// TestSmallPutToNodeThatNeverAnswers: a small put to a node that reads it
// and never answers fails with Unavailable after ReadTimeout, even with a
// context that never ends.
func TestSmallPutToNodeThatNeverAnswers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}))
	defer s.Close()
	defer close(release)
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: s.URL})
	c, err := locality.NewClient(m, &locality.ClientOptions{ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(context.Background(), insitu.Name{Bucket: "b", Key: "k"}, bytes.NewReader([]byte("data")), 4); !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("Put to a node that never answers: %v, want Unavailable", err)
	}
}

// TestSmallPutsConcurrent: puts from many goroutines at once each arrive
// whole, over no more connections than puts at once.
func TestSmallPutsConcurrent(t *testing.T) {
	t.Parallel()
	s, c := startPutServer(t, nil)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				data := bytes.Repeat([]byte(key), 100)
				if _, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: key}, bytes.NewReader(data), int64(len(data))); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(s.body(key), data) {
					errs <- fmt.Errorf("%s: the node got %d bytes, want %d", key, len(s.body(key)), len(data))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.conns.Load(); n < 1 || n > workers {
		t.Errorf("%d connections for %d puts at once", n, workers)
	}
}

// TestSmallPutOwnHTTPClient: with the caller's HTTPClient, a small put
// goes through it, whole, from a reader that cannot seek.
func TestSmallPutOwnHTTPClient(t *testing.T) {
	t.Parallel()
	var used atomic.Int64
	s, _ := startPutServer(t, nil)
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: s.URL})
	c, err := locality.NewClient(m, &locality.ClientOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("own"), 1000)
	if _, err := c.Put(t.Context(), insitu.Name{Bucket: "b", Key: "k"}, &readOnly{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.body("k"), data) || used.Load() != 1 {
		t.Errorf("the node got %d bytes, want %d; the caller's client sent %d requests, want 1", len(s.body("k")), len(data), used.Load())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
