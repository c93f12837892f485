//go:build unix

package node_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// BenchmarkBatchGet reads 10,000 objects of 1 KiB from a 3-node cluster
// on loopback, each iteration all of them, two ways over the same number
// of connections (one per node: http.Transport.MaxConnsPerHost = 1): one
// BatchGet, and one GET per object (a goroutine per node, each reading
// its node's objects one after the other, the most one connection
// allows). It reports the objects/s of both and their ratio.
//
//	go test -run xxx -bench BatchGet -benchtime 3x ./node
func BenchmarkBatchGet(b *testing.B) {
	c := startCluster(b, 3, nil)
	names, data := batchSeed(b, c, "bench", 10_000, func(int) int { return 1 << 10 })
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 1, 1
	defer t.CloseIdleConnections()
	client, err := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: c.Secret(), HTTPClient: &http.Client{Transport: t}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	byOwner := map[string][]insitu.Name{}
	for _, name := range names {
		id := c.Map().Owner(name).ID
		byOwner[id] = append(byOwner[id], name)
	}
	var batch, single, batchCPU, singleCPU time.Duration
	buf := make([]byte, 4<<10)
	for b.Loop() {
		start, cpu := time.Now(), processCPU()
		n := 0
		for e, err := range client.BatchGet(ctx, names, nil) {
			if err != nil {
				b.Fatal(err)
			}
			k, err := io.ReadFull(e.Body, buf[:e.Object.Size])
			if err != nil || string(buf[:k]) != string(data[e.Object.Name]) {
				b.Fatalf("entry %d: %v", e.Index, err)
			}
			n++
		}
		if n != len(names) {
			b.Fatalf("%d entries", n)
		}
		batch += time.Since(start)
		batchCPU += processCPU() - cpu

		start, cpu = time.Now(), processCPU()
		var wg sync.WaitGroup
		errs := make(chan error, len(byOwner))
		for _, own := range byOwner {
			wg.Go(func() {
				buf := make([]byte, 4<<10)
				for _, name := range own {
					rc, _, err := client.Get(ctx, name)
					if err != nil {
						errs <- err
						return
					}
					k, err := io.ReadFull(rc, buf[:len(data[name])])
					rc.Close()
					if err != nil || string(buf[:k]) != string(data[name]) {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		single += time.Since(start)
		singleCPU += processCPU() - cpu
	}
	total := float64(b.N * len(names))
	bps, sps := total/batch.Seconds(), total/single.Seconds()
	b.ReportMetric(bps, "batch-objects/s")
	b.ReportMetric(sps, "get-objects/s")
	b.ReportMetric(bps/sps, "ratio")
	// The CPU time of the whole process (client and nodes) per object,
	// which the machine's other load does not change as much as the
	// objects/s.
	b.ReportMetric(float64(batchCPU.Microseconds())/total, "batch-cpu-µs/object")
	b.ReportMetric(float64(singleCPU.Microseconds())/total, "get-cpu-µs/object")
	b.ReportMetric(0, "ns/op")
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBatchGetAlone is BenchmarkBatchGet's batch side alone (10,000
// objects of 1 KiB, 3 nodes, one connection per node), for profiling it:
//
//	go test -run xxx -bench BatchGetAlone -benchtime 10x -cpuprofile cpu.out ./node
func BenchmarkBatchGetAlone(b *testing.B) {
	c := startCluster(b, 3, nil)
	names, data := batchSeed(b, c, "bench", 10_000, func(int) int { return 1 << 10 })
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 1, 1
	defer t.CloseIdleConnections()
	client, err := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: c.Secret(), HTTPClient: &http.Client{Transport: t}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, 4<<10)
	var cpu time.Duration
	for b.Loop() {
		start := processCPU()
		n := 0
		for e, err := range client.BatchGet(ctx, names, nil) {
			if err != nil {
				b.Fatal(err)
			}
			k, err := io.ReadFull(e.Body, buf[:e.Object.Size])
			if err != nil || string(buf[:k]) != string(data[e.Object.Name]) {
				b.Fatalf("entry %d: %v", e.Index, err)
			}
			n++
		}
		if n != len(names) {
			b.Fatalf("%d entries", n)
		}
		cpu += processCPU() - start
	}
	total := float64(b.N * len(names))
	b.ReportMetric(total/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(cpu.Microseconds())/total, "cpu-µs/object")
}
