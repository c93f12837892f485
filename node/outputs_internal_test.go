package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

// TestOutputTableBounded: the table of claimed outputs holds at most its
// limit of names, forgets the jobs least recently put to first, and stops
// recording (without refusing) the outputs of a job that alone fills it.
func TestOutputTableBounded(t *testing.T) {
	t.Parallel()
	out := func(i int) insitu.Name { return insitu.Name{Bucket: "out", Key: fmt.Sprintf("%d.wav", i)} }
	in := func(job string, i int) claim {
		return claim{job: job, input: insitu.Name{Bucket: "in", Key: fmt.Sprintf("%s-%d", job, i)}}
	}
	tab := outputTable{limit: 10}
	for i := range 4 {
		if other, full := tab.claim(in("a", i), out(i)); other != "" || full {
			t.Fatalf("a %d: %q, %v", i, other, full)
		}
		if other, full := tab.claim(in("b", i), out(i)); other != "" || full {
			t.Fatalf("b %d: %q, %v", i, other, full)
		}
	}
	// A second input of a: refused, naming the first.
	if other, _ := tab.claim(in("a", 9), out(0)); other != "in/a-0" {
		t.Fatalf("a clash: %q, want in/a-0", other)
	}
	// c needs room: a was put to last (its refused claim too), so b goes.
	for i := range 5 {
		if other, full := tab.claim(in("c", i), out(i)); other != "" || full {
			t.Fatalf("c %d: %q, %v", i, other, full)
		}
	}
	if tab.jobs["b"] != nil || tab.jobs["a"] == nil || tab.total != 9 {
		t.Fatalf("after c: jobs %v, total %d; want b forgotten", tab.jobs, tab.total)
	}
	// c alone past the limit: a goes, then c's later outputs go unrecorded.
	var fulls int
	for i := 5; i < 20; i++ {
		if other, full := tab.claim(in("c", i), out(i)); other != "" {
			t.Fatalf("c %d: %q", i, other)
		} else if full {
			fulls++
		}
	}
	if fulls != 1 || tab.jobs["a"] != nil || tab.total != 10 || len(tab.jobs["c"].inputs) != 10 {
		t.Fatalf("c past the limit: %d full reports, total %d, jobs %v", fulls, tab.total, tab.jobs)
	}
	if other, _ := tab.claim(in("c", 99), out(3)); other != "in/c-3" {
		t.Errorf("a recorded output of c: %q, want in/c-3", other)
	}
	if other, _ := tab.claim(in("c", 99), out(15)); other != "" {
		t.Errorf("an output of c past the limit: %q, want unchecked", other)
	}
	tab.forget("c")
	if tab.total != 0 || len(tab.jobs) != 0 {
		t.Errorf("after forget: total %d, jobs %v", tab.total, tab.jobs)
	}
	// At most maxOutputJobs jobs.
	big := outputTable{limit: 1 << 20}
	for j := range maxOutputJobs + 5 {
		big.claim(in(fmt.Sprint("j", j), 0), out(0))
	}
	if len(big.jobs) != maxOutputJobs || big.jobs["j0"] != nil {
		t.Errorf("%d jobs remembered, want %d without the oldest", len(big.jobs), maxOutputJobs)
	}
}

// TestOutputTableNames: the inputs' names, packed in chunks, come back
// exact across many chunks, with the longest keys.
func TestOutputTableNames(t *testing.T) {
	t.Parallel()
	tab := outputTable{limit: 1 << 20}
	long := strings.Repeat("k", insitu.MaxKeyLen-8)
	input := func(i int) insitu.Name {
		if i%7 == 0 {
			return insitu.Name{Bucket: "in", Key: fmt.Sprintf("%s%08d", long, i)}
		}
		return insitu.Name{Bucket: "in", Key: fmt.Sprintf("d/%d.flac", i)}
	}
	out := func(i int) insitu.Name { return insitu.Name{Bucket: "out", Key: fmt.Sprintf("%d.wav", i)} }
	const n = 2000 // about 300 KiB of names: several chunks
	for i := range n {
		if other, full := tab.claim(claim{job: "j", input: input(i)}, out(i)); other != "" || full {
			t.Fatalf("%d: %q, %v", i, other, full)
		}
	}
	if chunks := len(tab.jobs["j"].names); chunks < 4 {
		t.Fatalf("%d chunks of names, want several", chunks)
	}
	for i := range n {
		if other, _ := tab.claim(claim{job: "j", input: input(i)}, out(i)); other != "" {
			t.Fatalf("the same input again, %d: %q", i, other)
		}
		if other, _ := tab.claim(claim{job: "j", input: insitu.Name{Bucket: "in", Key: "other"}}, out(i)); other != input(i).String() {
			t.Fatalf("another input for %d: %q, want %q", i, other, input(i))
		}
	}
}
