package pipeline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// Two inputs renamed to one output name: the first keeps the name, the
// second fails with InvalidArgument naming both inputs and the output,
// instead of overwriting the first's output and counting as transformed.
func TestRunRenameCollision(t *testing.T) {
	t.Parallel()
	src := newMemSource(6, 10)
	dst := newMemSink()
	// obj-0001 and obj-0003 both become "odd"; obj-0005 too.
	rename := func(n insitu.Name) (insitu.Name, error) {
		switch n.Key {
		case "obj-0001", "obj-0003", "obj-0005":
			n.Key = "odd"
		}
		return n, nil
	}
	rep, err := pipeline.Run(t.Context(), src, insitu.Identity, dst,
		&pipeline.Options{Rename: rename, ContinueOnError: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Transformed != 4 || rep.Failed != 2 || dst.len() != 4 {
		t.Fatalf("report %+v, sink has %d objects; want 4 transformed, 2 failed", rep, dst.len())
	}
	got, _ := dst.get(insitu.Name{Bucket: "in", Key: "odd"})
	if want := src.objs["obj-0001"]; string(got) != string(want) {
		t.Errorf("the output odd is not obj-0001's: a later input overwrote it")
	}
	for _, f := range rep.Failures {
		if f.Code != insitu.InvalidArgument || !strings.Contains(f.Message, "in/obj-0001") || !strings.Contains(f.Message, "in/odd") {
			t.Errorf("failure %v: want InvalidArgument naming the first input and the output", f)
		}
		if f.Name.Key != "obj-0003" && f.Name.Key != "obj-0005" {
			t.Errorf("failure names %v, want obj-0003 or obj-0005", f.Name)
		}
	}

	// Without ContinueOnError the run stops with that error.
	_, err = pipeline.Run(t.Context(), src, insitu.Identity, newMemSink(), &pipeline.Options{Rename: rename, Workers: 1})
	var e *insitu.Error
	if !errors.Is(err, insitu.InvalidArgument) || !errors.As(err, &e) || e.Name.Key != "obj-0003" ||
		!strings.Contains(err.Error(), "in/obj-0001") || !strings.Contains(err.Error(), "in/odd") {
		t.Fatalf("err = %v, want InvalidArgument naming obj-0003, obj-0001 and odd", err)
	}
}
