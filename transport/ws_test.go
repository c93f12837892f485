package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startServer serves t on 127.0.0.1.
func startServer(t *testing.T, tr insitu.Transform, opts *ServerOptions) (*Server, string) {
	t.Helper()
	if opts == nil {
		opts = &ServerOptions{}
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := NewServer(tr, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.Close()
	})
	return s, hs.URL
}

// waitCtx blocks until its context ends, after reading its input.
var waitCtx = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if in.Body != nil && in.Name.Key != "noread" {
		io.Copy(io.Discard, in.Body)
	}
	<-ctx.Done()
	return ctx.Err()
})

// rawDial opens a WebSocket to the server without the insitu client.
func rawDial(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(testCtx(t), base+"/v1/stream", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(frameHeaderLen + maxFramePayload)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, msg []byte) {
	t.Helper()
	if err := c.Write(testCtx(t), websocket.MessageBinary, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func openFrame(id uint32, flags uint8, req string) []byte {
	return frameBytes(frameOpen, flags, id, []byte(req))
}

// wantClosed reads until the server closes the connection, and checks the
// close status and reason.
func wantClosed(t *testing.T, c *websocket.Conn, status websocket.StatusCode, reason string) {
	t.Helper()
	for {
		_, _, err := c.Read(testCtx(t))
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != status || !strings.Contains(err.Error(), reason) {
			t.Fatalf("connection ended with %v (status %v), want status %v and a reason with %q", err, got, status, reason)
		}
		return
	}
}

func TestWSBrokenFramesCloseTheConnection(t *testing.T) {
	_, base := startServer(t, waitCtx, &ServerOptions{Window: minWindow})
	credit3 := frameBytes(frameCredit, 0, 1, []byte{0, 0, 1})
	cases := []struct {
		name   string
		msgs   [][]byte
		reason string
	}{
		{"short", [][]byte{{2, 0, 0}}, "shorter than its 12-byte header"},
		{"unknown type", [][]byte{frameBytes(9, 0, 1, nil)}, "unknown frame type 9"},
		{"reserved bytes", [][]byte{append([]byte{2, 0, 1, 0}, frameBytes(frameData, 0, 1, nil)[4:]...)}, "reserved"},
		{"unknown flags", [][]byte{frameBytes(frameData, 0x40, 1, nil)}, "unknown flags"},
		{"request id 0", [][]byte{frameBytes(frameData, 0, 0, []byte("x"))}, "request id 0"},
		{"length over the payload", [][]byte{append(frameBytes(frameData, 0, 1, []byte("abcdef"))[:frameHeaderLen], "abc"...)}, "carries 3 payload bytes, its header says 6"},
		{"length under the payload", [][]byte{append(frameBytes(frameData, 0, 1, []byte("abc")), "def"...)}, "longer than the 3 payload bytes"},
		{"bad credit", [][]byte{credit3}, "CREDIT frame has a 3-byte payload"},
		{"zero credit", [][]byte{frameBytes(frameCredit, 0, 1, []byte{0, 0, 0, 0})}, "grants 0 bytes"},
		{"server frame", [][]byte{frameBytes(frameResult, 0, 1, []byte("{}"))}, "only a server sends it"},
		{"id reused", [][]byte{
			openFrame(5, 0, `{"bucket":"b","key":"k","size":-1}`),
			openFrame(5, 0, `{"bucket":"b","key":"k","size":-1}`),
		}, "request id 5 reused while in flight"},
		{"data after end", [][]byte{
			openFrame(6, flagEnd, `{"bucket":"b","key":"k","size":0}`),
			frameBytes(frameData, 0, 6, []byte("late")),
		}, "after its last DATA frame"},
		{"window overrun", [][]byte{
			openFrame(7, 0, `{"bucket":"b","key":"noread","size":-1}`),
			frameBytes(frameData, 0, 7, make([]byte, minWindow/2)),
			frameBytes(frameData, 0, 7, make([]byte, minWindow/2)),
			frameBytes(frameData, 0, 7, make([]byte, minWindow/2)),
		}, "overruns its flow-control window"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := rawDial(t, base)
			for _, m := range c.msgs {
				send(t, conn, m)
			}
			wantClosed(t, conn, websocket.StatusProtocolError, c.reason)
		})
	}
	t.Run("text message", func(t *testing.T) {
		conn := rawDial(t, base)
		if err := conn.Write(testCtx(t), websocket.MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		wantClosed(t, conn, websocket.StatusProtocolError, "text message")
	})
	// A message over the read limit (a header and 1 MiB) is closed with
	// 1009, as PROTOCOL.md says, whatever its header claims; a header that
	// claims more than 1 MiB in a message within the limit is a broken
	// frame (1002).
	t.Run("oversized", func(t *testing.T) {
		conn := rawDial(t, base)
		send(t, conn, frameBytes(frameData, 0, 1, make([]byte, maxFramePayload+64)))
		wantClosed(t, conn, websocket.StatusMessageTooBig, "read limited")
	})
	t.Run("oversized under a small header", func(t *testing.T) {
		conn := rawDial(t, base)
		send(t, conn, append(frameBytes(frameData, 0, 1, []byte("abc")), make([]byte, maxFramePayload)...))
		wantClosed(t, conn, websocket.StatusMessageTooBig, "read limited")
	})
	t.Run("oversized text", func(t *testing.T) {
		conn := rawDial(t, base)
		if err := conn.Write(testCtx(t), websocket.MessageText, make([]byte, frameHeaderLen+maxFramePayload+1)); err != nil {
			t.Fatal(err)
		}
		wantClosed(t, conn, websocket.StatusMessageTooBig, "read limited")
	})
	t.Run("a header over the limit in a short message", func(t *testing.T) {
		conn := rawDial(t, base)
		f := frameBytes(frameData, 0, 1, []byte("abc"))
		binary.BigEndian.PutUint32(f[8:], maxFramePayload+64)
		send(t, conn, f)
		wantClosed(t, conn, websocket.StatusProtocolError, "DATA frame of 1048640 bytes is over the limit of 1048576")
	})
	t.Run("largest message", func(t *testing.T) {
		// A message of exactly the limit is a frame like any other: here
		// one that overruns its request's window.
		conn := rawDial(t, base)
		send(t, conn, openFrame(9, 0, `{"bucket":"b","key":"noread","size":-1}`))
		send(t, conn, frameBytes(frameData, 0, 9, make([]byte, maxFramePayload)))
		wantClosed(t, conn, websocket.StatusProtocolError, "overruns its flow-control window")
	})
}

// countingReader serves n zero bytes and counts what was read.
type countingReader struct{ left, read int64 }

func (g *countingReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), g.left)
	g.left -= n
	g.read += n
	return int(n), nil
}

// gatedWriter takes nothing until its gate opens.
type gatedWriter struct {
	gate chan struct{}
	n    int64
}

func (b *gatedWriter) Write(p []byte) (int, error) {
	<-b.gate
	b.n += int64(len(p))
	return len(p), nil
}

// TestWSFlowControl: a transform that does not read holds back its
// client's input at the window, and a client that does not take the output
// holds back the transform's writes at the window: memory does not grow.
// Each object ends at the server's per-object timeout.
func TestWSFlowControl(t *testing.T) {
	const window = minWindow
	gate := make(chan struct{})
	var written atomic.Int64
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "no-read" {
			<-ctx.Done()
			return ctx.Err()
		}
		defer close(gate) // let the client's writer go once the transform gave up
		chunk := make([]byte, 4096)
		for range 1024 { // 4 MiB
			n, err := out.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return err
			}
		}
		return nil
	})
	_, base := startServer(t, tr, &ServerOptions{Window: window, Timeout: 300 * time.Millisecond})
	c, err := Dial(testCtx(t), base, &DialOptions{Window: window, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The client may read a window and a chunk ahead (and one byte to find
	// the end), never more, of a transform that reads nothing.
	const size = 8 << 20
	in := &countingReader{left: size}
	err = c.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "no-read"}, Size: size}, Body: in}, io.Discard)
	if !errors.Is(err, insitu.DeadlineExceeded) {
		t.Fatalf("a transform that reads nothing: %v, want DeadlineExceeded", err)
	}
	if limit := int64(window + chunkFor(window) + 1); in.read > limit {
		t.Fatalf("the client read %d bytes ahead of a transform that reads nothing, want at most %d", in.read, limit)
	}

	// The other way: the transform can write a window and a chunk (and its
	// last write) ahead of a client whose writer takes nothing.
	w := &gatedWriter{gate: gate}
	err = c.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "writer"}, Size: 0}, Body: strings.NewReader("")}, w)
	if !errors.Is(err, insitu.DeadlineExceeded) {
		t.Fatalf("a client that takes no output: %v, want DeadlineExceeded", err)
	}
	if got, limit := written.Load(), int64(window+chunkFor(window)+4096); got > limit {
		t.Fatalf("the transform wrote %d bytes ahead of a client that takes nothing, want at most %d", got, limit)
	}
}

// TestWSClientBrokenServer: a server that answers with a broken frame
// makes the client close the connection and fail the call with
// Unavailable; the next call dials a new connection.
func TestWSClientBrokenServer(t *testing.T) {
	var conns atomic.Int32
	hs := httptest.NewServer(httpHandlerFunc(func(c *websocket.Conn) {
		n := conns.Add(1)
		ctx := context.Background()
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		h, _, _ := readFrame(bytes.NewReader(msg))
		if n == 1 {
			c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
		} else {
			c.Write(ctx, websocket.MessageBinary, frameBytes(frameData, flagEnd, h.id, []byte("ok")))
		}
		c.Read(ctx) // until the client goes
	}))
	defer hs.Close()
	c, err := Dial(testCtx(t), hs.URL, &DialOptions{Pool: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := func() *insitu.Input {
		return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 0}, Body: strings.NewReader("")}
	}
	err = c.Transform(testCtx(t), in(), io.Discard)
	if !errors.Is(err, insitu.Unavailable) || !strings.Contains(err.Error(), "unknown frame type 255") {
		t.Fatalf("a broken frame from the server: %v, want Unavailable naming the problem", err)
	}
	var out bytes.Buffer
	if err := c.Transform(testCtx(t), in(), &out); err != nil || out.String() != "ok" {
		t.Fatalf("the call after a broken connection: %q, %v", out.String(), err)
	}
}

// TestWSRequestIDsRunOut: a connection out of request ids is retired and
// a new one takes over.
func TestWSRequestIDsRunOut(t *testing.T) {
	_, base := startServer(t, insitu.Identity, nil)
	c, err := Dial(testCtx(t), base, &DialOptions{Pool: 1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.ws.slots[0].conn
	first.mu.Lock()
	first.nextID = 1<<32 - 3
	first.mu.Unlock()
	for i := range 5 {
		var out bytes.Buffer
		if err := c.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 2}, Body: strings.NewReader("hi")}, &out); err != nil || out.String() != "hi" {
			t.Fatalf("call %d: %q, %v", i, out.String(), err)
		}
	}
	if c.ws.slots[0].conn == first {
		t.Fatal("the connection out of ids is still in use")
	}
	<-first.ctx.Done() // it closes once its calls ended
}

func httpHandlerFunc(f func(*websocket.Conn)) httpHandler { return httpHandler(f) }

type httpHandler func(*websocket.Conn)

func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	h(c)
}
