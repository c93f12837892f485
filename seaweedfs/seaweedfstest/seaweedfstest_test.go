package seaweedfstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

func put(t *testing.T, url string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s %s", url, resp.Status, b)
	}
}

// volumeOf returns the volume servers that hold the first chunk of the
// filer file at path: ?metadata=true gives its file id, /dir/lookup the
// servers of its volume.
func volumeOf(t *testing.T, c *seaweedfstest.Cluster, path string) (fid string, servers []string) {
	t.Helper()
	st, b := get(t, c.FilerURL+path+"?metadata=true")
	if st != http.StatusOK {
		t.Fatalf("metadata of %s: status %d", path, st)
	}
	var e struct {
		Chunks []struct {
			FileID string `json:"file_id"`
		} `json:"chunks"`
	}
	if err := json.Unmarshal(b, &e); err != nil || len(e.Chunks) == 0 {
		t.Fatalf("metadata of %s: %v, %s", path, err, b)
	}
	fid = e.Chunks[0].FileID
	vid, _, _ := strings.Cut(fid, ",")
	st, b = get(t, c.MasterURL+"/dir/lookup?volumeId="+vid)
	var l struct {
		Locations []struct{ URL string }
	}
	if st == http.StatusOK {
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
	}
	for _, loc := range l.Locations {
		servers = append(servers, loc.URL)
	}
	return fid, servers
}

func TestClusterPinStopRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	t0 := time.Now()
	c := seaweedfstest.Start(t, &seaweedfstest.Options{VolumeServers: 2})
	t.Logf("cluster of 2 volume servers started in %v", time.Since(t0))
	if len(c.VolumeServers) != 2 {
		t.Fatalf("VolumeServers = %q, want 2", c.VolumeServers)
	}
	// Every server is on loopback.
	for _, a := range append([]string{c.Master, c.Filer}, c.VolumeServers...) {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("address %q is not on 127.0.0.1", a)
		}
	}
	// A file pinned to each volume server lands there, and that server
	// serves its needle.
	for i, vs := range c.VolumeServers {
		path := fmt.Sprintf("/pin/o%d.bin", i)
		data := []byte(strings.Repeat(fmt.Sprint(i), 1000))
		put(t, c.FilerURL+path+"?dataNode="+vs, data)
		fid, servers := volumeOf(t, c, path)
		if len(servers) != 1 || servers[0] != vs {
			t.Errorf("%s pinned to %s is on %q", path, vs, servers)
		}
		if st, b := get(t, "http://"+vs+"/"+fid); st != http.StatusOK || !bytes.Equal(b, data) {
			t.Errorf("GET %s from %s: status %d, %d bytes", fid, vs, st, len(b))
		}
	}

	ctx := context.Background()
	t0 = time.Now()
	if err := c.StopVolume(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("volume server stopped in %v", time.Since(t0))
	if _, servers := volumeOf(t, c, "/pin/o1.bin"); len(servers) != 0 {
		t.Errorf("after StopVolume, the master still locates o1.bin on %q", servers)
	}
	if _, err := net.DialTimeout("tcp", c.VolumeServers[1], time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial the stopped volume server: %v, want connection refused", err)
	}
	if err := c.StopVolume(ctx, 1); err != nil {
		t.Errorf("second StopVolume: %v", err)
	}
	t0 = time.Now()
	if err := c.RestartVolume(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("volume server restarted in %v", time.Since(t0))
	if err := c.RestartVolume(ctx, 1); err == nil {
		t.Error("RestartVolume of a running server succeeded")
	}
	if _, servers := volumeOf(t, c, "/pin/o1.bin"); len(servers) != 1 || servers[0] != c.VolumeServers[1] {
		t.Errorf("after RestartVolume, o1.bin is on %q", servers)
	}
	if st, b := get(t, c.FilerURL+"/pin/o1.bin"); st != http.StatusOK || len(b) != 1000 {
		t.Errorf("GET o1.bin through the filer after the restart: status %d, %d bytes", st, len(b))
	}

	if err := c.KillVolume(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartVolume(ctx, 0); err != nil {
		t.Fatal(err)
	}

	t0 = time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster closed in %v", time.Since(t0))
	for _, a := range []string{c.Master, c.Filer, c.VolumeServers[0], c.VolumeServers[1]} {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestS3Gateway(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	t0 := time.Now()
	c := seaweedfstest.Start(t, &seaweedfstest.Options{VolumeServers: 1, S3: true})
	t.Logf("started in %v", time.Since(t0))
	// A file the filer stores under /buckets/<bucket>/ is an object of
	// that bucket through the gateway.
	put(t, c.FilerURL+"/buckets/shared-bkt/dir/obj.txt", []byte("through the filer"))
	client, err := minio.New(c.S3Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	obj, err := client.GetObject(ctx, "shared-bkt", "dir/obj.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || string(b) != "through the filer" {
		t.Fatalf("S3 GetObject: %q, %v", b, err)
	}
	if _, err := client.PutObject(ctx, "shared-bkt", "via/s3.bin", strings.NewReader("through S3"), 10, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, b := get(t, c.FilerURL+"/buckets/shared-bkt/via/s3.bin"); st != http.StatusOK || string(b) != "through S3" {
		t.Errorf("filer GET of an object put through S3: %d %q", st, b)
	}
	bad, err := minio.New(c.S3Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(c.AccessKey, "wrong-secret", ""), Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.StatObject(ctx, "shared-bkt", "via/s3.bin", minio.StatObjectOptions{}); err == nil {
		t.Error("S3 with a wrong secret key succeeded")
	}
}

func TestStartProcessBadBin(t *testing.T) {
	t.Parallel()
	_, err := seaweedfstest.StartProcess(context.Background(), &seaweedfstest.Options{Bin: "/nonexistent/weed"})
	if err == nil || !strings.Contains(err.Error(), "go build") {
		t.Errorf("StartProcess with a missing binary: %v; want an error with the install line", err)
	}
}

func TestLeavesNoLogFilesInTmp(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	before := weedLogs(t)
	c := seaweedfstest.Start(t, &seaweedfstest.Options{VolumeServers: 1})
	c.Close()
	if after := weedLogs(t); after > before {
		t.Errorf("weed wrote %d log files to %s", after-before, os.TempDir())
	}
}

func weedLogs(t *testing.T) int {
	ents, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "weed.") {
			n++
		}
	}
	return n
}
