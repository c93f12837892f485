// Package testutil holds small helpers shared by insitu's tests: finding
// external tools and the real test inputs in internal/testdata.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireTool returns the path of the executable name found on PATH. When
// it is absent the test is skipped with installHint (such as
// "apt-get install -y ffmpeg"), unless the CI environment variable is set:
// then the test fails, so a CI run never passes by skipping.
func RequireTool(t testing.TB, name, installHint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI but not found: %v (install it: %s)", name, err, installHint)
	}
	t.Skipf("%s not found on PATH; install it to run this test: %s", name, installHint)
	return ""
}

// Testdata returns the absolute path of the file name in the module's
// internal/testdata directory, found by walking up from the working
// directory to the directory holding go.mod. The test fails when the file
// does not exist.
func Testdata(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testutil: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "internal", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testutil: test input: %v", err)
	}
	return p
}
