package batch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/batch"
)

func one(int) int64 { return 1 }

// groups runs Group over items, all sent before in is closed.
func groups(t *testing.T, items []int, size func(int) int64, lim batch.Limits) [][]int {
	t.Helper()
	in := make(chan int, len(items))
	for _, it := range items {
		in <- it
	}
	close(in)
	var got [][]int
	if err := batch.Group(context.Background(), in, size, lim, func(b []int) { got = append(got, b) }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCountAndBytes(t *testing.T) {
	items := []int{1, 2, 3, 4, 5, 6, 7}
	got := groups(t, items, one, batch.Limits{Count: 3, Wait: time.Hour})
	if want := [][]int{{1, 2, 3}, {4, 5, 6}, {7}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("count 3: %v, want %v", got, want)
	}
	// Sizes are the items' values: 1+2+3 ≤ 6, 4 alone (4+5 > 6), 5, 6, 7 alone
	// (an item above the bound still makes a batch of its own).
	got = groups(t, items, func(i int) int64 { return int64(i) }, batch.Limits{Count: 10, Bytes: 6, Wait: time.Hour})
	if want := [][]int{{1, 2, 3}, {4}, {5}, {6}, {7}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("bytes 6: %v, want %v", got, want)
	}
	got = groups(t, items, func(int) int64 { return -1 }, batch.Limits{Count: 4, Bytes: 1, Wait: time.Hour})
	if want := [][]int{{1, 2, 3, 4}, {5, 6, 7}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("unknown sizes: %v, want %v", got, want)
	}
	got = groups(t, items, one, batch.Limits{})
	if len(got) != 7 {
		t.Errorf("count 0: %v, want 7 batches of one", got)
	}
}

// TestTrickle: items that come one at a time, each only after the last
// batch was flushed, still go, one per batch, after the wait: a slow
// source is not held back until a batch fills.
func TestTrickle(t *testing.T) {
	in := make(chan int)
	flushed := make(chan []int)
	done := make(chan error, 1)
	go func() {
		done <- batch.Group(context.Background(), in, one, batch.Limits{Count: 100, Wait: time.Millisecond},
			func(b []int) { flushed <- b })
	}()
	for i := range 5 {
		in <- i
		if b := <-flushed; !slices.Equal(b, []int{i}) {
			t.Fatalf("batch %v, want [%d]", b, i)
		}
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestZeroWait takes what is waiting and no more.
func TestZeroWait(t *testing.T) {
	in := make(chan int, 3)
	in <- 1
	in <- 2
	var got [][]int
	ctx, cancel := context.WithCancel(context.Background())
	err := batch.Group(ctx, in, one, batch.Limits{Count: 10}, func(b []int) {
		got = append(got, b)
		if len(got) == 1 {
			in <- 3
			return
		}
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Group = %v, want context.Canceled", err)
	}
	if want := [][]int{{1, 2}, {3}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestCanceledFlushesTheGathering: every item received is flushed once,
// also when ctx ends while a batch is gathered.
func TestCanceledFlushesTheGathering(t *testing.T) {
	in := make(chan int)
	ctx, cancel := context.WithCancel(context.Background())
	var got [][]int
	go func() {
		in <- 1
		in <- 2
		cancel()
	}()
	err := batch.Group(ctx, in, one, batch.Limits{Count: 3, Wait: time.Hour}, func(b []int) { got = append(got, b) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Group = %v, want context.Canceled", err)
	}
	if want := [][]int{{1, 2}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func Example() {
	in := make(chan string, 5)
	for _, s := range []string{"a", "bb", "ccc", "dddd", "e"} {
		in <- s
	}
	close(in)
	size := func(s string) int64 { return int64(len(s)) }
	_ = batch.Group(context.Background(), in, size, batch.Limits{Count: 3, Bytes: 6, Wait: time.Millisecond},
		func(b []string) { fmt.Println(b) })
	// Output:
	// [a bb ccc]
	// [dddd e]
}

func TestOr(t *testing.T) {
	def := batch.Limits{Count: 16, Bytes: 1 << 20, Wait: time.Millisecond}
	if got := (batch.Limits{}).Or(def); got != def {
		t.Errorf("zero.Or = %+v, want the defaults", got)
	}
	l := batch.Limits{Count: 1, Bytes: 5, Wait: time.Hour}
	if got := l.Or(def); got != l {
		t.Errorf("set.Or = %+v, want %+v", got, l)
	}
}
