package transport

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
)

// TestWSWriteBeforeRead: a transform may write more output than the
// client's window before it reads its input, and inputs of every size
// around a chunk must still get through when the server's window is the
// smallest allowed: the client sends its first chunk without waiting for
// credit only when the chunk fits the initial window.
func TestWSWriteBeforeRead(t *testing.T) {
	const outSize = 1 << 20
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := out.Write(make([]byte, outSize)); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, in.Body)
		return err
	})
	// The per-object timeout turns a deadlock into a failure, not a hang.
	_, base := startServer(t, tr, &ServerOptions{Window: minWindow, Timeout: 20 * time.Second})
	c, err := Dial(testCtx(t), base, &DialOptions{Window: minWindow, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int64{0, 1, 32<<10 - 1, 32 << 10, 32<<10 + 1, 65536, 65537, 200000, 262144, 262145} {
		for _, known := range []bool{true, false} {
			announced := int64(-1)
			if known {
				announced = size
			}
			var out countWriter
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: announced}, Body: bytes.NewReader(make([]byte, size))}
			if err := c.Transform(testCtx(t), in, &out); err != nil || out.n != outSize {
				t.Errorf("input of %d bytes (size known: %v): %v, %d bytes out; want %d", size, known, err, out.n, outSize)
			}
		}
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestChunkFor: a chunk is half the peer's window, at most chunkSize, and
// a size class holds it exactly.
func TestChunkFor(t *testing.T) {
	for _, tc := range []struct{ window, want int }{
		{minWindow, 32 << 10}, {defaultWindow, 128 << 10}, {512 << 10, chunkSize}, {maxWindow, chunkSize},
	} {
		got := chunkFor(tc.window)
		if got != tc.want {
			t.Errorf("chunkFor(%d) = %d, want %d", tc.window, got, tc.want)
		}
		if f := getFrame(got); cap(f.b) != frameHeaderLen+got {
			t.Errorf("a chunk of %d bytes takes a buffer of %d", got, cap(f.b)-frameHeaderLen)
		} else {
			putFrame(f)
		}
	}
}

type nopFrameConn struct{}

func (nopFrameConn) send([]byte) error         { return nil }
func (nopFrameConn) sendCredit(uint32, uint32) {}

// held returns the capacity of the buffers an inbox holds.
func (q *inbox) held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, f := range q.bufs {
		n += cap(f.b)
	}
	return n
}

// TestInboxSmallFrames: a peer sending tiny DATA frames cannot make the
// receiver hold a buffer for each (they join the last buffer), and the
// bytes come out whole and in order; frames of any size take at most
// twice their payload.
func TestInboxSmallFrames(t *testing.T) {
	const window = 64 << 10
	for _, tc := range []struct {
		name     string
		size     func(r *rand.Rand) int
		maxRatio float64 // buffers held over payload, at most
	}{
		{"1 byte", func(*rand.Rand) int { return 1 }, 1.2},
		{"1 to 100 bytes", func(r *rand.Rand) int { return 1 + r.IntN(100) }, 1.2},
		{"1 byte to 8 KiB", func(r *rand.Rand) int { return 1 + r.IntN(8<<10) }, 2.1},
		{"16 KiB + 1", func(*rand.Rand) int { return 16<<10 + 1 }, 2.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			q := newInbox(context.Background(), nopFrameConn{}, 1, window, 0)
			var want []byte
			for len(want) < window {
				n := min(tc.size(r), window-len(want))
				f := getFrame(n)
				for i := range f.payload() {
					f.payload()[i] = byte(len(want) + i)
				}
				want = append(want, f.payload()...)
				if err := q.push(f, len(want) == window); err != nil {
					t.Fatal(err)
				}
			}
			if held, limit := q.held(), int(tc.maxRatio*window)+2*(frameHeaderLen+4096); held > limit {
				t.Errorf("%d payload bytes held in %d bytes of buffers, want at most %d", window, held, limit)
			}
			got, err := io.ReadAll(q)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("read %d bytes (%v), want the %d pushed, in order", len(got), err, len(want))
			}
		})
	}
}

// recordingConn records the payload size of every DATA frame sent.
type recordingConn struct{ sizes []int }

func (c *recordingConn) send(frame []byte) error {
	c.sizes = append(c.sizes, len(frame)-frameHeaderLen)
	return nil
}
func (c *recordingConn) sendCredit(uint32, uint32) {}

// TestFrameSenderChunks: with credit to spare, an output of unknown size
// goes out as a 64 KiB chunk, one up to the chunk size, then whole chunks
// (which line up with the receiver's grants), and the last with what is
// left; a known size makes the first chunk just large enough.
func TestFrameSenderChunks(t *testing.T) {
	const limit = 128 << 10
	for _, tc := range []struct {
		name  string
		hint  int
		total int
		want  []int
	}{
		{"unknown size", 0, 4<<20 + 100, slices.Concat([]int{64 << 10, 64 << 10}, slices.Repeat([]int{limit}, 31), []int{100})},
		{"known small size", 5000 + 1, 5000, []int{5000}},
		{"known size over a chunk", limit, 3*limit + 7, []int{limit, limit, limit, 7}},
		{"announced too small", 1000 + 1, 1001 + limit, []int{1001, limit - 1001, 1001}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &recordingConn{}
			s := &frameSender{ctx: context.Background(), conn: c, id: 1, win: newSendWindow(1<<30, 0), limit: limit, hint: tc.hint}
			data := make([]byte, tc.total)
			for p := data; len(p) > 0; {
				k := min(len(p), 32<<10)
				if _, err := s.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := s.flush(flagEnd, nil); err != nil {
				t.Fatal(err)
			}
			s.release()
			if !slices.Equal(c.sizes, tc.want) {
				t.Errorf("frames %v, want %v", c.sizes, tc.want)
			}
		})
	}
}
