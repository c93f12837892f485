package locality_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// TestPutToNodeThatNeverReads: a PUT to a node that accepts the
// connection and never reads fails with Unavailable once a write makes no
// progress for WriteTimeout, even with a context that never ends.
func TestPutToNodeThatNeverReads(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		var held []net.Conn // never read
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://" + ln.Addr().String()})
	c, err := locality.NewClient(m, &locality.ClientOptions{WriteTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 1 << 30 // far beyond any socket buffer
	_, err = c.Put(t.Context(), insitu.Name{Bucket: "b", Key: "k"}, io.LimitReader(zeros{}, size), size)
	if !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("Put to a node that never reads: %v, want Unavailable", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestGetFromNodeThatNeverAnswers: a request to a node that reads it and
// never answers fails with Unavailable once no byte of the answer arrives
// for ReadTimeout, even with a context that never ends.
func TestGetFromNodeThatNeverAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c) // reads everything, answers nothing
			}()
		}
	}()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://" + ln.Addr().String()})
	c, err := locality.NewClient(m, &locality.ClientOptions{ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Head(t.Context(), insitu.Name{Bucket: "b", Key: "k"}); !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("Head from a node that never answers: %v, want Unavailable", err)
	}
}

// TestPutExpectContinue: a PUT waits for 100 Continue before its body when
// the body is over 64 KiB or of unknown size (the node may refuse it
// before it is sent); a small body, which the client holds in memory and
// can always send again, goes with the headers.
func TestPutExpectContinue(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	expects := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		expects[r.URL.Path] = r.Header.Get("Expect")
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"code":"internal","message":"test"}`, http.StatusInternalServerError)
	}))
	defer srv.Close()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: srv.URL})
	c, err := locality.NewClient(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := bytes.Repeat([]byte{'x'}, 100<<10)
	for _, tc := range []struct {
		key    string
		r      io.Reader
		size   int64
		expect bool
	}{
		{"small-seekable", strings.NewReader("small"), 5, false},
		{"small-not-seekable", &readOnly{strings.NewReader("small")}, 5, false},
		{"big-not-seekable", &readOnly{bytes.NewReader(big)}, int64(len(big)), true},
		{"big-seekable", bytes.NewReader(big), int64(len(big)), true},
		{"unknown-size-seekable", strings.NewReader("small"), -1, true},
	} {
		c.Put(t.Context(), insitu.Name{Bucket: "b", Key: tc.key}, tc.r, tc.size) // the answer is an error; the request is what is looked at
		mu.Lock()
		got, ok := expects["/v1/objects/b/"+tc.key]
		mu.Unlock()
		if !ok {
			t.Fatalf("%s: no request reached the node (%v)", tc.key, expects)
		}
		if (got == "100-continue") != tc.expect {
			t.Errorf("%s: Expect %q, want it sent: %v", tc.key, got, tc.expect)
		}
	}
}

// readOnly hides every method but Read.
type readOnly struct{ r io.Reader }

func (o *readOnly) Read(p []byte) (int, error) { return o.r.Read(p) }
