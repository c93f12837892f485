package source_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/source/sourcetest"
)

// noStat hides the Stat method of a source.
type noStat struct{ insitu.Source }

func TestNamesConformance(t *testing.T) {
	make := func(hide bool) func(*testing.T, map[string][]byte) insitu.Source {
		return func(t *testing.T, objs map[string][]byte) insitu.Source {
			root := t.TempDir()
			writeTree(t, root, objs)
			var names []insitu.Name
			for _, k := range slices.Sorted(maps.Keys(objs)) {
				names = append(names, insitu.Name{Bucket: "nb", Key: k})
			}
			var src insitu.Source = newDir(t, root, nil)
			if hide {
				src = noStat{src}
			}
			return source.Names(src, names...)
		}
	}
	t.Run("stater", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Harness{Bucket: "nb", MakeSource: make(false)})
	})
	t.Run("no stater", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Harness{Bucket: "nb", MakeSource: make(true), SizesUnknown: true})
	})
}

func TestNamesStatsAndReportsMissingNames(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a", "b/c")
	names := []insitu.Name{{Key: "b/c"}, {Key: "missing"}, {Key: "../escape"}, {Bucket: "x", Key: "a"}}
	src := source.Names(newDir(t, root, nil), names...)
	names[0].Key = "changed" // Names keeps its own copy
	var got []string
	for obj, err := range src.Objects(context.Background()) {
		switch {
		case err == nil:
			got = append(got, obj.Name.String())
			if want := filepath.Join(root, filepath.FromSlash(obj.Name.Key)); obj.Size != int64(len(obj.Name.Key)) || obj.Path != want {
				t.Errorf("%s: Size %d Path %q, want %d %q", obj.Name, obj.Size, obj.Path, len(obj.Name.Key), want)
			}
		case errors.Is(err, insitu.NotFound) && strings.Contains(err.Error(), "missing"):
			got = append(got, "NotFound")
		case errors.Is(err, insitu.InvalidArgument):
			got = append(got, "InvalidArgument")
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if want := []string{"b/c", "NotFound", "InvalidArgument", "x/a"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNamesWithoutStater(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a")
	src := source.Names(noStat{newDir(t, root, nil)}, insitu.Name{Key: "a"}, insitu.Name{Key: "missing"})
	l := listAll(t, src)
	wantKeys(t, l, "a", "missing") // not stat-ed: found missing only on Open
	for _, o := range l.objs {
		if o.Size != -1 || o.Path != "" || o.Owner != "" {
			t.Errorf("%+v: want Size -1 and no Path", o)
		}
	}
	rc, err := src.Open(context.Background(), l.objs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "a" {
		t.Errorf("read %q, %v", b, err)
	}
	if _, err := src.Open(context.Background(), l.objs[1]); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Open(missing): %v, want NotFound", err)
	}
}

// flakyStater fails every Stat with Unavailable.
type flakyStater struct{ insitu.Source }

func (flakyStater) Stat(context.Context, insitu.Name) (insitu.Object, error) {
	return insitu.Object{}, insitu.Errorf(insitu.Unavailable, "node down")
}

func TestNamesStatErrorsCarryTheName(t *testing.T) {
	src := source.Names(flakyStater{newDir(t, t.TempDir(), nil)}, insitu.Name{Key: "k1"}, insitu.Name{Key: "k2"})
	l := listAll(t, src)
	if len(l.errs) != 2 {
		t.Fatalf("errors %v, want 2", l.errs)
	}
	for i, err := range l.errs {
		var e *insitu.Error
		if !errors.As(err, &e) || e.Code != insitu.Unavailable || e.Name.Key != []string{"k1", "k2"}[i] {
			t.Errorf("error %d: %v, want Unavailable naming k%d", i, err, i+1)
		}
	}
}

func TestNamesCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []error
	for _, err := range source.Names(newDir(t, t.TempDir(), nil), insitu.Name{Key: "a"}, insitu.Name{Key: "b"}).Objects(ctx) {
		got = append(got, err)
	}
	if len(got) != 1 || got[0] != context.Canceled {
		t.Errorf("yielded %v, want only context.Canceled", got)
	}
}
