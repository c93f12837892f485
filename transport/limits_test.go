package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// The tests of this file check that every wait on a peer is bounded: they
// use raw peers that never read, never send, or trickle, and short
// IOTimeouts. None sleeps: each waits for a result within a deadline far
// longer than the timeout it checks (a hang fails the test at that
// deadline).

// deadline returns a context that ends after d, for a call that must end
// well before it.
func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// genOrEcho writes 64 MiB for the key "gen" (more than any socket buffer
// holds, so a peer that reads nothing blocks the writes), and copies its
// input for any other key.
var genOrEcho = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if in.Name.Key != "gen" {
		return insitu.Identity.Transform(ctx, in, out)
	}
	buf := make([]byte, 64<<10)
	for range 1024 {
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	return nil
})

// honest runs one small object through a fresh client in mode, which must
// succeed within 10 s.
func honest(t *testing.T, base string, mode Mode) {
	t.Helper()
	c, err := Dial(deadline(t, 10*time.Second), base, &DialOptions{Mode: mode, Pool: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "honest"}, Size: 5}, Body: strings.NewReader("hello")}
	if err := c.Transform(deadline(t, 10*time.Second), in, &out); err != nil || out.String() != "hello" {
		t.Fatalf("an honest %s client behind a stuck one: %q, %v", mode, out.String(), err)
	}
}

// rawWS opens a WebSocket to base announcing the receive window win,
// without the insitu client: it reads only when the test does.
func rawWS(t *testing.T, base string, win int) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set(wire.Window, strconv.Itoa(win))
	c, _, err := websocket.Dial(deadline(t, 10*time.Second), base+"/v1/stream", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(frameHeaderLen + maxFramePayload)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// rawHTTP sends head (a request line and headers, and the start of a body)
// on a new TCP connection to base and returns the connection, unread.
func rawHTTP(t *testing.T, base, head string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readResponse reads the HTTP response on conn within 10 s.
func readResponse(t *testing.T, conn net.Conn) *http.Response {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return resp
}

// TestPeerThatNeverReads: a client that asks for a large output and reads
// none of it holds its transform slot for IOTimeout at most, whichever way
// it stalls the server: a WebSocket client with a large window (the
// frames' writes block), one with a small window that grants no credit,
// an hpush client that does not read its response. With one slot, an
// honest client then gets through. (Frames and responses used to be
// written with no deadline, and credit awaited for ever.)
func TestPeerThatNeverReads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		what  string
		stall func(t *testing.T, base string)
	}{
		{"ws, writes block", func(t *testing.T, base string) {
			c := rawWS(t, base, maxWindow)
			send(t, c, openFrame(1, flagEnd, `{"bucket":"b","key":"gen","size":0}`))
		}},
		{"ws, no credit", func(t *testing.T, base string) {
			c := rawWS(t, base, minWindow)
			send(t, c, openFrame(1, flagEnd, `{"bucket":"b","key":"gen","size":0}`))
		}},
		{"hpush", func(t *testing.T, base string) {
			rawHTTP(t, base, "PUT /v1/transform/b/gen HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			s, base := startServer(t, genOrEcho, &ServerOptions{MaxConcurrent: 1, IOTimeout: 200 * time.Millisecond})
			started := make(chan insitu.Name, 10)
			s.onObject = func(n insitu.Name) { started <- n }
			tc.stall(t, base)
			<-started // the stuck object is in the server
			honest(t, base, WS)
			honest(t, base, HPush)
		})
	}
}

// TestInputThatDoesNotComeHoldsNoSlot: requests whose input does not come
// (an hpush body announced and not sent, a WebSocket OPEN without DATA)
// or trickles in (a byte at a time) wait for their first bytes without a
// transform slot, so with one slot an honest client gets through at once,
// long before IOTimeout could end them. (The slot used to be taken first,
// and two such requests starved every client.)
func TestInputThatDoesNotComeHoldsNoSlot(t *testing.T) {
	t.Parallel()
	s, base := startServer(t, genOrEcho, &ServerOptions{MaxConcurrent: 1, IOTimeout: time.Minute})
	started := make(chan insitu.Name, 10)
	s.onObject = func(n insitu.Name) { started <- n }
	rawHTTP(t, base, "PUT /v1/transform/b/half-open HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	rawHTTP(t, base, "PUT /v1/transform/b/trickle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n")
	ws := rawWS(t, base, defaultWindow)
	send(t, ws, openFrame(1, 0, `{"bucket":"b","key":"half-open","size":-1}`))
	send(t, ws, openFrame(2, 0, `{"bucket":"b","key":"trickle","size":-1}`))
	send(t, ws, frameBytes(frameData, 0, 2, []byte("x")))
	for range 4 {
		<-started
	}
	honest(t, base, WS)
	honest(t, base, HPush)
}

// TestStalledInputFails: an input that stops coming fails its object with
// DeadlineExceeded after IOTimeout, before it took a slot (a byte, then
// nothing) and after (more than readyBytes, then nothing), in hpush and in
// ws. (The server used to wait for ever: its default timeout was none.)
func TestStalledInputFails(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, genOrEcho, &ServerOptions{IOTimeout: 200 * time.Millisecond})
	for _, sent := range []int{1, readyBytes + 1000} {
		t.Run(fmt.Sprintf("hpush, %d bytes", sent), func(t *testing.T) {
			t.Parallel()
			conn := rawHTTP(t, base, fmt.Sprintf("PUT /v1/transform/b/k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 2*readyBytes, strings.Repeat("x", sent)))
			resp := readResponse(t, conn)
			code := resp.Header.Get(wire.ErrorCode)
			if resp.StatusCode == http.StatusOK { // the output began: the code is in the trailers
				io.Copy(io.Discard, resp.Body)
				code = resp.Trailer.Get(wire.ErrorCode)
			}
			if code != insitu.DeadlineExceeded.String() {
				t.Fatalf("a stalled body: %s, code %q, want deadline_exceeded", resp.Status, code)
			}
		})
		t.Run(fmt.Sprintf("ws, %d bytes", sent), func(t *testing.T) {
			t.Parallel()
			c := rawWS(t, base, defaultWindow)
			send(t, c, openFrame(1, 0, `{"bucket":"b","key":"k","size":-1}`))
			for p := make([]byte, sent); len(p) > 0; {
				k := min(len(p), 32<<10)
				send(t, c, frameBytes(frameData, 0, 1, p[:k]))
				p = p[k:]
			}
			for {
				_, msg, err := c.Read(deadline(t, 10*time.Second))
				if err != nil {
					t.Fatalf("a stalled stream: %v, want an ERROR frame", err)
				}
				h, f, err := readFrame(bytes.NewReader(msg))
				if err != nil {
					t.Fatal(err)
				}
				if h.typ != frameError {
					continue // output, credit
				}
				if !strings.Contains(string(f.payload()), `"deadline_exceeded"`) || !strings.Contains(string(f.payload()), "no input from the client") {
					t.Fatalf("a stalled stream: ERROR %s, want deadline_exceeded", f.payload())
				}
				return
			}
		})
	}
}

// TestStalledSource: an hpull source that sends part of its body and then
// nothing fails the object with DeadlineExceeded after IOTimeout.
func TestStalledSource(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer src.Close()
	defer close(release)
	_, base := startServer(t, genOrEcho, &ServerOptions{IOTimeout: 200 * time.Millisecond})
	c, err := Dial(testCtx(t), base, &DialOptions{Mode: HPull, Logger: quietLogger(),
		SourceURL: func(insitu.Object) (string, string, error) { return src.URL + "/v1/objects/b/k", "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Transform(deadline(t, 10*time.Second), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: -1}}, io.Discard)
	if !errors.Is(err, insitu.DeadlineExceeded) || !strings.Contains(err.Error(), "sent nothing for 200ms") {
		t.Fatalf("a stalled source: %v, want DeadlineExceeded", err)
	}
}

// TestDestinationThatNeverReads: a direct-put destination that accepts the
// connection and reads nothing fails the object after IOTimeout (the
// server's writes to it have a deadline) instead of holding its slot.
func TestDestinationThatNeverReads(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	defer func() {
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	}()
	_, base := startServer(t, genOrEcho, &ServerOptions{IOTimeout: 200 * time.Millisecond})
	c, err := Dial(testCtx(t), base, &DialOptions{Mode: HPush, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "gen"}, Size: 0}, Body: strings.NewReader("")}
	_, err = c.TransformTo(deadline(t, 10*time.Second), in, insitu.Destination{URL: "http://" + ln.Addr().String() + "/v1/objects/b/out"})
	if !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("a destination that reads nothing: %v, want Unavailable", err)
	}
}

// stuckServer serves WebSocket upgrades: the first connection it accepts
// it completes by hand and then never reads (when discard is false) or
// reads and throws away everything without ever answering, not even a
// ping (when discard is true): a frozen server, or one cut off. Later
// connections go to next.
func stuckServer(t *testing.T, next http.Handler, window int, discard bool) (url string, conns *atomic.Int32) {
	conns = new(atomic.Int32)
	stop := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conns.Add(1) > 1 {
			next.ServeHTTP(w, r)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s: %d\r\n\r\n",
			base64.StdEncoding.EncodeToString(sum[:]), wire.Window, window)
		brw.Flush()
		if discard {
			go io.Copy(io.Discard, conn)
		}
		<-stop
	}))
	t.Cleanup(func() {
		close(stop)
		hs.Close()
	})
	return hs.URL, conns
}

// TestClientDropsStuckConnection: a server that takes the connection and
// then reads nothing (the client's frame writes block) or answers nothing
// (frozen: the client's pings go unanswered) fails the objects on that
// connection with Unavailable within a few IOTimeouts, and the next
// object goes over a new connection instead of the stuck one. (The client
// used to write with no deadline and wait for ever, and kept using the
// connection.)
func TestClientDropsStuckConnection(t *testing.T) {
	t.Parallel()
	real, err := NewServer(genOrEcho, &ServerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Shutdown(context.Background()) })
	for _, tc := range []struct {
		what    string
		window  int
		discard bool
		size    int
	}{
		{"never reads", maxWindow, false, 32 << 20},
		{"frozen", defaultWindow, true, 5},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			base, conns := stuckServer(t, real, tc.window, tc.discard)
			c, err := Dial(deadline(t, 10*time.Second), base, &DialOptions{Pool: 1, IOTimeout: 200 * time.Millisecond, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			in := func(size int) *insitu.Input {
				return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: int64(size)}, Body: bytes.NewReader(make([]byte, size))}
			}
			err = c.Transform(deadline(t, 10*time.Second), in(tc.size), io.Discard)
			if !errors.Is(err, insitu.Unavailable) {
				t.Fatalf("a server that %s: %v, want Unavailable", tc.what, err)
			}
			var out bytes.Buffer
			if err := c.Transform(deadline(t, 10*time.Second), in(3), &out); err != nil || out.Len() != 3 {
				t.Fatalf("the next object: %d bytes, %v", out.Len(), err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2 (the stuck one dropped, a new one)", n)
			}
		})
	}
}

// TestIdleConnectionsClose: a server closes a WebSocket connection that
// carries nothing for IdleTimeout (1000, "idle"), and a client retires
// its pooled connection once idle for its IdleTimeout; the next object
// dials a new one.
func TestIdleConnectionsClose(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, genOrEcho, &ServerOptions{IdleTimeout: 200 * time.Millisecond})
	raw := rawWS(t, base, defaultWindow)
	_, _, err := raw.Read(deadline(t, 10*time.Second))
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure || !strings.Contains(err.Error(), "idle") {
		t.Fatalf("an idle connection: %v, want closed with 1000 and \"idle\"", err)
	}

	_, base = startServer(t, genOrEcho, nil)
	c, err := Dial(testCtx(t), base, &DialOptions{Pool: 1, IdleTimeout: 100 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.ws.slots[0].conn
	select {
	case <-first.ctx.Done():
	case <-deadline(t, 10*time.Second).Done():
		t.Fatal("the client kept an idle connection")
	}
	var out bytes.Buffer
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 2}, Body: strings.NewReader("hi")}
	if err := c.Transform(testCtx(t), in, &out); err != nil || out.String() != "hi" {
		t.Fatalf("after an idle connection was retired: %q, %v", out.String(), err)
	}
}

// TestDefaultLimits: a server and a client without options have the
// documented, finite limits.
func TestDefaultLimits(t *testing.T) {
	s, err := NewServer(insitu.Identity, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.Timeout != DefaultTimeout || o.IOTimeout != DefaultIOTimeout || o.IdleTimeout != DefaultIdleTimeout ||
		o.Window != defaultWindow || o.MaxStreams != defaultMaxStreams || o.MaxConcurrent <= 0 {
		t.Errorf("server defaults: %+v", o)
	}
	c, err := Dial(context.Background(), "http://127.0.0.1:9", &DialOptions{Mode: HPush})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.opts; d.Timeout != DefaultTimeout || d.IOTimeout != DefaultIOTimeout || d.IdleTimeout != DefaultClientIdleTimeout || d.Window != defaultWindow {
		t.Errorf("client defaults: %+v", d)
	}
	if DefaultClientIdleTimeout >= DefaultIdleTimeout {
		t.Errorf("a client keeps idle connections %v, the server %v: the client must retire them first", DefaultClientIdleTimeout, DefaultIdleTimeout)
	}
}
