package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/transport"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// swStore is the SeaweedFS cluster of the SeaweedFS rows: a master, a
// volume server per -nodes, a filer and the S3 gateway, each a weed
// process on 127.0.0.1, with the inputs in the bucket flac (the filer
// directory /buckets/flac, which the S3 gateway shows as that bucket),
// spread over the volume servers, and a transform server next to each
// volume server, in this process.
type swStore struct {
	c      *seaweedfstest.Cluster
	client *seaweedfs.Client
	s3     *minio.Client
	hc     *http.Client
	// owners are the volume server of each input, by its output's key.
	owners map[string]string
	// next are the transform servers, by the volume server they are next to.
	next    map[string]string
	servers []*transport.Server
	https   []*http.Server
}

// seaweedfsConfigs are the SeaweedFS rows: remote mode next to the volume
// servers over each transport (transport.Placed over a
// seaweedfs.Placement, direct put into a seaweedfs.Sink, which keeps each
// output on its input's volume server), and the client-side baseline
// through SeaweedFS's S3 gateway.
func (b *bench) seaweedfsConfigs() []*config {
	var cs []*config
	for _, mode := range serverModes {
		cs = append(cs, b.swRemoteConfig(mode))
	}
	return append(cs, b.swBaselineConfig())
}

// swRemoteConfig is remote mode on SeaweedFS: this process lists the
// bucket (each object with the volume server that holds it) and sends
// each object to the transform server next to that volume server, which
// fetches it from there over loopback (ws, hpull; with hpush this process
// reads it and sends it) and stores the output through the filer on the
// same volume server, with as many objects in flight as remote mode on
// the embedded cluster.
func (b *bench) swRemoteConfig(mode transport.Mode) *config {
	c := &config{
		name:      configName("seaweedfs-remote", mode.String(), false, true, 0),
		mode:      "seaweedfs-remote",
		transport: mode.String(),
		directPut: true,
		out:       swOutputs{b: b, local: true},
	}
	c.run = func(ctx context.Context, dst string) error {
		sw := b.sw
		topo, err := seaweedfs.NewTopology(sw.client, &seaweedfs.TopologyOptions{
			TransformURL: func(addr string) string { return sw.next[addr] },
		})
		if err != nil {
			return err
		}
		place, err := seaweedfs.NewPlacement(ctx, topo, nil)
		if err != nil {
			return err
		}
		t, err := transport.Placed(place, &transport.ClusterOptions{Mode: mode, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		defer t.Close()
		src, err := seaweedfs.NewSource(sw.client, srcBucket, nil)
		if err != nil {
			return err
		}
		out, err := seaweedfs.NewSink(sw.client, nil)
		if err != nil {
			return err
		}
		workers := b.o.nodeWorkers
		if workers == 0 {
			workers = runtime.GOMAXPROCS(0) // a node job's default
		}
		rep, err := pipeline.Run(ctx, src, t, out, &pipeline.Options{
			Workers:   workers * len(sw.c.VolumeServers),
			Rename:    func(n insitu.Name) (insitu.Name, error) { return renameTo(n, dst) },
			DirectPut: true,
		})
		return checkReport(rep, err, len(b.inputs))
	}
	return c
}

// swBaselineConfig is the client-side baseline through SeaweedFS's S3
// gateway: the same objects, listed, fetched, transcoded here and stored
// back through S3, as the baseline does with versitygw.
func (b *bench) swBaselineConfig() *config {
	c := &config{
		name: fmt.Sprintf("seaweedfs client-side: S3 gateway GET→ffmpeg→PUT, %d workers", b.o.baseWorkers),
		mode: "seaweedfs-client-side",
		out:  swOutputs{b: b},
	}
	c.run = func(ctx context.Context, dst string) error {
		rep, err := ClientSide(ctx, b.sw.s3, srcBucket, dst, "", b.transform, &Options{
			Options: pipeline.Options{Workers: b.o.baseWorkers, Rename: rename},
		})
		return checkReport(rep, err, len(b.inputs))
	}
	return c
}

// wantsSeaweedFS reports whether a SeaweedFS row is to be measured.
func (b *bench) wantsSeaweedFS() bool {
	if !b.o.seaweedfs {
		return false
	}
	return slices.ContainsFunc(b.seaweedfsConfigs(), func(c *config) bool { return b.o.only == nil || b.o.only.MatchString(c.name) })
}

// startSeaweedFS starts the cluster of the SeaweedFS rows, stores the
// inputs spread over its volume servers (the i-th input on volume server
// i mod n) and starts a transform server next to each.
func (b *bench) startSeaweedFS(ctx context.Context) error {
	if _, err := exec.LookPath("weed"); err != nil {
		return toolError{fmt.Errorf("the SeaweedFS rows need SeaweedFS's weed, which is not on PATH: install it with `%s`, or run with -seaweedfs=false", seaweedfstest.InstallHint)}
	}
	start := time.Now()
	c, err := seaweedfstest.StartProcess(ctx, &seaweedfstest.Options{
		VolumeServers: b.o.nodes, S3: true, Dir: filepath.Join(b.work, "seaweedfs"),
	})
	if err != nil {
		return fmt.Errorf("starting SeaweedFS: %w", err)
	}
	sw := &swStore{c: c, owners: map[string]string{}, next: map[string]string{}, hc: &http.Client{Timeout: time.Minute}}
	b.sw = sw
	if sw.client, err = seaweedfs.NewClient(c.FilerURL, c.MasterURL, nil); err != nil {
		return err
	}
	if sw.s3, err = minio.New(c.S3Endpoint, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1"}); err != nil {
		return err
	}
	sink, err := seaweedfs.NewSink(sw.client, nil)
	if err != nil {
		return err
	}
	index := make(map[string]int, len(b.inputs))
	for i, in := range b.inputs {
		index[in.key] = i
		out, err := rename(insitu.Name{Bucket: srcBucket, Key: in.key})
		if err != nil {
			return err
		}
		sw.owners[out.Key] = c.VolumeServers[i%len(c.VolumeServers)]
	}
	if err := b.seed(ctx, func(ctx context.Context, in input) error {
		f, err := os.Open(in.path)
		if err != nil {
			return err
		}
		defer f.Close()
		vs := c.VolumeServers[index[in.key]%len(c.VolumeServers)]
		_, err = sink.PutOn(ctx, vs, insitu.Name{Bucket: srcBucket, Key: in.key}, f, in.size)
		return err
	}); err != nil {
		return fmt.Errorf("filling SeaweedFS: %w", err)
	}
	for _, vs := range c.VolumeServers {
		srv, err := transport.NewServer(b.transform, nil)
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go hs.Serve(l)
		sw.servers, sw.https = append(sw.servers, srv), append(sw.https, hs)
		sw.next[vs] = "http://" + l.Addr().String()
	}
	fmt.Fprintf(b.log, "started SeaweedFS (a master, %d volume servers, a filer, the S3 gateway) in %s, stored the inputs over its volume servers, and a transform server next to each (%v)\n",
		len(c.VolumeServers), c.Dir, time.Since(start).Round(time.Millisecond))
	return nil
}

// close stops the transform servers and the cluster.
func (sw *swStore) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, hs := range sw.https {
		sw.servers[i].Shutdown(ctx)
		hs.Shutdown(ctx)
	}
	if sw.client != nil {
		sw.client.CloseIdleConnections()
	}
	sw.c.Close()
}

// swOutputs are the SeaweedFS rows': the bucket dst, read back through
// the filer's namespace straight from the volume servers. With local,
// every chunk of every output must be on the volume server of its input.
type swOutputs struct {
	b     *bench
	local bool
}

// prepare makes the bucket dst and has each volume server grow the
// volumes of its collection (the master grows a collection's volumes on a
// server at its first write there), outside the timing: a probe object
// stored on each, then deleted.
func (o swOutputs) prepare(ctx context.Context, dst string) error {
	sw := o.b.sw
	if !o.local {
		if err := sw.s3.MakeBucket(ctx, dst, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			return err
		}
	}
	sink, err := seaweedfs.NewSink(sw.client, nil)
	if err != nil {
		return err
	}
	for i, vs := range sw.c.VolumeServers {
		key := fmt.Sprintf(".etlbench-probe-%d", i)
		if _, err := sink.PutOn(ctx, vs, insitu.Name{Bucket: dst, Key: key}, strings.NewReader("probe"), 5); err != nil {
			return err
		}
		if err := sw.delete(ctx, dst+"/"+key, ""); err != nil {
			return err
		}
	}
	return nil
}

func (o swOutputs) check(ctx context.Context, dst string, spec wavSpec) (map[string]uint64, error) {
	sw := o.b.sw
	src, err := seaweedfs.NewSource(sw.client, dst, nil)
	if err != nil {
		return nil, err
	}
	sums := map[string]uint64{}
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			return nil, err
		}
		if o.local {
			chunks, err := sw.client.Chunks(ctx, obj.Name)
			if err != nil {
				return nil, err
			}
			want := sw.owners[obj.Name.Key]
			for _, ch := range chunks {
				if !slices.Equal(ch.Servers, []string{want}) {
					return nil, fmt.Errorf("%s: chunk %s is on %v, but its input is on %s", obj.Name, ch.FileID, ch.Servers, want)
				}
			}
		}
		rc, err := src.Open(ctx, obj)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Name, err)
		}
		sum, err := checkWAV(bytes.NewReader(b), int64(len(b)), spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Name, err)
		}
		sums[obj.Name.Key] = sum
	}
	return sums, nil
}

// remove deletes the bucket's directory through the filer, which drops
// the bucket's collection (its volumes) with it.
func (o swOutputs) remove(ctx context.Context, dst string) error {
	return o.b.sw.delete(ctx, dst, "recursive=true&ignoreRecursiveError=true")
}

// delete deletes the filer path Root/p, with the query q.
func (sw *swStore) delete(ctx context.Context, p, q string) error {
	u := sw.c.FilerURL + sw.client.Root() + "/" + p
	if q != "" {
		u += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	resp, err := sw.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK, http.StatusNotFound:
		return nil
	}
	return errors.New("deleting " + u + ": " + resp.Status)
}
