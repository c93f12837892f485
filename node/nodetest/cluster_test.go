package nodetest_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
)

// TestSeedDir seeds the real test inputs and reads them back by their
// known MD5s and XXH64s.
func TestSeedDir(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	dir := filepath.Dir(testutil.Testdata(t, "README.md"))
	ctx := context.Background()
	n, err := c.SeedDir(ctx, "data", dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if n != len(entries) {
		t.Fatalf("seeded %d objects, want %d", n, len(entries))
	}
	md5s := map[string]string{
		"test-audio-flac.flac": "7239b48a91efd4e82d9d371bc71dc61a",
		"test-audio-mp3.mp3":   "34bb2fcd07501c396078d7902f783b56",
		"test-audio-wav.wav":   "4dca39911095aec555e37f5e3ee89f84",
		"test-image.jpg":       "33b8d66b1a703796ea16e370dcbcc68d",
		"test-text.txt":        "7c62ad0eef19d3cc595bd60727555502",
	}
	for key, want := range md5s {
		name := insitu.Name{Bucket: "data", Key: key}
		rc, obj, err := c.Client().Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		h := md5.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if got := hex.EncodeToString(h.Sum(nil)); err != nil || got != want {
			t.Errorf("%s: md5 %s, %v; want %s", key, got, err, want)
		}
		if owner := c.Map().Owner(name).ID; obj.Owner != owner {
			t.Errorf("%s on %s, want its owner %s", key, obj.Owner, owner)
		}
	}
	// The XXH64 of a re-put matches the known answers.
	for key, want := range map[string]string{"test-text.txt": "4d274921566a7ab3", "test-image.jpg": "4747d15e3ea12932"} {
		f, err := os.Open(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Put(ctx, insitu.Name{Bucket: "again", Key: key}, f, -1)
		f.Close()
		if err != nil || res.Checksum != want {
			t.Errorf("%s: checksum %q, %v; want %s", key, res.Checksum, err, want)
		}
	}
	if _, err := c.SeedDir(ctx, "data", filepath.Join(dir, "missing")); !errors.Is(err, insitu.NotFound) {
		t.Errorf("SeedDir of a missing directory: %v, want NotFound", err)
	}
	if _, err := c.SeedDir(ctx, "bad/bucket", dir); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("SeedDir into a bad bucket: %v, want InvalidArgument", err)
	}
}

func TestClusterAccessorsAndStop(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	secret := locality.Secret("s3cr3t")
	c := startCluster(t, 3, &nodetest.Options{Dir: parent, Secret: secret})
	if c.Dir() != parent || string(c.Secret()) != "s3cr3t" || c.Map().Len() != 3 || c.Map().Version() != 1 {
		t.Fatalf("cluster: dir %s, map %v", c.Dir(), c.Map())
	}
	for i, nd := range c.Nodes() {
		if want := []string{"n1", "n2", "n3"}[i]; nd.ID() != want || nd.Dir() != filepath.Join(parent, want) || c.Node(want) != nd {
			t.Errorf("node %d: %s in %s", i, nd.ID(), nd.Dir())
		}
		mn, ok := c.Map().Node(nd.ID())
		if !ok || !strings.HasPrefix(mn.URL, "http://127.0.0.1:") {
			t.Errorf("node %s: map entry %+v", nd.ID(), mn)
		}
	}
	if c.Node("n9") != nil {
		t.Error("Node(n9) is not nil")
	}
	ctx := context.Background()
	var name insitu.Name
	for i := 0; name.Key == "" || c.Map().Owner(name).ID != "n2"; i++ {
		name = insitu.Name{Bucket: "b", Key: fmt.Sprintf("probe/%d.bin", i)}
	}
	if _, err := c.Put(ctx, name, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	// A stopped node is Unavailable; its store stays.
	if _, err := c.Put(ctx, name, strings.NewReader("y"), 1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put to a stopped node: %v, want Unavailable", err)
	}
	if _, err := c.Client().Head(ctx, name); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Head on a stopped node: %v, want Unavailable", err)
	}
	if b, err := os.ReadFile(c.Node("n2").Path(name)); err != nil || string(b) != "x" {
		t.Errorf("the stopped node's object: %q, %v", b, err)
	}
	if err := c.StopNode(ctx, "n2"); !errors.Is(err, insitu.NotFound) {
		t.Errorf("second StopNode: %v, want NotFound", err)
	}
	// A map refresh still works with a node down.
	if _, err := c.Client().RefreshMap(ctx); err != nil {
		t.Errorf("RefreshMap with a node down: %v", err)
	}
	// A stopped node is shut down; a restart makes a new node over its
	// store, which serves the object again.
	old := c.Node("n2")
	if _, err := old.Stat(ctx, name); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Stat on the stopped node: %v, want Unavailable", err)
	}
	if err := c.RestartNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartNode(ctx, "n2"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("RestartNode of a running node: %v, want InvalidArgument", err)
	}
	if nd := c.Node("n2"); nd == old || nd.Dir() != old.Dir() {
		t.Errorf("after the restart: node %p in %s, was %p in %s", nd, nd.Dir(), old, old.Dir())
	}
	if rc, _, err := c.Client().Get(ctx, name); err != nil {
		t.Errorf("Get after the restart: %v", err)
	} else {
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "x" {
			t.Errorf("Get after the restart: %q", b)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(parent, "n2")); err != nil {
		t.Errorf("Close removed a directory it did not make: %v", err)
	}
}

func TestClusterCloseRemovesTempDir(t *testing.T) {
	t.Parallel()
	c, err := nodetest.Start(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Dir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's temporary directory is still there: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// startCluster starts n nodes that stop when the test ends.
func startCluster(t testing.TB, n int, opts *nodetest.Options) *nodetest.Cluster {
	t.Helper()
	c, err := nodetest.Start(context.Background(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// TestSlowClientsCutOff checks that an embedded cluster's nodes bound whole
// requests, not only their headers: a PUT whose body never comes is
// answered 504 deadline_exceeded once the node's progress timeout has
// passed, and a kept-alive connection stays usable after an honest request.
func TestSlowClientsCutOff(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{NodeOptions: func(_ string, o *node.Options) {
		o.ProgressTimeout = 200 * time.Millisecond
	}})
	addr := strings.TrimPrefix(c.Map().Nodes()[0].URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // a net, not a synchronization
	if _, err := io.WriteString(conn, "PUT /v1/objects/b/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+c.Secret().AdminToken(time.Now().Add(time.Hour))+"\r\nContent-Length: 100\r\n\r\n0123"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("Insitu-Error-Code") != "deadline_exceeded" {
		t.Errorf("a stalled upload: %s %s, want 504 deadline_exceeded", resp.Status, body)
	}
	if _, err := c.Node("n1").Stat(t.Context(), insitu.Name{Bucket: "b", Key: "k"}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat of the stalled upload: %v, want NotFound", err)
	}
}
