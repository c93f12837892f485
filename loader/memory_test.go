package loader_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/insitu-data/insitu/loader"
)

// TestGlobalShuffleMemory: in ShuffleGlobal, a listing of 1M names
// (24-byte keys) takes well under 128 MiB: the names only, end to end.
func TestGlobalShuffleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("lists 1M names")
	}
	const n, limit = 1_000_000, 64 << 20
	src := &genSource{n: n, size: 1}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, err := loader.New(src, &loader.Options{Seed: 1, Prefetch: 4})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if count++; count == 10 {
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("1M names held in %.1f MiB (%.1f bytes a name)", float64(grew)/(1<<20), float64(grew)/n)
	if grew > limit {
		t.Errorf("1M names take %d MiB; want under %d MiB", grew>>20, limit>>20)
	}
	if st := l.State(); st.Listing[:8] != "1000000-" {
		t.Errorf("listing %q", st.Listing)
	}
	runtime.KeepAlive(l)
}
