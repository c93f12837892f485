package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
)

// TestNewServerErrors: a root that does not resolve to a directory, a nil
// transform and negative limits are InvalidArgument errors of NewServer
// (a missing root was logged and left out).
func TestNewServerErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		t    insitu.Transform
		opts *ServerOptions
	}{
		{"a root that does not exist", insitu.Identity, &ServerOptions{Roots: []string{dir, filepath.Join(dir, "missing")}}},
		{"a root that is a file", insitu.Identity, &ServerOptions{Roots: []string{file}}},
		{"a link to nowhere as a root", insitu.Identity, &ServerOptions{Roots: []string{symlink(t, filepath.Join(dir, "gone"))}}},
		{"a nil transform", nil, nil},
		{"a negative MaxObjectSize", insitu.Identity, &ServerOptions{MaxObjectSize: -1}},
		{"a negative Timeout", insitu.Identity, &ServerOptions{Timeout: -1}},
	} {
		s, err := NewServer(c.t, c.opts)
		if !errors.Is(err, insitu.InvalidArgument) || s != nil {
			t.Errorf("NewServer with %s: %v, %v; want nil and InvalidArgument", c.what, s, err)
		}
	}
	if _, err := NewServer(insitu.Identity, &ServerOptions{Roots: []string{dir, symlink(t, dir)}}); err != nil {
		t.Errorf("NewServer with a directory and a link to it: %v", err)
	}
}

func symlink(t *testing.T, target string) string {
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestQuietByDefault: a server and a client without a Logger log nothing,
// not even to slog.Default, when they meet what they log at Warn and
// Error level; given a Logger, they log there.
func TestQuietByDefault(t *testing.T) {
	var def bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)

	provoke := func(serverLog, clientLog *slog.Logger) {
		panicky := insitu.TransformFunc(func(context.Context, *insitu.Input, io.Writer) error { panic("a bug") })
		s, err := NewServer(panicky, &ServerOptions{Logger: serverLog})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s)
		defer hs.Close()
		defer s.Shutdown(context.Background())
		// Error level: a panic.
		c, err := Dial(testCtx(t), hs.URL, &DialOptions{Logger: clientLog})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 1}, Body: strings.NewReader("x")}
		if err := c.Transform(testCtx(t), in, io.Discard); !errors.Is(err, insitu.Internal) {
			t.Fatalf("a panicking transform: %v", err)
		}
		// Warn level: a broken frame, on the server.
		conn := rawDial(t, hs.URL)
		send(t, conn, []byte{1, 2, 3})
		wantClosed(t, conn, websocket.StatusProtocolError, "shorter than its 12-byte header")
		// Warn level: a broken frame, on the client.
		bad := httptest.NewServer(httpHandlerFunc(func(c *websocket.Conn) {
			c.Read(context.Background())
			c.Write(context.Background(), websocket.MessageBinary, []byte{0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
			c.Read(context.Background())
		}))
		defer bad.Close()
		bc, err := Dial(testCtx(t), bad.URL, &DialOptions{Pool: 1, Logger: clientLog})
		if err != nil {
			t.Fatal(err)
		}
		defer bc.Close()
		in = &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 0}, Body: strings.NewReader("")}
		if err := bc.Transform(testCtx(t), in, io.Discard); !errors.Is(err, insitu.Unavailable) {
			t.Fatalf("a broken server: %v", err)
		}
	}

	provoke(nil, nil)
	if def.Len() > 0 {
		t.Fatalf("a server and a client without a Logger wrote to slog.Default:\n%s", def.String())
	}
	var given bytes.Buffer
	l := slog.New(slog.NewTextHandler(&given, nil))
	provoke(l, l)
	for _, want := range []string{"panicked", "protocol error", "unknown frame type 255"} {
		if !strings.Contains(given.String(), want) {
			t.Errorf("the given Logger got no record with %q:\n%s", want, given.String())
		}
	}
	if def.Len() > 0 {
		t.Fatalf("with a Logger, records went to slog.Default too:\n%s", def.String())
	}
}

// TestInputPerMode: a nil Body is fine wherever the bytes do not travel
// (a local path, a source URL) and InvalidArgument, before anything is
// sent, wherever they do.
func TestInputPerMode(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "in.bin")
	if err := os.WriteFile(file, []byte("from the file"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	counted := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		calls.Add(1)
		return insitu.Identity.Transform(ctx, in, out)
	})
	_, base := startServer(t, counted, &ServerOptions{Roots: []string{root}})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the source") }))
	defer src.Close()
	sourceURL := func(insitu.Object) (string, string, error) { return src.URL + "/v1/objects/b/k", "", nil }

	for _, c := range []struct {
		what string
		opts DialOptions
		path string
		want string // "" for InvalidArgument
	}{
		{"ws, local file", DialOptions{Mode: WS, LocalFile: true}, file, "from the file"},
		{"hpush, local file", DialOptions{Mode: HPush, LocalFile: true}, file, "from the file"},
		{"hpull, local file", DialOptions{Mode: HPull, LocalFile: true}, file, "from the file"},
		{"ws, source URL", DialOptions{Mode: WS, SourceURL: sourceURL}, "", "from the source"},
		{"hpull, source URL", DialOptions{Mode: HPull, SourceURL: sourceURL}, "", "from the source"},
		{"ws, bytes", DialOptions{Mode: WS}, "", ""},
		{"hpush, bytes", DialOptions{Mode: HPush}, "", ""},
		{"ws, LocalFile but no path", DialOptions{Mode: WS, LocalFile: true}, "", ""},
		{"hpush, a path but not LocalFile", DialOptions{Mode: HPush}, file, ""},
		{"hpush, a source URL (which hpush ignores)", DialOptions{Mode: HPush, SourceURL: sourceURL}, "", ""},
	} {
		c.opts.Pool = 1
		cl, err := Dial(testCtx(t), base, &c.opts)
		if err != nil {
			t.Fatal(err)
		}
		before := calls.Load()
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: -1, Path: c.path}}
		var out bytes.Buffer
		err = cl.Transform(testCtx(t), in, &out)
		cl.Close()
		switch {
		case c.want == "" && !errors.Is(err, insitu.InvalidArgument):
			t.Errorf("%s, nil Body: %v, want InvalidArgument", c.what, err)
		case c.want == "" && calls.Load() != before:
			t.Errorf("%s, nil Body: the transform ran; the client must refuse it before sending", c.what)
		case c.want != "" && (err != nil || out.String() != c.want):
			t.Errorf("%s, nil Body: %q, %v; want %q", c.what, out.String(), err, c.want)
		}
	}
}
