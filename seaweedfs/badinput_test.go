package seaweedfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
)

func TestNewClientRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		filer, master string
		opts          *seaweedfs.Options
	}{
		{"", "http://127.0.0.1:9333", nil},
		{"127.0.0.1:8888", "http://127.0.0.1:9333", nil},
		{"ftp://127.0.0.1:8888", "http://127.0.0.1:9333", nil},
		{"http://127.0.0.1:8888/?x=1", "http://127.0.0.1:9333", nil},
		{"http://127.0.0.1:8888", "http://", nil},
		{"http://127.0.0.1:8888", "http://127.0.0.1:9333", &seaweedfs.Options{Root: "relative"}},
		{"http://127.0.0.1:8888", "http://127.0.0.1:9333", &seaweedfs.Options{Root: "/a/../b"}},
		{"http://127.0.0.1:8888", "http://127.0.0.1:9333", &seaweedfs.Options{Root: "/etc/data"}},
		{"http://127.0.0.1:8888", "http://127.0.0.1:9333", &seaweedfs.Options{Timeout: -1}},
	} {
		if _, err := seaweedfs.NewClient(tc.filer, tc.master, tc.opts); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("NewClient(%q, %q, %+v): %v; want InvalidArgument", tc.filer, tc.master, tc.opts, err)
		}
	}
	c, err := seaweedfs.NewClient("http://127.0.0.1:8888/", "http://127.0.0.1:9333", &seaweedfs.Options{Root: "/data/"})
	if err != nil || c.FilerURL() != "http://127.0.0.1:8888" || c.Root() != "/data" {
		t.Fatalf("NewClient: %v, %v", c, err)
	}
	if _, err := seaweedfs.NewSource(nil, "b", nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("NewSource(nil): %v", err)
	}
	for _, b := range []string{"", "a/b", ".."} {
		if _, err := seaweedfs.NewSource(c, b, nil); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("NewSource(%q): %v; want InvalidArgument", b, err)
		}
	}
	if _, err := seaweedfs.NewSource(c, "b", &seaweedfs.SourceOptions{PageSize: -1}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("NewSource with PageSize -1: %v", err)
	}
	if _, err := seaweedfs.NewSink(nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("NewSink(nil): %v", err)
	}
	if _, err := seaweedfs.NewTopology(nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("NewTopology(nil): %v", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// firstError returns the first error of a listing.
func firstError(t *testing.T, src *seaweedfs.Source) error {
	t.Helper()
	for _, err := range src.Objects(t.Context()) {
		if err != nil {
			return err
		}
	}
	return nil
}

// A filer or master URL that is something else, or nothing, gives a
// coded error that says so.
func TestWrongServers(t *testing.T) {
	t.Parallel()
	c := shared(t)
	good := newClient(t, c, nil)
	filerPut(t, c, good.Root()+"/bkt/obj", []byte("obj"), "")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>a web site</html>")
	}))
	defer web.Close()
	down := "http://" + closedPort(t)
	for i, tc := range []struct {
		what, filer, master string
		code                insitu.Code
		say                 string
	}{
		// The first four have a wrong filer, the last three a wrong master.
		{"the master as filer", c.MasterURL, c.MasterURL, insitu.InvalidArgument, "not a SeaweedFS filer"},
		{"a volume server as filer", "http://" + c.VolumeServers[0], c.MasterURL, insitu.InvalidArgument, "not a SeaweedFS filer"},
		{"a web site as filer", web.URL, c.MasterURL, insitu.InvalidArgument, "not a SeaweedFS filer"},
		{"no filer", down, c.MasterURL, insitu.Unavailable, down},
		{"the filer as master", c.FilerURL, c.FilerURL, insitu.InvalidArgument, "not a SeaweedFS master"},
		{"a web site as master", c.FilerURL, web.URL, insitu.InvalidArgument, "master"},
		{"no master", c.FilerURL, down, insitu.Unavailable, down},
	} {
		client, err := seaweedfs.NewClient(tc.filer, tc.master, &seaweedfs.Options{Root: good.Root()})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := seaweedfs.NewSource(client, "bkt", nil)
		err = firstError(t, src)
		if !errors.Is(err, tc.code) || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%s: listing: %v; want %v saying %q", tc.what, err, tc.code, tc.say)
		}
		// Open asks the filer, then the master.
		if _, err := readAll(t, src, insitu.Object{Name: insitu.Name{Key: "obj"}}); !errors.Is(err, tc.code) {
			t.Errorf("%s: Open: %v; want %v", tc.what, err, tc.code)
		}
		if i < 4 {
			sink, _ := seaweedfs.NewSink(client, nil)
			_, err := sink.Put(t.Context(), insitu.Name{Bucket: "bkt", Key: "new"}, strings.NewReader("x"), 1)
			if !errors.Is(err, tc.code) {
				t.Errorf("%s: Put: %v; want %v", tc.what, err, tc.code)
			}
			if _, err := client.VolumeServers(t.Context()); err != nil && tc.master == c.MasterURL {
				t.Errorf("%s: VolumeServers: %v", tc.what, err)
			}
		} else {
			topo, _ := seaweedfs.NewTopology(client, nil)
			if _, err := topo.Map(t.Context()); !errors.Is(err, tc.code) {
				t.Errorf("%s: Topology.Map: %v; want %v", tc.what, err, tc.code)
			}
		}
	}
}

// A filer that does not answer fails a request within Options.Timeout,
// as Unavailable; the caller's own deadline comes back as it is.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // accepts connections and never answers
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		l.Close()
		<-done
	}()
	client, err := seaweedfs.NewClient("http://"+l.Addr().String(), "http://"+l.Addr().String(), &seaweedfs.Options{Timeout: 200 * time.Millisecond, IOTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := seaweedfs.NewSource(client, "bkt", nil)
	t0 := time.Now()
	err = firstError(t, src)
	if !errors.Is(err, insitu.Unavailable) || time.Since(t0) > 5*time.Second {
		t.Errorf("listing from a silent filer: %v after %v; want Unavailable after about 200ms", err, time.Since(t0))
	}
	sink, _ := seaweedfs.NewSink(client, nil)
	if _, err := sink.Put(t.Context(), insitu.Name{Bucket: "bkt", Key: "k"}, strings.NewReader("x"), 1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put to a silent filer: %v; want Unavailable", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: "k"}}); err != context.DeadlineExceeded {
		t.Errorf("Open with the caller's deadline: %v; want context.DeadlineExceeded", err)
	}
}

// Put refuses what the filer would store elsewhere or half: invalid and
// S3-invalid bucket names under /buckets, a name that is a directory, a
// path segment over the filer's limit, a volume server that is not one;
// and nothing appears in the filer.
func TestPutRefuses(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	sink, _ := seaweedfs.NewSink(client, nil)
	filerPut(t, c, client.Root()+"/bkt/dir/inside", []byte("x"), "")
	ctx := t.Context()
	for _, tc := range []struct {
		name   insitu.Name
		server string
		code   insitu.Code
	}{
		{insitu.Name{Bucket: "", Key: "k"}, "", insitu.InvalidArgument},
		{insitu.Name{Bucket: "bkt", Key: "dir"}, "", insitu.InvalidArgument},
		{insitu.Name{Bucket: "bkt", Key: strings.Repeat("s", 256)}, "", insitu.InvalidArgument},
		{insitu.Name{Bucket: "bkt", Key: "k"}, "not-a-host-port", insitu.InvalidArgument},
		{insitu.Name{Bucket: "bkt", Key: "k"}, "http://" + c.VolumeServers[0], insitu.InvalidArgument},
		{insitu.Name{Bucket: "bkt", Key: "stopped"}, closedPort(t), insitu.Unavailable},
	} {
		_, err := sink.PutOn(ctx, tc.server, tc.name, strings.NewReader("data"), 4)
		if !errors.Is(err, tc.code) {
			t.Errorf("PutOn(%q, %s): %v; want %v", tc.server, tc.name, err, tc.code)
		}
	}
	if e := filerMeta(t, c, client.Root()+"/bkt/dir/dir"); e != nil {
		t.Errorf("a Put of a directory's name stored %s", e.FullPath)
	}
	if e := filerMeta(t, c, client.Root()+"/bkt/stopped"); e != nil {
		t.Errorf("a Put pinned to no server stored %s", e.FullPath)
	}

	// Under /buckets the filer takes only S3 bucket names, and would keep
	// the file of a refused bucket anyway (reachable by path, in no
	// listing): Put checks first.
	s3sink, _ := seaweedfs.NewSink(newClient(t, c, &seaweedfs.Options{Root: "/buckets"}), nil)
	for _, b := range []string{"b1", "Upper", "under_score", "-dash", "a..b", "192.168.1.1", strings.Repeat("b", 64)} {
		_, err := s3sink.Put(ctx, insitu.Name{Bucket: b, Key: "k"}, strings.NewReader("data"), 4)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "S3") {
			t.Errorf("Put to bucket %q under /buckets: %v; want InvalidArgument about S3 names", b, err)
		}
		if e := filerMeta(t, c, "/buckets/"+b+"/k"); e != nil {
			t.Errorf("bucket %q: the refused Put stored %s", b, e.FullPath)
		}
	}
}

// A Put whose body is cut before its end leaves nothing in the filer,
// and an older object whole.
func TestPutCutLeavesNothing(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	sink, _ := seaweedfs.NewSink(client, nil)
	ctx := t.Context()
	old := bytes.Repeat([]byte("old"), 1000)
	if _, err := sink.Put(ctx, insitu.Name{Bucket: "cut", Key: "old"}, bytes.NewReader(old), int64(len(old))); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"new", "old"} {
		for _, size := range []int64{10 << 20, -1} {
			boom := errors.New("boom")
			// 6 MB, past the first 4 MiB chunk the filer stores, then
			// the input fails.
			r := io.MultiReader(bytes.NewReader(make([]byte, 6<<20)), &errReader{boom})
			_, err := sink.Put(ctx, insitu.Name{Bucket: "cut", Key: key}, r, size)
			if !errors.Is(err, boom) {
				t.Errorf("Put(%s, size %d) of a failing input: %v", key, size, err)
			}
		}
	}
	if e := filerMeta(t, c, client.Root()+"/cut/new"); e != nil {
		t.Errorf("a failed Put stored %s (%d bytes)", e.FullPath, e.FileSize)
	}
	if b, err := filerRead(t, c, client.Root()+"/cut/old"); err != nil || !bytes.Equal(b, old) {
		t.Errorf("the older object after failed Puts: %d bytes, %v", len(b), err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
