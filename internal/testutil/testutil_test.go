package testutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/insitu-data/insitu/internal/testutil"
)

func TestTestdata(t *testing.T) {
	p := testutil.Testdata(t, "test-text.txt")
	if !filepath.IsAbs(p) {
		t.Fatalf("Testdata returned a relative path %q", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 3541 {
		t.Fatalf("test-text.txt is %d bytes, want 3541", fi.Size())
	}
}

func TestRequireToolFound(t *testing.T) {
	// "go" runs this test, so it is on PATH.
	if p := testutil.RequireTool(t, "go", "install Go"); p == "" {
		t.Fatal("RequireTool returned an empty path for go")
	}
}

func TestRequireToolMissing(t *testing.T) {
	const missing = "insitu-no-such-tool-7f3a"
	ft := &fakeTB{TB: t}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		*ft = fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			testutil.RequireTool(ft, missing, "apt-get install -y it")
		}()
		if ci == "" && (!ft.skipped || ft.failed) {
			t.Errorf("CI unset: skipped=%v failed=%v, want a skip", ft.skipped, ft.failed)
		}
		if ci != "" && (!ft.failed || ft.skipped) {
			t.Errorf("CI set: skipped=%v failed=%v, want a failure", ft.skipped, ft.failed)
		}
	}
}

// fakeTB records Skipf and Fatalf instead of ending the test; it panics to
// stop the helper the way runtime.Goexit would.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic("skip")
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
