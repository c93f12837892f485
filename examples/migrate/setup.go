package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// env is what a run works on: its source and sink, and the servers it
// started for them.
type env struct {
	src              insitu.Source
	dst              insitu.Sink
	srcDesc, dstDesc string
	dstBucket        string // the bucket of the output names
	verifyNote       string // set by verify

	s3      *s3test.Server // started by migrate, or nil
	client  *minio.Client
	cluster *nodetest.Cluster // the embedded cluster, or nil
	tmpDirs []string
}

func (e *env) close() {
	if e.cluster != nil {
		e.cluster.Close()
	}
	if e.s3 != nil {
		e.s3.Close()
	}
	for _, d := range e.tmpDirs {
		os.RemoveAll(d)
	}
}

// setup connects to (or starts) what cfg names, fills the source with
// samples when asked to, and makes the source and the sink.
func setup(ctx context.Context, cfg *config, stdout io.Writer) (*env, error) {
	e := &env{}
	needS3 := cfg.from == "s3" || cfg.to == "s3"
	if needS3 {
		if cfg.endpoint == "" {
			srv, err := s3test.StartProcess(ctx, nil)
			if err != nil {
				return e, fmt.Errorf("no -endpoint given, and starting a local S3 server failed: %w\n"+
					"install versitygw (%s), or give -endpoint, -access, -secret and -bucket", err, s3test.InstallHint)
			}
			e.s3, e.client = srv, srv.Client
			cfg.seed = true
			fmt.Fprintf(stdout, "started versitygw at %s (access key %s, secret key %s; data in %s, removed at exit)\n",
				srv.URL, srv.AccessKey, srv.SecretKey, srv.Root)
		} else {
			c, err := minio.New(cfg.endpoint, &minio.Options{
				Creds: credentials.NewStaticV4(cfg.access, cfg.secret, ""), Secure: cfg.secure, Region: cfg.region,
			})
			if err != nil {
				return e, fmt.Errorf("-endpoint %q: %w", cfg.endpoint, err)
			}
			e.client = c
		}
	}
	if cfg.bucket == "" && (cfg.from == "s3" || cfg.clusterBucket == "") {
		cfg.bucket = "sample"
	}
	if cfg.clusterBucket == "" {
		cfg.clusterBucket = cfg.bucket
	}
	if cfg.dstBucket == "" {
		if cfg.from == "s3" {
			cfg.dstBucket = cfg.bucket + "-out"
		} else {
			cfg.dstBucket = cfg.clusterBucket + "-out"
		}
	}
	if cfg.from == "s3" && cfg.to == "s3" && cfg.bucket == cfg.dstBucket {
		return e, fmt.Errorf("-bucket and -dst-bucket are both %q: outputs would overwrite their inputs", cfg.bucket)
	}

	if cfg.from == "cluster" || cfg.to == "cluster" {
		c, err := nodetest.Start(ctx, cfg.nodes, &nodetest.Options{Dir: cfg.clusterDir})
		if err != nil {
			return e, fmt.Errorf("starting the embedded cluster: %w", err)
		}
		e.cluster = c
		ids := make([]string, 0, cfg.nodes)
		for _, n := range c.Map().Nodes() {
			ids = append(ids, n.ID+" "+n.URL)
		}
		fmt.Fprintf(stdout, "started a %d-node cluster (%s), stores in %s\n", cfg.nodes, strings.Join(ids, ", "), c.Dir())
	}

	// The source.
	switch cfg.from {
	case "s3":
		if cfg.seed {
			if err := makeBucket(ctx, e.client, cfg.bucket, cfg.region); err != nil {
				return e, err
			}
			seedSink, err := s3.NewSink(e.client, cfg.bucket, nil)
			if err != nil {
				return e, err
			}
			n, size, err := seed(ctx, seedSink, cfg.bucket)
			if err != nil {
				return e, fmt.Errorf("filling s3://%s with samples: %w", cfg.bucket, err)
			}
			fmt.Fprintf(stdout, "filled s3://%s with %d sample objects (%d bytes)\n", cfg.bucket, n, size)
		}
		src, err := s3.NewSource(e.client, cfg.bucket, &s3.SourceOptions{Prefix: cfg.prefix})
		if err != nil {
			return e, err
		}
		e.src = src
		e.srcDesc = "s3://" + cfg.bucket + "/" + cfg.prefix
	case "cluster":
		if cfg.seed || cfg.clusterDir == "" {
			n, size, err := seed(ctx, e.cluster, cfg.clusterBucket)
			if err != nil {
				return e, fmt.Errorf("filling the cluster's bucket %s with samples: %w", cfg.clusterBucket, err)
			}
			fmt.Fprintf(stdout, "filled cluster bucket %s with %d sample objects (%d bytes), each on its owner\n", cfg.clusterBucket, n, size)
		}
		src, err := source.Cluster(e.cluster.Client(), cfg.clusterBucket, &source.ClusterOptions{Prefix: cfg.prefix})
		if err != nil {
			return e, err
		}
		e.src = src
		e.srcDesc = "cluster://" + cfg.clusterBucket + "/" + cfg.prefix
	}

	// The sink.
	switch cfg.to {
	case "s3":
		if cfg.seed {
			if err := makeBucket(ctx, e.client, cfg.dstBucket, cfg.region); err != nil {
				return e, err
			}
		} else if ok, err := e.client.BucketExists(ctx, cfg.dstBucket); err != nil {
			return e, fmt.Errorf("checking the destination bucket: %w", s3.Wrap(ctx, err, insitu.Name{Bucket: cfg.dstBucket}, "S3 HeadBucket"))
		} else if !ok {
			return e, fmt.Errorf("the destination bucket %q does not exist: create it, or pass -seed", cfg.dstBucket)
		}
		dst, err := s3.NewSink(e.client, cfg.dstBucket, nil)
		if err != nil {
			return e, err
		}
		e.dst = dst
		e.dstBucket = cfg.dstBucket
		e.dstDesc = "s3://" + cfg.dstBucket
	case "cluster":
		dst, err := sink.Cluster(e.cluster.Client())
		if err != nil {
			return e, err
		}
		e.dst = dst
		e.dstBucket = cfg.clusterBucket
		e.dstDesc = "cluster://" + cfg.clusterBucket
	case "dir":
		if cfg.dstDir == "" {
			d, err := os.MkdirTemp("", "migrate-out-")
			if err != nil {
				return e, err
			}
			cfg.dstDir = d
		}
		dst, err := sink.Dir(cfg.dstDir, nil)
		if err != nil {
			return e, err
		}
		e.dst = dst
		e.dstBucket = ""
		e.dstDesc = cfg.dstDir
	}
	return e, nil
}

// makeBucket creates bucket unless it exists.
func makeBucket(ctx context.Context, c *minio.Client, bucket, region string) error {
	err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		return nil
	}
	return fmt.Errorf("creating bucket %q: %w", bucket, err)
}

// putter is an s3.Sink or an embedded cluster.
type putter interface {
	Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error)
}

// seed stores the sample objects in bucket: text files, logs, binary
// blobs, an empty file and one large object of unknown size, which an S3
// sink stores by multipart upload.
func seed(ctx context.Context, p putter, bucket string) (int, int64, error) {
	var n int
	var total int64
	put := func(key string, r io.Reader, size int64) error {
		res, err := p.Put(ctx, insitu.Name{Bucket: bucket, Key: key}, r, size)
		if err != nil {
			return err
		}
		n++
		total += res.Size
		return nil
	}
	words := []string{"data", "lives", "where", "it", "is", "stored", "and", "work", "goes", "to", "it"}
	for i := range 12 {
		var b strings.Builder
		for j := range 20 + i*10 {
			fmt.Fprintf(&b, "line %d of guide %d: %s %s\n", j, i, words[(i+j)%len(words)], words[(i*j)%len(words)])
		}
		if err := put(fmt.Sprintf("docs/guide-%02d.txt", i), strings.NewReader(b.String()), int64(b.Len())); err != nil {
			return n, total, err
		}
	}
	if err := put("docs/notes/readme.txt", strings.NewReader("read me first\n"), -1); err != nil {
		return n, total, err
	}
	for d := 1; d <= 10; d++ {
		var b strings.Builder
		for j := range 50 * d {
			fmt.Fprintf(&b, "2024-01-%02dT%02d:%02d:00Z info request %d served in %dms\n", d, j%24, j%60, j, (j*37)%250)
		}
		if err := put(fmt.Sprintf("logs/2024-01-%02d.log", d), strings.NewReader(b.String()), int64(b.Len())); err != nil {
			return n, total, err
		}
	}
	for i := range 6 {
		size := int64(10_000 + i*60_000)
		if err := put(fmt.Sprintf("data/blob-%02d.bin", i), &randReader{r: rand.NewPCG(uint64(i), 1), n: size}, size); err != nil {
			return n, total, err
		}
	}
	if err := put("data/large.bin", &randReader{r: rand.NewPCG(99, 1), n: 20 << 20}, -1); err != nil {
		return n, total, err
	}
	if err := put("empty.txt", strings.NewReader(""), 0); err != nil {
		return n, total, err
	}
	return n, total, nil
}

// randReader gives n pseudo-random bytes, generated as they are read.
type randReader struct {
	r *rand.PCG
	n int64
}

func (g *randReader) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n)]
	for i := 0; i < len(p); i += 8 {
		v := g.r.Uint64()
		for j := i; j < min(i+8, len(p)); j++ {
			p[j] = byte(v)
			v >>= 8
		}
	}
	g.n -= int64(len(p))
	return len(p), nil
}

// verify checks that every object the source lists, and that did not fail
// in the run, has its output in the sink; for a cluster, that the output
// is stored on the node that owns its name and on no other. It returns the
// number of outputs checked and what is wrong.
func (e *env) verify(ctx context.Context, rep pipeline.Report, rename func(insitu.Name) (insitu.Name, error)) (int, []string) {
	failed := map[insitu.Name]bool{}
	for _, f := range rep.Failures {
		failed[f.Name] = true
	}
	perNode := map[string]int{}
	checked := 0
	var problems []string
	for obj, err := range e.src.Objects(ctx) {
		if err != nil {
			continue // a listing error is among the run's failures
		}
		if failed[obj.Name] {
			continue
		}
		out, err := rename(obj.Name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", obj.Name, err))
			continue
		}
		stored, err := e.dst.Stat(ctx, out)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: output %s: %v", obj.Name, out, err))
			continue
		}
		if e.cluster != nil && e.dstBucket != "" && isCluster(e.dst) {
			owner := e.cluster.Map().Owner(out).ID
			if stored.Owner != owner {
				problems = append(problems, fmt.Sprintf("%s: output %s is on %s, its owner is %s", obj.Name, out, stored.Owner, owner))
			}
			for _, nd := range e.cluster.Nodes() {
				_, err := nd.Stat(ctx, out)
				switch {
				case nd.ID() == owner && err != nil:
					problems = append(problems, fmt.Sprintf("output %s: not in the store of its owner %s: %v", out, owner, err))
				case nd.ID() != owner && !errors.Is(err, insitu.NotFound) && !errors.Is(err, insitu.NotOwner):
					problems = append(problems, fmt.Sprintf("output %s: node %s, not its owner, answers %v", out, nd.ID(), err))
				}
			}
			perNode[owner]++
		}
		checked++
	}
	if len(perNode) > 0 {
		ids := make([]string, 0, len(perNode))
		for id := range perNode {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s %d", id, perNode[id])
		}
		e.verifyNote = ", each on its owner node (" + strings.Join(parts, ", ") + ")"
	}
	return checked, problems
}

func isCluster(s insitu.Sink) bool {
	_, ok := s.(*sink.ClusterSink)
	return ok
}
