package transport_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transport"
)

// The transport benchmarks: an identity transform over each transport on
// 4 KiB to 16 MiB objects, many objects in flight at once (RunParallel with
// 8 goroutines per CPU), reporting MB/s, objects/s and allocations; and a
// plain TCP echo on loopback as the ceiling.
//
//	go test -run '^$' -bench . -benchmem ./transport/

var benchSizes = []int{4 << 10, 16 << 10, 64 << 10, 1 << 20, 16 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

// benchServer serves t on 127.0.0.1.
func benchServer(b *testing.B, t insitu.Transform) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s, err := transport.NewServer(t, &transport.ServerOptions{MaxConcurrent: 64})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// benchSource serves data at every object path, for hpull.
func benchSource(b *testing.B, data []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func BenchmarkTransport(b *testing.B) {
	for _, mode := range []string{"inproc", "ws", "hpush", "hpull"} {
		for _, size := range benchSizes {
			data := bytes.Repeat([]byte("insitu!\n"), size/8)
			b.Run(mode+"/"+sizeName(size), func(b *testing.B) { benchMode(b, mode, insitu.Identity, data) })
		}
	}
}

// BenchmarkTransportGzip runs a transform that does some work, gzip
// (level 6) of 16 KiB of text, most of a millisecond of CPU here, in-process and over each
// transport: what a transport costs next to a real transform, where the
// identity benchmarks compare it with a memory copy.
func BenchmarkTransportGzip(b *testing.B) {
	data := benchText(16 << 10)
	var pool sync.Pool // of *gzip.Writer: each takes about 800 KB to make
	gz := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, w io.Writer) error {
		zw, _ := pool.Get().(*gzip.Writer)
		if zw == nil {
			zw = gzip.NewWriter(w)
		} else {
			zw.Reset(w)
		}
		defer pool.Put(zw)
		if _, err := io.Copy(zw, in.Body); err != nil {
			return err
		}
		return zw.Close()
	})
	for _, mode := range []string{"inproc", "ws", "hpush", "hpull"} {
		b.Run(mode+"/16KiB", func(b *testing.B) { benchMode(b, mode, gz, data) })
	}
}

// benchText returns n bytes of English-like text, the same every run.
func benchText(n int) []byte {
	words := strings.Fields("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will more can who said")
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			buf.WriteString(".\n")
		} else {
			buf.WriteByte(' ')
		}
	}
	return buf.Bytes()[:n]
}

func benchMode(b *testing.B, mode string, t insitu.Transform, data []byte) {
	size := len(data)
	if mode != "inproc" {
		m, err := transport.ParseMode(mode)
		if err != nil {
			b.Fatal(err)
		}
		opts := &transport.DialOptions{Mode: m, Logger: slog.New(slog.DiscardHandler)}
		if m == transport.HPull {
			src := benchSource(b, data)
			opts.SourceURL = func(obj insitu.Object) (string, string, error) {
				return src + "/v1/objects/b/" + obj.Name.Key, "", nil
			}
		}
		c, err := transport.Dial(context.Background(), benchServer(b, t), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		t = c
	}
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(8)
	start, cpu := time.Now(), cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		r := bytes.NewReader(data)
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "bench.bin"}, Size: int64(size)}}
		for pb.Next() {
			r.Reset(data)
			in.Body = struct{ io.Reader }{r} // a plain reader: the bytes are copied, as from a file
			if err := t.Transform(ctx, in, io.Discard); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRates(b, start, cpu)
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports objects/s and the CPU time per object (both ends of
// the transport, since they share the process). On a shared machine the
// CPU per object is the steadier figure: objects/s moves with whatever
// else runs, the work an object takes much less.
func reportRates(b *testing.B, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "objects/s")
	b.ReportMetric(float64(cpuTime(b)-cpu)/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkLoopbackEcho is the ceiling of the transports: each object's
// bytes go to a TCP echo server on 127.0.0.1 and come back, as they do
// through an identity transform, over one long-lived connection per
// goroutine, with 256 KiB reads and writes.
func BenchmarkLoopbackEcho(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
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
						io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 256<<10))
					}()
				}
			}()
			data := bytes.Repeat([]byte("insitu!\n"), size/8)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(8)
			start, cpu := time.Now(), cpuTime(b)
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				buf := make([]byte, 256<<10)
				for pb.Next() {
					done := make(chan error, 1)
					go func() {
						_, err := c.Write(data)
						done <- err
					}()
					if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, io.LimitReader(c, int64(size)), buf); err != nil {
						b.Error(err)
						return
					}
					if err := <-done; err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRates(b, start, cpu)
		})
	}
}
