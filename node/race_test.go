package node_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// TestPutRacesDelete puts and deletes objects in the same deep directory
// from many goroutines at once, over HTTP: each DELETE removes the
// directories its object leaves empty, which the other goroutines' PUTs are
// making at the same time. Every PUT must succeed (never a NotFound for a
// directory removed between its mkdir and its create), and every object
// whose PUT succeeded must read back whole until its own DELETE.
func TestPutRacesDelete(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: s.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(m, &locality.ClientOptions{Secret: s.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	workers, rounds := 8, 500
	if testing.Short() {
		rounds = 100
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				name := insitu.Name{Bucket: "race", Key: fmt.Sprintf("a/b/c/d/e/f/g/h/w%d-%d.bin", w, i)}
				data := content(name.Key, 100+i)
				if _, err := client.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
					errs <- fmt.Errorf("round %d: Put(%s): %w", i, name, err)
					return
				}
				got, _, err := readAll(ctx, client, name)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("round %d: Get(%s) after its Put: %d bytes, %w", i, name, len(got), err)
					return
				}
				if err := client.Delete(ctx, name); err != nil {
					errs <- fmt.Errorf("round %d: Delete(%s): %w", i, name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Nothing is left: neither objects nor temporary files.
	if left := files(t, s.node.Dir()); len(left) != 0 {
		t.Errorf("files left in the store: %v", left)
	}
}
