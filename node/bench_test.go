package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/insitu-data/insitu"
)

// BenchmarkPut measures one PUT through the client to a node on loopback:
// HTTP, XXH64, a temporary file, fsync and rename.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := startCluster(b, 1, nil)
			client := c.Client()
			data := content("bench", size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				name := insitu.Name{Bucket: "bench", Key: fmt.Sprintf("obj-%d", i%64)}
				i++
				if _, err := client.Put(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// BenchmarkGet measures one GET through the client from a node on loopback.
func BenchmarkGet(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := startCluster(b, 1, nil)
			client := c.Client()
			ctx := context.Background()
			name := insitu.Name{Bucket: "bench", Key: "obj"}
			if _, err := client.Put(ctx, name, bytes.NewReader(content("bench", size)), int64(size)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rc, _, err := client.Get(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, rc, buf)
				rc.Close()
				if err != nil || n != int64(size) {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}
