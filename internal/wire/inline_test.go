package wire_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/wire"
)

// inlineFixture is a server on 127.0.0.1 that answers a request with its
// method and body length, and a client on an InlineTransport whose
// fallback counts its dials.
type inlineFixture struct {
	srv           *httptest.Server
	conns         atomic.Int64 // connections the server accepted
	fallbackDials atomic.Int64
	client        *http.Client
}

func newInlineFixture(t *testing.T, handler http.HandlerFunc) *inlineFixture {
	t.Helper()
	f := &inlineFixture{}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			io.WriteString(w, r.Method+" "+strconv.FormatInt(n, 10))
		}
	}
	f.srv = httptest.NewUnstartedServer(handler)
	f.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	fb := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	fb.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		f.fallbackDials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	tr := wire.NewInlineTransport(fb, time.Second, 5*time.Second, 5*time.Second)
	t.Cleanup(tr.CloseIdleConnections)
	f.client = &http.Client{Transport: tr}
	return f
}

func (f *inlineFixture) send(t *testing.T, method string, body io.Reader, size int64, header http.Header) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+"/x", body)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInlineTransportRoutes: a small PUT that can be sent again goes
// inline, on a connection kept for the next; every other request goes to
// the fallback, whole.
func TestInlineTransportRoutes(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte("s"), 4096)
	big := bytes.Repeat([]byte("b"), wire.InlineMax+1)
	for _, tc := range []struct {
		name     string
		method   string
		body     func() io.Reader
		size     int64
		header   http.Header
		fallback bool
	}{
		{"small put", http.MethodPut, func() io.Reader { return bytes.NewReader(small) }, -1, nil, false},
		{"largest inline put", http.MethodPut, func() io.Reader { return bytes.NewReader(big[1:]) }, -1, nil, false},
		{"get", http.MethodGet, func() io.Reader { return nil }, -1, nil, true},
		{"small post", http.MethodPost, func() io.Reader { return bytes.NewReader(small) }, -1, nil, true},
		{"put over InlineMax", http.MethodPut, func() io.Reader { return bytes.NewReader(big) }, -1, nil, true},
		{"put that cannot be sent again", http.MethodPut, func() io.Reader { return io.MultiReader(bytes.NewReader(small)) }, int64(len(small)), nil, true},
		{"put with Expect", http.MethodPut, func() io.Reader { return bytes.NewReader(small) }, -1, http.Header{"Expect": {"100-continue"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newInlineFixture(t, nil)
			var want string
			for range 3 {
				body := tc.body()
				n := tc.size
				if n < 0 && body != nil {
					n = int64(body.(interface{ Len() int }).Len())
				}
				want = tc.method + " " + strconv.FormatInt(max(n, 0), 10)
				if got := f.send(t, tc.method, body, tc.size, tc.header); got != want {
					t.Fatalf("answer %q, want %q", got, want)
				}
			}
			if got := f.fallbackDials.Load() > 0; got != tc.fallback {
				t.Errorf("fallback dialed %d times; want it used: %v", f.fallbackDials.Load(), tc.fallback)
			}
			if n := f.conns.Load(); n != 1 {
				t.Errorf("3 requests opened %d connections, want 1", n)
			}
		})
	}
}

// TestInlineTransportAnswerBound: an answer longer than the transport
// reads into memory is an error, not an allocation without end.
func TestInlineTransportAnswerBound(t *testing.T) {
	t.Parallel()
	f := newInlineFixture(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		chunk := strings.Repeat("x", 64<<10)
		for range 40 { // 2.5 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, f.srv.URL+"/x", strings.NewReader("data"))
	resp, err := f.client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("an answer of 2.5 MiB to a small put was taken")
	}
	if !strings.Contains(err.Error(), "too long") {
		t.Errorf("error %v, want the answer too long", err)
	}
}
