package insitu_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers is the import flow of docs/DESIGN.md ("Layout"), lowest first,
// as paths below the module. A package may import only packages of lower
// layers; a package missing here fails the test, so that a new package is
// placed in the drawing (and in DESIGN.md) when it is added.
var layers = [][]string{
	{""}, // package insitu: the contracts
	{"internal/atomicfile", "internal/batch", "internal/benchplot", "internal/procio", "internal/testutil", "internal/ticker"},
	{"internal/fserr", "internal/putcheck", "internal/wire"},
	{"locality"},
	{"pipeline", "s3", "seaweedfs", "sink", "source", "transform", "transform/compress", "transform/exec", "transform/hash", "transform/image", "transform/wav", "transport"},
	{"cluster", "loader", "s3/gateway", "transform/ffmpeg"},
	{"node", "seaweedfs/agent"},
	{"internal/netemu", "node/nodetest", "s3/s3test", "seaweedfs/seaweedfstest", "sink/sinktest", "source/sourcetest", "transform/ffmpeg/ffmpegtest", "transport/transporttest"},
	{"cmd/insitu-node", "examples/etlbench", "examples/flac2wav", "examples/loader", "examples/migrate", "examples/scaleout", "examples/smallfiles"},
}

const module = "github.com/insitu-data/insitu"

type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// listPackages runs go list over the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-json=ImportPath,Imports,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// TestImportFlow: no package imports one drawn at its layer or above it.
func TestImportFlow(t *testing.T) {
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layerOf[p] = i
		}
	}
	for _, p := range listPackages(t) {
		me, _ := rel(p.ImportPath)
		mine, ok := layerOf[me]
		if !ok {
			t.Errorf("package %q is not in the layer table: place it in layers_test.go and in docs/DESIGN.md's drawing", me)
			continue
		}
		for _, imp := range p.Imports {
			other, ours := rel(imp)
			if !ours {
				continue
			}
			if theirs, ok := layerOf[other]; ok && theirs >= mine {
				t.Errorf("%q (layer %d) imports %q (layer %d): imports flow only downwards", me, mine, other, theirs)
			}
		}
	}
}

// TestLeanPackages: a user of a local directory and the runner does not
// link minio-go, and the runner knows nothing of HTTP or the cluster.
func TestLeanPackages(t *testing.T) {
	for _, p := range listPackages(t) {
		me, _ := rel(p.ImportPath)
		switch me {
		case "", "pipeline", "sink", "source":
			for _, d := range p.Deps {
				if strings.Contains(d, "minio") {
					t.Errorf("%q depends on %s", me, d)
				}
			}
		}
		if me == "pipeline" {
			for _, banned := range []string{"net/http", module + "/locality"} {
				if slices.Contains(p.Imports, banned) {
					t.Errorf("pipeline imports %s", banned)
				}
			}
		}
	}
}
