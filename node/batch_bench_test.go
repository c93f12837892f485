package node_test

import (
	"context"
	"io"
	"net/http"
	"sync"
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
	var batch, single time.Duration
	buf := make([]byte, 4<<10)
	for b.Loop() {
		start := time.Now()
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

		start = time.Now()
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
	}
	total := float64(b.N * len(names))
	bps, sps := total/batch.Seconds(), total/single.Seconds()
	b.ReportMetric(bps, "batch-objects/s")
	b.ReportMetric(sps, "get-objects/s")
	b.ReportMetric(bps/sps, "ratio")
	b.ReportMetric(0, "ns/op")
}
