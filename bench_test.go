package insitu_test

// The root benchmarks: what each part of insitu's data path costs, with an
// identity transform so that the transform itself costs nothing.
//
//	go test -run '^$' -bench . -benchmem
//
//   - BenchmarkTransport: every transport (inproc, ws, hpush, hpull) ×
//     object size (4 KiB, 64 KiB, 1 MiB, 16 MiB), the bytes sent and the
//     output read back and dropped.
//   - BenchmarkTransportPut: the same transports, with the input given as
//     bytes or as a local file, and the output stored on a storage node
//     either by the caller (the output comes back, the caller PUTs it) or
//     by direct put (the transform server PUTs it to the node itself; for
//     inproc, the node stores it in its own store, as an embedded job on
//     the owner does).
//   - BenchmarkNode: the node's PUT and GET over HTTP on loopback.
//   - BenchmarkClusterJob: a whole job on a 3-node cluster, 16 KiB and
//     1 MiB objects, in every mode the cluster offers.
//
// Every benchmark sets its bytes per operation (b.SetBytes, so MB/s is
// reported) and reports allocations and objects/s. Servers, clusters and
// inputs are made before the timer starts. The transport benchmarks keep
// 4 × GOMAXPROCS objects in flight (RunParallel), as a runner does.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/hash"
	"github.com/insitu-data/insitu/transport"
)

// benchSizes are the object sizes of the transport and node benchmarks.
var benchSizes = []int{4 << 10, 64 << 10, 1 << 20, 16 << 20}

// benchTransports are the transports, "inproc" being the transform called
// in this process.
var benchTransports = []string{"inproc", "ws", "hpush", "hpull"}

// benchParallelism × GOMAXPROCS objects are in flight in the transport
// and node benchmarks.
const benchParallelism = 4

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

// benchData returns size bytes of a repeating, not constant, pattern.
func benchData(size int) []byte {
	return bytes.Repeat([]byte("insitu benchmark data 0123456789\n"), size/33+1)[:size]
}

func reportObjects(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "objects/s")
	}
}

// benchEnv is what the transport benchmarks share: a one-node cluster (the
// destination of puts, and the source that hpull fetches from), a
// transform server of the identity transform on 127.0.0.1 that may read
// local files under dir, and clients of it.
type benchEnv struct {
	cluster *nodetest.Cluster
	node    *node.Node
	sink    *sink.ClusterSink
	srvURL  string
	dir     string // the local-file inputs

	mu      sync.Mutex
	clients map[string]*transport.Client
}

func startBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	dst, err := sink.Cluster(c.Client())
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{cluster: c, node: c.Nodes()[0], sink: dst, dir: b.TempDir(), clients: map[string]*transport.Client{}}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ts, err := transport.NewServer(insitu.Identity, &transport.ServerOptions{
		MaxConcurrent: 256,
		Roots:         []string{e.dir},
		Secret:        c.Secret().TransformSecret("n1"), // as the server next to n1
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: ts, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	b.Cleanup(func() {
		for _, cl := range e.clients {
			cl.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		hs.Close()
	})
	e.srvURL = "http://" + ln.Addr().String()
	return e
}

// benchObject is an input object, stored on the node (for hpull) and in
// a local file (for local-file input).
type benchObject struct {
	data []byte
	name insitu.Name
	path string
}

// inputs stores an object of each size.
func (e *benchEnv) inputs(b *testing.B) map[int]benchObject {
	b.Helper()
	objs := map[int]benchObject{}
	for _, size := range benchSizes {
		o := benchObject{data: benchData(size), name: insitu.Name{Bucket: "in", Key: "obj-" + sizeName(size)}}
		if _, err := e.cluster.Put(context.Background(), o.name, bytes.NewReader(o.data), int64(size)); err != nil {
			b.Fatal(err)
		}
		o.path = filepath.Join(e.dir, o.name.Key)
		if err := os.WriteFile(o.path, o.data, 0o644); err != nil {
			b.Fatal(err)
		}
		objs[size] = o
	}
	return objs
}

// transform returns the identity transform reached over tr: called in
// this process, or a client of the transform server that sends local
// paths when localFile is set. Clients are made once and shared.
func (e *benchEnv) transform(b *testing.B, tr string, localFile bool) insitu.Transform {
	b.Helper()
	if tr == "inproc" {
		return insitu.Identity
	}
	key := fmt.Sprintf("%s/%v", tr, localFile)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[key]; ok {
		return c
	}
	mode, err := transport.ParseMode(tr)
	if err != nil {
		b.Fatal(err)
	}
	opts := &transport.DialOptions{Mode: mode, LocalFile: localFile, Secret: e.cluster.Secret().TransformSecret("n1"), Pool: 64, Logger: slog.New(slog.DiscardHandler)}
	if mode == transport.HPull {
		// The server fetches each object from the node that stores it.
		cl := e.cluster.Client()
		opts.SourceURL = func(obj insitu.Object) (string, string, error) {
			_, u, err := cl.OwnerURL(obj.Name)
			return u, cl.ObjectToken(locality.Read, obj.Name), err
		}
	}
	c, err := transport.Dial(context.Background(), e.srvURL, opts)
	if err != nil {
		b.Fatal(err)
	}
	e.clients[key] = c
	return c
}

// lazyFile opens path on its first Read, as a runner's object body does.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) Read(p []byte) (int, error) {
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Read(p)
}

func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// benchInput makes the input of one object: its bytes from memory (as a
// plain reader, so that they are copied as from a socket), or its local
// file.
type benchInput struct {
	data []byte
	name insitu.Name
	path string // set for local-file input
	r    bytes.Reader
	file lazyFile
}

func (bi *benchInput) next() *insitu.Input {
	in := &insitu.Input{Object: insitu.Object{Name: bi.name, Size: int64(len(bi.data))}}
	if bi.path != "" {
		bi.file.Close()
		bi.file = lazyFile{path: bi.path}
		in.Path, in.Body = bi.path, &bi.file
	} else {
		bi.r.Reset(bi.data)
		in.Body = struct{ io.Reader }{&bi.r}
	}
	return in
}

// BenchmarkTransport sends each object through the identity transform
// over each transport and drops the output: the cost of carrying the bytes
// to the transform and back.
func BenchmarkTransport(b *testing.B) {
	e := startBenchEnv(b)
	objs := e.inputs(b)
	for _, tr := range benchTransports {
		for _, size := range benchSizes {
			data, name := objs[size].data, objs[size].name
			b.Run(tr+"/"+sizeName(size), func(b *testing.B) {
				t := e.transform(b, tr, false)
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.SetParallelism(benchParallelism)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					bi := &benchInput{data: data, name: name}
					for pb.Next() {
						if err := t.Transform(ctx, bi.next(), io.Discard); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportObjects(b)
			})
		}
	}
}

// BenchmarkTransportPut runs each object through the identity transform
// and stores the output on a node, for every transport × input (bytes,
// local file) × put:
//
//   - put=caller: the output comes back to the caller, which PUTs it to
//     the node over HTTP (direct put off);
//   - put=direct: the transform server PUTs the output to the node itself
//     (direct put on; ws, hpush and hpull);
//   - put=local: the node stores the output in its own store without HTTP,
//     as an embedded job does on the owner (inproc only).
func BenchmarkTransportPut(b *testing.B) {
	e := startBenchEnv(b)
	objs := e.inputs(b)
	for _, tr := range benchTransports {
		for _, in := range []string{"bytes", "file"} {
			puts := []string{"caller", "direct"}
			if tr == "inproc" {
				puts = []string{"caller", "local"}
			}
			for _, put := range puts {
				for _, size := range benchSizes {
					data, name, path := objs[size].data, objs[size].name, objs[size].path
					if in == "bytes" {
						path = ""
					}
					b.Run(fmt.Sprintf("%s/in=%s/put=%s/%s", tr, in, put, sizeName(size)), func(b *testing.B) {
						benchPut(b, e, e.transform(b, tr, in == "file"), put, data, name, path)
					})
				}
			}
		}
	}
}

var benchGoroutine atomic.Int64

func benchPut(b *testing.B, e *benchEnv, t insitu.Transform, put string, data []byte, name insitu.Name, path string) {
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := benchGoroutine.Add(1)
		bi := &benchInput{data: data, name: name, path: path}
		defer bi.file.Close()
		for i := 0; pb.Next(); i++ {
			// Each goroutine writes its own few names, over and over.
			out := insitu.Name{Bucket: "out", Key: fmt.Sprintf("g%d/%s-%d", g, name.Key, i%4)}
			var res insitu.PutResult
			var err error
			switch put {
			case "direct":
				var dst insitu.Destination
				if dst, err = e.sink.Destination(ctx, out); err == nil {
					res, err = t.(insitu.DirectTransform).TransformTo(ctx, bi.next(), dst)
				}
			case "local":
				res, err = pipeThrough(ctx, t, bi.next(), func(r io.Reader) (insitu.PutResult, error) { return e.node.Put(ctx, out, r, -1) })
			default:
				res, err = pipeThrough(ctx, t, bi.next(), func(r io.Reader) (insitu.PutResult, error) { return e.sink.Put(ctx, out, r, -1) })
			}
			if err == nil && res.Size != int64(len(data)) {
				err = fmt.Errorf("stored %d bytes, want %d", res.Size, len(data))
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportObjects(b)
}

// pipeThrough runs t on in, streaming its output into put, as the runner
// does.
func pipeThrough(ctx context.Context, t insitu.Transform, in *insitu.Input, put func(io.Reader) (insitu.PutResult, error)) (insitu.PutResult, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := t.Transform(ctx, in, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	res, err := put(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if terr := <-done; terr != nil && err == nil {
		err = terr
	}
	return res, err
}

// BenchmarkNode measures the storage node's object API over HTTP on
// loopback, through the cluster client: PUT (XXH64, a temporary file,
// fsync, rename) and GET.
func BenchmarkNode(b *testing.B) {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	client := c.Client()
	for _, size := range benchSizes {
		data := benchData(size)
		b.Run("PUT/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := benchGoroutine.Add(1)
				r := bytes.NewReader(data)
				for i := 0; pb.Next(); i++ {
					r.Reset(data)
					name := insitu.Name{Bucket: "bench", Key: fmt.Sprintf("put/g%d-%d", g, i%4)}
					if _, err := client.Put(ctx, name, struct{ io.Reader }{r}, int64(size)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportObjects(b)
		})
		b.Run("GET/"+sizeName(size), func(b *testing.B) {
			name := insitu.Name{Bucket: "bench", Key: "get/" + sizeName(size)}
			if _, err := client.Put(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 64<<10)
				for pb.Next() {
					rc, _, err := client.Get(ctx, name)
					if err != nil {
						b.Error(err)
						return
					}
					n, err := io.CopyBuffer(io.Discard, rc, buf)
					rc.Close()
					if err == nil && n != int64(size) {
						err = fmt.Errorf("read %d bytes, want %d", n, size)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportObjects(b)
		})
	}
}

// BenchmarkClusterJob runs a whole job with the identity transform on a
// 3-node cluster, once per iteration: every node transforms the objects
// it owns and puts each output to the output's owner. An iteration is the
// whole set (256 objects of 16 KiB, or 64 of 1 MiB), so MB/s and objects/s
// are the job's throughput, its start and end included. The modes:
//
//   - embedded: the in-process transform on each node, local-file input;
//   - sidecar/<transport>/in=<bytes|file>/put=<node|direct>: through the
//     transform server next to each node (in this process, on its own
//     port), the node sending the bytes (hpull: the server fetching them)
//     or the local path, and the output coming back to the node to be put
//     by it, or put by the server itself;
//   - remote/<transport>/in=<bytes|file>/put=<caller|direct>: the caller
//     lists the cluster and sends each object to the transform server
//     next to its owner (transport.Cluster), which fetches the bytes from
//     the owner (hpush: the caller sends them) or reads its file, and puts
//     the output to its owner, or sends it back to the caller to put.
func BenchmarkClusterJob(b *testing.B) {
	for _, tc := range []struct{ size, count int }{{16 << 10, 256}, {1 << 20, 64}} {
		b.Run("embedded/"+sizeName(tc.size), func(b *testing.B) {
			benchJob(b, tc.size, tc.count, cluster.JobSpec{Transform: "identity"})
		})
		for _, mode := range transport.Modes() {
			for _, localFile := range []bool{false, true} {
				for _, directPut := range []bool{false, true} {
					in, put := "bytes", "node"
					if localFile {
						in = "file"
					}
					if directPut {
						put = "direct"
					}
					name := fmt.Sprintf("sidecar/%s/in=%s/put=%s/%s", mode, in, put, sizeName(tc.size))
					b.Run(name, func(b *testing.B) {
						benchJob(b, tc.size, tc.count, cluster.JobSpec{Server: &cluster.ServerSpec{Mode: mode, LocalFile: localFile, DirectPut: directPut}})
					})
				}
			}
		}
		for _, mode := range []string{"ws", "hpush", "hpull"} {
			for _, localFile := range []bool{false, true} {
				for _, directPut := range []bool{false, true} {
					in, put := "bytes", "caller"
					if localFile {
						in = "file"
					}
					if directPut {
						put = "direct"
					}
					b.Run(fmt.Sprintf("remote/%s/in=%s/put=%s/%s", mode, in, put, sizeName(tc.size)), func(b *testing.B) {
						benchRemote(b, tc.size, tc.count, mode, localFile, directPut)
					})
				}
			}
		}
	}
}

// startJobCluster starts a 3-node cluster with the identity transform in
// process and in a transform server next to each node, holding count
// objects of size bytes in the bucket "in".
func startJobCluster(b *testing.B, size, count int) *nodetest.Cluster {
	b.Helper()
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{
		Transforms:     map[string]insitu.Transform{"identity": insitu.Identity},
		Sidecar:        insitu.Identity,
		SidecarOptions: &transport.ServerOptions{Logger: slog.New(slog.DiscardHandler)},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	data := benchData(size)
	for i := range count {
		name := insitu.Name{Bucket: "in", Key: fmt.Sprintf("obj-%04d", i)}
		if _, err := c.Put(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// benchJob runs spec as a job on every node, once per iteration.
func benchJob(b *testing.B, size, count int, spec cluster.JobSpec) {
	ctx := context.Background()
	c := startJobCluster(b, size, count)
	spec.Bucket, spec.DstBucket = "in", "out"
	opts := &cluster.Options{Progress: func(pipeline.Stats) {}}
	b.SetBytes(int64(size * count))
	b.ReportAllocs()
	for b.Loop() {
		spec.ID = "" // a new job each time; its outputs replace the last one's
		rep, err := cluster.Run(ctx, c.Client(), spec, opts)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Transformed != int64(count) || rep.BytesOut != int64(size*count) {
			b.Fatalf("transformed %d objects, %d bytes; want %d, %d", rep.Transformed, rep.BytesOut, count, size*count)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*count)/s, "objects/s")
	}
}

// benchRemote runs the job in remote mode, once per iteration, with as
// many objects in flight as the nodes' jobs have in all.
func benchRemote(b *testing.B, size, count int, mode string, localFile, directPut bool) {
	ctx := context.Background()
	c := startJobCluster(b, size, count)
	m, err := transport.ParseMode(mode)
	if err != nil {
		b.Fatal(err)
	}
	topts := &transport.ClusterOptions{Mode: m, Logger: slog.New(slog.DiscardHandler)}
	if localFile {
		topts.LocalPath = c.LocalPath
	}
	t, err := transport.Cluster(c.Client(), topts)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	src, err := source.Cluster(c.Client(), "in", nil)
	if err != nil {
		b.Fatal(err)
	}
	dst, err := sink.Cluster(c.Client())
	if err != nil {
		b.Fatal(err)
	}
	opts := &pipeline.Options{
		Workers:   3 * runtime.GOMAXPROCS(0),
		Rename:    func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: "out", Key: n.Key}, nil },
		DirectPut: directPut,
		Progress:  func(pipeline.Stats) {},
	}
	b.SetBytes(int64(size * count))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := pipeline.Run(ctx, src, t, dst, opts)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Transformed != int64(count) || rep.BytesOut != int64(size*count) {
			b.Fatalf("transformed %d objects, %d bytes; want %d, %d", rep.Transformed, rep.BytesOut, count, size*count)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*count)/s, "objects/s")
	}
}

// BenchmarkTransformedGet reads one 16 KiB object from its owner, as
// stored (GET) and through a transform on the owner (GET ?transform=,
// locality.Client.GetTransformed, checksum verified), with the identity
// transform and with XXH64; "alone" runs each transform in-process over
// the same bytes, its own CPU. Issue 14's target: transformed ≤ 1.3 ×
// (plain GET + alone), from the same run:
//
//	go test -run '^$' -bench TransformedGet -count 5 .
func BenchmarkTransformedGet(b *testing.B) {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{
		"identity": insitu.Identity, "xxh64": hash.XXH64()}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	client := c.Client()
	const size = 16 << 10
	data := benchData(size)
	name := insitu.Name{Bucket: "bench", Key: "tget"}
	if _, err := client.Put(ctx, name, bytes.NewReader(data), size); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, open func() (io.ReadCloser, error)) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 64<<10)
			for pb.Next() {
				rc, err := open()
				if err != nil {
					b.Error(err)
					return
				}
				_, err = io.CopyBuffer(io.Discard, rc, buf)
				rc.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportObjects(b)
	}
	b.Run("GET", func(b *testing.B) {
		read(b, func() (io.ReadCloser, error) { rc, _, err := client.Get(ctx, name); return rc, err })
	})
	for _, tr := range []string{"identity", "xxh64"} {
		b.Run("GET-transform="+tr, func(b *testing.B) {
			read(b, func() (io.ReadCloser, error) {
				rc, _, err := client.GetTransformed(ctx, name, []string{tr}, "")
				return rc, err
			})
		})
		b.Run("alone="+tr, func(b *testing.B) {
			t := map[string]insitu.Transform{"identity": insitu.Identity, "xxh64": hash.XXH64()}[tr]
			b.ReportAllocs()
			for b.Loop() {
				if err := t.Transform(ctx, &insitu.Input{Object: insitu.Object{Name: name, Size: size}, Body: bytes.NewReader(data)}, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
