package node_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	_ "image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform"
	"github.com/insitu-data/insitu/transform/compress"
	"github.com/insitu-data/insitu/transform/exec"
	"github.com/insitu-data/insitu/transform/hash"
	timage "github.com/insitu-data/insitu/transform/image"
	"github.com/insitu-data/insitu/transport"
)

// catalogCase is a catalog transform with its inputs: the test data
// files it gets, the known answer for some, and the inputs that must
// fail, with their codes.
type catalogCase struct {
	name  string
	t     insitu.Transform
	args  string
	files map[string][]byte // key → content
	want  map[string]string // key → the output's known answer (bytes as text)
	fails map[string]insitu.Code
	// failMsg is in every failure's message, when set.
	failMsg string
	check   func(t *testing.T, key string, out []byte) // more checks of each output, or nil
}

func testFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func catalogCases(t *testing.T) []catalogCase {
	text, jpg, flac := testFile(t, "test-text.txt"), testFile(t, "test-image.jpg"), testFile(t, "test-audio-flac.flac")
	md5s := map[string]string{"test-text.txt": "7c62ad0eef19d3cc595bd60727555502", "test-image.jpg": "33b8d66b1a703796ea16e370dcbcc68d",
		"test-audio-flac.flac": "7239b48a91efd4e82d9d371bc71dc61a"}
	three := map[string][]byte{"test-text.txt": text, "test-image.jpg": jpg, "test-audio-flac.flac": flac}
	thumb, err := timage.Resize(&timage.Options{Width: 64, Height: 64, Format: timage.PNG})
	if err != nil {
		t.Fatal(err)
	}
	upper, err := exec.New([]string{"tr", "a-z", "A-Z"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipped(t, text)
	return []catalogCase{{
		name: "md5", t: hash.MD5(), files: three, want: md5s,
	}, {
		name: "xxh64", t: hash.XXH64(), args: "42", files: three,
		want: map[string]string{"test-text.txt": "e31ae61f6b8c93a9", "test-image.jpg": "822f702067e280e9"},
	}, {
		// Three stages, each a transform of the catalog: the MD5 of the
		// input, after a round trip through gzip.
		name: "chain", t: transform.Chain(compress.Gzip(nil), compress.Gunzip(nil), hash.MD5()), files: three, want: md5s,
	}, {
		// The middle stage fails once the first has written output: each
		// object fails, naming the stage, and nothing is stored.
		name: "chain-fails", t: transform.Chain(compress.Gzip(nil), compress.Unzstd(nil), hash.MD5()), files: three,
		fails: map[string]insitu.Code{"test-text.txt": insitu.InvalidArgument, "test-image.jpg": insitu.InvalidArgument,
			"test-audio-flac.flac": insitu.InvalidArgument},
		failMsg: "stage 2 of 3",
	}, {
		name: "gunzip", t: compress.Gunzip(nil),
		files: map[string][]byte{"good.gz": gz, "truncated.gz": gz[:len(gz)-9], "plain.txt": text},
		want:  map[string]string{"good.gz": string(text)},
		fails: map[string]insitu.Code{"truncated.gz": insitu.InvalidArgument, "plain.txt": insitu.InvalidArgument},
	}, {
		name: "thumbnail", t: thumb, files: map[string][]byte{"test-image.jpg": jpg, "test-text.txt": text},
		fails: map[string]insitu.Code{"test-text.txt": insitu.InvalidArgument},
		check: func(t *testing.T, key string, out []byte) {
			cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || format != "png" || max(cfg.Width, cfg.Height) != 64 {
				t.Errorf("%s: thumbnail %s %dx%d (%v), want a png of 64 on its longer side", key, format, cfg.Width, cfg.Height, err)
			}
		},
	}, {
		name: "exec", t: upper, files: map[string][]byte{"test-text.txt": text},
		want: map[string]string{"test-text.txt": string(bytes.ToUpper(text))},
	}}
}

// TestCatalogInEveryMode runs each transform of the catalog (and a chain
// of them) in-process, embedded in a 3-node cluster's job, and served
// by a transform server next to each node over ws (local file, direct
// put), hpush and hpull: every mode gives the same bytes, the known
// answers where there are some, and the same inputs fail with the same
// codes while the run goes on (ContinueOnError).
func TestCatalogInEveryMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster with transform servers per catalog transform; skipped with -short")
	}
	testutil.RequireTool(t, "tr", "coreutils")
	for _, tc := range catalogCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := t.TempDir()
			for k, b := range tc.files {
				if err := os.WriteFile(filepath.Join(in, k), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// In-process: the reference.
			ref := t.TempDir()
			src, err := source.Dir(in, nil)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := sink.Dir(ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := pipeline.Run(t.Context(), src, tc.t, dst, &pipeline.Options{Args: tc.args, ContinueOnError: true})
			if err != nil {
				t.Fatal(err)
			}
			checkCatalogReport(t, "in-process", tc, rep)
			for k := range tc.files {
				got, err := os.ReadFile(filepath.Join(ref, k))
				if _, bad := tc.fails[k]; bad {
					if err == nil {
						t.Errorf("in-process: %s failed but has an output", k)
					}
					continue
				}
				if err != nil {
					t.Fatalf("in-process: %s: %v", k, err)
				}
				if want, ok := tc.want[k]; ok && string(got) != want {
					t.Errorf("in-process: %s: output %.40q, want %.40q", k, got, want)
				}
				if tc.check != nil {
					tc.check(t, k, got)
				}
			}

			c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{tc.name: tc.t}, Sidecar: tc.t})
			if n, err := c.SeedDir(t.Context(), "in", in); err != nil || n != len(tc.files) {
				t.Fatalf("SeedDir = %d, %v", n, err)
			}
			for i, m := range []struct {
				mode   string
				server *cluster.ServerSpec
			}{
				{"embedded", nil},
				{"sidecar ws local-file direct-put", &cluster.ServerSpec{Mode: transport.WS, LocalFile: true, DirectPut: true}},
				{"sidecar hpush", &cluster.ServerSpec{Mode: transport.HPush}},
				{"sidecar hpull direct-put", &cluster.ServerSpec{Mode: transport.HPull, DirectPut: true}},
			} {
				out := fmt.Sprintf("out%d", i)
				spec := cluster.JobSpec{Bucket: "in", DstBucket: out, Args: tc.args, ContinueOnError: true, Server: m.server}
				if m.server == nil {
					spec.Transform = tc.name
				}
				rep, err := cluster.Run(t.Context(), c.Client(), spec, nil)
				if err != nil {
					t.Fatalf("%s: %v\n%s", m.mode, err, rep)
				}
				checkCatalogReport(t, m.mode, tc, rep.Report)
				for k := range tc.files {
					got, _, err := readAll(t.Context(), c.Client(), insitu.Name{Bucket: out, Key: k})
					if _, bad := tc.fails[k]; bad {
						if err == nil {
							t.Errorf("%s: %s failed but has an output", m.mode, k)
						}
						continue
					}
					want, _ := os.ReadFile(filepath.Join(ref, k))
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s: %s: %d bytes, in-process %d (%v)", m.mode, k, len(got), len(want), err)
					}
				}
			}
		})
	}
}

func checkCatalogReport(t *testing.T, mode string, tc catalogCase, rep pipeline.Report) {
	t.Helper()
	if rep.Listed != int64(len(tc.files)) || rep.Failed != int64(len(tc.fails)) || rep.Transformed != rep.Listed-rep.Failed {
		t.Errorf("%s: report %+v; want %d listed, %d failed", mode, rep, len(tc.files), len(tc.fails))
	}
	for _, f := range rep.Failures {
		if want, ok := tc.fails[f.Name.Key]; !ok || f.Code != want || !strings.Contains(f.Message, tc.failMsg) {
			t.Errorf("%s: failure %+v; want %v", mode, f, tc.fails)
		} else {
			t.Logf("%s: %s failed as it should: %s", mode, f.Name.Key, f.Message)
		}
	}
}
