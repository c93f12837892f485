package seaweedfs_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// lateReader gives nothing for a while, then its bytes: a transform
// that writes its output only once it is done (ffmpeg's WAV transform
// spools it to a temporary file first).
type lateReader struct {
	delay time.Duration
	r     io.Reader
	slept bool
}

func (l *lateReader) Read(p []byte) (int, error) {
	if !l.slept {
		time.Sleep(l.delay)
		l.slept = true
	}
	return l.r.Read(p)
}

// The filer drops a connection whose request stalls for its -idleTimeout
// (10 s by default). A Put reads the first BufferSize bytes of its input
// before it sends anything, so an input that starts late is stored; an
// input that stalls past the idle timeout in the middle fails, with
// Unavailable, and leaves nothing.
func TestPutInputThatStalls(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	c := seaweedfstest.Start(t, &seaweedfstest.Options{VolumeServers: 1, FilerFlags: []string{"-idleTimeout=1"}})
	client := newClient(t, c, nil)
	sink, err := seaweedfs.NewSink(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		n    int
		size int64
	}{
		{1000, 1000},  // within the first buffer, size known
		{6 << 20, -1}, // past it, size unknown
	} {
		n, size := tc.n, tc.size
		{
			b := sinktest.Content("late", n)
			name := insitu.Name{Bucket: "stall", Key: "late"}
			res, err := sink.Put(ctx, name, &lateReader{delay: 1500 * time.Millisecond, r: bytes.NewReader(b)}, size)
			if err != nil || res.Size != int64(n) {
				t.Errorf("Put of %d bytes (size %d) starting 1.5 s late: %+v, %v", n, size, res, err)
			} else if got, err := filerRead(t, c, client.Root()+"/stall/late"); err != nil || !bytes.Equal(got, b) {
				t.Errorf("stored %d bytes, %v; want %d", len(got), err, n)
			}
		}
	}
	// 5 MB (past the first buffer of 4 MiB), then a stall of 1.5 s.
	b := sinktest.Content("stalls", 5<<20)
	r := io.MultiReader(bytes.NewReader(b[:5<<20-1000]), &lateReader{delay: 1500 * time.Millisecond, r: bytes.NewReader(b[5<<20-1000:])})
	name := insitu.Name{Bucket: "stall", Key: "midway"}
	if _, err := sink.Put(ctx, name, r, -1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put that stalls past the filer's idle timeout midway: %v; want Unavailable", err)
	}
	if _, err := sink.Stat(ctx, name); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat after the failed Put: %v; want NotFound", err)
	}
}
