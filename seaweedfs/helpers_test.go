package seaweedfs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
)

// shared returns the shared cluster, skipping under -short.
func shared(t *testing.T) *seaweedfstest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a SeaweedFS cluster")
	}
	return cluster.Get(t)
}

var roots atomic.Int64

// newRoot returns a filer directory no other test uses, so that each test
// sees only its own buckets.
func newRoot(t *testing.T) string {
	return fmt.Sprintf("/insitu-test/%d-%s", roots.Add(1), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
}

// newClient returns a client of c rooted at a directory of the test's own.
func newClient(t *testing.T, c *seaweedfstest.Cluster, opts *seaweedfs.Options) *seaweedfs.Client {
	t.Helper()
	o := seaweedfs.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Root == "" {
		o.Root = newRoot(t)
	}
	client, err := seaweedfs.NewClient(c.FilerURL, c.MasterURL, &o)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// escape percent-encodes each segment of a filer path.
func escape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// filerPut stores b at the filer path p with a raw PUT, pinned to server
// when it is not "".
func filerPut(t *testing.T, c *seaweedfstest.Cluster, p string, b []byte, server string) {
	t.Helper()
	u := c.FilerURL + escape(p)
	if server != "" {
		u += "?dataNode=" + server
	}
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", p, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s %s", p, resp.Status, body)
	}
}

// filerMkdir makes the directory p.
func filerMkdir(t *testing.T, c *seaweedfstest.Cluster, p string) {
	t.Helper()
	resp, err := http.Post(c.FilerURL+escape(p)+"/", "", nil)
	if err != nil {
		t.Fatalf("mkdir %s: %v", p, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("mkdir %s: %s %s", p, resp.Status, body)
	}
}

// filerEntry is what the tests read of ?metadata=true.
type filerEntry struct {
	FullPath string
	Mode     uint32
	FileSize int64
	Chunks   []struct {
		FileID       string `json:"file_id"`
		Size         int64  `json:"size"`
		IsCompressed bool   `json:"is_compressed"`
	} `json:"chunks"`
}

// filerMeta returns the entry at p, or nil when there is none.
func filerMeta(t *testing.T, c *seaweedfstest.Cluster, p string) *filerEntry {
	t.Helper()
	resp, err := http.Get(c.FilerURL + escape(p) + "?metadata=true")
	if err != nil {
		t.Fatalf("metadata of %s: %v", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var e filerEntry
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata of %s: %s, %v", p, resp.Status, err)
	}
	return &e
}

// filerRead returns the bytes of the file at p read through the filer, or
// a NotFound error when there is no such file (a directory is none).
func filerRead(t *testing.T, c *seaweedfstest.Cluster, p string) ([]byte, error) {
	t.Helper()
	e := filerMeta(t, c, p)
	if e == nil || e.Mode&(1<<31) != 0 {
		return nil, &insitu.Error{Code: insitu.NotFound, Msg: p}
	}
	resp, err := http.Get(c.FilerURL + escape(p))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// serversOf returns the volume servers that hold the chunks of the file at
// p, chunk by chunk, asked of the master with /dir/lookup: the check of
// where bytes are that does not go through the package.
func serversOf(t *testing.T, c *seaweedfstest.Cluster, p string) [][]string {
	t.Helper()
	e := filerMeta(t, c, p)
	if e == nil {
		t.Fatalf("no file %s", p)
	}
	var out [][]string
	for _, ch := range e.Chunks {
		vid, _, _ := strings.Cut(ch.FileID, ",")
		resp, err := http.Get(c.MasterURL + "/dir/lookup?volumeId=" + vid)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Locations []struct {
				URL string `json:"url"`
			} `json:"locations"`
		}
		json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		var s []string
		for _, loc := range l.Locations {
			s = append(s, loc.URL)
		}
		out = append(out, s)
	}
	return out
}

// readAll opens obj in src and reads it whole.
func readAll(t *testing.T, src insitu.Source, obj insitu.Object) ([]byte, error) {
	t.Helper()
	rc, err := src.Open(t.Context(), obj)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
