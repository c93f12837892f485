package node_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/transform/hash"
	"github.com/insitu-data/insitu/transport"
)

// reverse reverses its input: the transform the sidecars serve.
var reverse = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	_, err = out.Write(b)
	return err
})

func reversed(b []byte) []byte {
	r := bytes.Clone(b)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return r
}

func registryCluster(t *testing.T) *nodetest.Cluster {
	t.Helper()
	return startCluster(t, 3, &nodetest.Options{
		Transforms: map[string]insitu.Transform{"upper": streamUpper(nil), "md5": hash.MD5()},
		Sidecar:    reverse,
	})
}

func TestRegisterTransform(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	// Every node registers the transform server next to it, reading local files.
	if err := cluster.RegisterTransform(t.Context(), client, "rev", locality.TransformSpec{Mode: "hpush", LocalFile: true}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.RegisterTransform(t.Context(), client, "rev-ws", locality.TransformSpec{}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.RegisterTransform(t.Context(), client, "rev-pull", locality.TransformSpec{Mode: "hpull"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Map().Nodes() {
		infos, err := client.Transforms(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, i := range infos {
			got = append(got, fmt.Sprintf("%s/%s/%s/%v/%s", i.Name, i.Kind, i.Mode, i.LocalFile, i.Health))
		}
		want := "md5/builtin//false/ok rev/server/hpush/true/ok rev-pull/server/hpull/false/ok rev-ws/server/ws/false/ok upper/builtin//false/ok"
		if strings.Join(got, " ") != want {
			t.Errorf("node %s lists %v, want %s", n.ID, got, want)
		}
	}
	// Objects, then reads through the registered server and chains that
	// mix it with builtins, in both orders.
	objs := map[string][]byte{}
	for i := range 9 {
		k := fmt.Sprintf("r/%d.txt", i)
		objs[k] = asciiContent(k, 100+20_000*i)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: k}, bytes.NewReader(objs[k]), -1); err != nil {
			t.Fatal(err)
		}
	}
	for k, b := range objs {
		name := insitu.Name{Bucket: "in", Key: k}
		for _, tc := range []struct {
			chain []string
			want  []byte
		}{
			{[]string{"rev"}, reversed(b)},
			{[]string{"rev-ws"}, reversed(b)},
			{[]string{"upper", "rev"}, reversed(bytes.ToUpper(b))},
			{[]string{"rev", "upper"}, bytes.ToUpper(reversed(b))},
			{[]string{"rev-pull", "upper"}, bytes.ToUpper(reversed(b))},
		} {
			got, err := readTransformed(t, client, name, tc.chain, "")
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("%s through %v: %d bytes, %v", k, tc.chain, len(got), err)
			}
		}
	}
	// A job names the registered server as it names a builtin.
	rep, err := cluster.Run(t.Context(), client, cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "rev"}, nil)
	if err != nil || rep.Transformed != 9 {
		t.Fatalf("job through rev: %v\n%s", err, rep)
	}
	for k, b := range objs {
		got, _, err := readAll(t.Context(), client, insitu.Name{Bucket: "out", Key: k})
		if err != nil || !bytes.Equal(got, reversed(b)) {
			t.Errorf("job output %s: %d bytes, %v", k, len(got), err)
		}
	}
	// Chains by name in jobs: a builtin first (it gets the local file),
	// or the server first (it gets the store path).
	for i, tc := range []struct {
		chain string
		want  func([]byte) []byte
	}{
		{"upper,rev", func(b []byte) []byte { return reversed(bytes.ToUpper(b)) }},
		{"rev,md5", func(b []byte) []byte { s := md5.Sum(reversed(b)); return []byte(hex.EncodeToString(s[:])) }},
	} {
		out := fmt.Sprintf("chain%d", i)
		rep, err := cluster.Run(t.Context(), client, cluster.JobSpec{Bucket: "in", DstBucket: out, Transform: tc.chain}, nil)
		if err != nil || rep.Transformed != 9 {
			t.Fatalf("job through %s: %v\n%s", tc.chain, err, rep)
		}
		for k, b := range objs {
			got, _, err := readAll(t.Context(), client, insitu.Name{Bucket: out, Key: k})
			if err != nil || !bytes.Equal(got, tc.want(b)) {
				t.Errorf("job %s output %s: %d bytes, %v", tc.chain, k, len(got), err)
			}
		}
	}
	// An hpull server fetches the stored object: after a first stage it
	// would transform the input, not the stage's output.
	if _, err := readTransformed(t, client, insitu.Name{Bucket: "in", Key: "r/1.txt"}, []string{"upper", "rev-pull"}, ""); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("read through upper,rev-pull: %v, want invalid_argument", err)
	}
	for _, bad := range []string{"upper,nope", "upper,upper", "upper,,rev", "upper,rev-pull"} {
		if _, err := cluster.Run(t.Context(), client, cluster.JobSpec{Bucket: "in", DstBucket: "x", Transform: bad}, nil); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("job through %q: %v, want invalid_argument", bad, err)
		}
	}
	// Removed: neither jobs nor reads know it any more.
	if err := cluster.RemoveTransform(t.Context(), client, "rev"); err != nil {
		t.Fatal(err)
	}
	if _, err := readTransformed(t, client, insitu.Name{Bucket: "in", Key: "r/1.txt"}, []string{"rev"}, ""); !errors.Is(err, insitu.NotFound) {
		t.Errorf("read through a removed transform: %v, want not_found", err)
	}
	if _, err := cluster.Run(t.Context(), client, cluster.JobSpec{Bucket: "in", DstBucket: "out2", Transform: "rev"}, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("job through a removed transform: %v, want invalid_argument", err)
	}
	if err := cluster.RemoveTransform(t.Context(), client, "rev"); err != nil {
		t.Errorf("removing again: %v, want nil", err)
	}
}

func TestRegisterTransformRefused(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	n1 := c.Map().Nodes()[0]
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		spec locality.TransformSpec
		code insitu.Code
	}{
		{"bad name!", locality.TransformSpec{}, insitu.InvalidArgument},
		{"-x", locality.TransformSpec{}, insitu.InvalidArgument},
		{strings.Repeat("a", 65), locality.TransformSpec{}, insitu.InvalidArgument},
		{"upper", locality.TransformSpec{}, insitu.InvalidArgument},
		{"x", locality.TransformSpec{Mode: "carrier-pigeon"}, insitu.InvalidArgument},
		{"x", locality.TransformSpec{URL: "http://10.1.2.3:9000"}, insitu.InvalidArgument},
		{"x", locality.TransformSpec{URL: "ftp://127.0.0.1/"}, insitu.InvalidArgument},
		{"x", locality.TransformSpec{URL: "http://user:pw@127.0.0.1:1/"}, insitu.InvalidArgument},
		{"x", locality.TransformSpec{URL: dead}, insitu.Unavailable},
	} {
		if _, err := client.RegisterTransform(t.Context(), n1, tc.name, tc.spec); insitu.CodeOf(err) != tc.code {
			t.Errorf("register %q %+v: %v, want %v", tc.name, tc.spec, err, tc.code)
		}
	}
	if err := client.RemoveTransform(t.Context(), n1, "upper"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("removing a builtin: %v", err)
	}
	if err := client.RemoveTransform(t.Context(), n1, "nope"); !errors.Is(err, insitu.NotFound) {
		t.Errorf("removing an unknown transform: %v", err)
	}
	if _, err := client.Transform(t.Context(), n1, "nope"); !errors.Is(err, insitu.NotFound) {
		t.Errorf("inspecting an unknown transform: %v", err)
	}
	infos, err := client.Transforms(t.Context(), n1)
	if err != nil || len(infos) != 2 {
		t.Errorf("after refusals: %+v, %v; want the 2 builtins only", infos, err)
	}
}

// TestRegisteredServerDown: a registered server that goes down is
// reported unhealthy, reads through it fail with unavailable, and the
// node stays healthy; back up, it serves again.
func TestRegisteredServerDown(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	if err := cluster.RegisterTransform(t.Context(), client, "rev", locality.TransformSpec{Mode: "hpush"}); err != nil {
		t.Fatal(err)
	}
	name := insitu.Name{Bucket: "in", Key: "x.txt"}
	if _, err := c.Put(t.Context(), name, strings.NewReader("abc"), -1); err != nil {
		t.Fatal(err)
	}
	owner := c.Map().Owner(name)
	if err := c.StopSidecar(t.Context(), owner.ID); err != nil {
		t.Fatal(err)
	}
	info, err := client.Transform(t.Context(), owner, "rev")
	if err != nil || info.Health == "ok" {
		t.Errorf("a stopped server: %+v, %v; want unhealthy", info, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := readTransformed(t, client, name, []string{"rev"}, ""); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("read through a stopped server: %v, want unavailable", err)
	}
	if got, err := readTransformed(t, client, name, []string{"upper"}, ""); err != nil || string(got) != "ABC" {
		t.Errorf("the node after: %q, %v", got, err)
	}
	if err := c.RestartSidecar(ctx, owner.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := readTransformed(t, client, name, []string{"rev"}, ""); err != nil || string(got) != "cba" {
		t.Errorf("after the server is back: %q, %v", got, err)
	}
}

// TestRestartedNodeAdoptsTransforms: a node that restarts (its registry
// lives in memory) gets the cluster's transform servers from its peers.
func TestRestartedNodeAdoptsTransforms(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	if err := cluster.RegisterTransform(t.Context(), client, "rev", locality.TransformSpec{Mode: "hpush"}); err != nil {
		t.Fatal(err)
	}
	// A server registered by URL is that node's: n1's is not adopted.
	n1 := c.Map().Nodes()[0]
	if _, err := client.RegisterTransform(t.Context(), n1, "n1-only", locality.TransformSpec{URL: n1.TransformURL, Mode: "hpush"}); err != nil {
		t.Fatal(err)
	}
	n2 := c.Map().Nodes()[1]
	if err := c.StopNode(t.Context(), n2.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartNode(t.Context(), n2.ID); err != nil {
		t.Fatal(err)
	}
	// The adoption runs in the background: ask until it is done.
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := client.Transform(t.Context(), n2, "rev")
		if err == nil && info.Health == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not adopt rev: %+v, %v", n2.ID, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := client.Transform(t.Context(), n2, "n1-only"); !errors.Is(err, insitu.NotFound) {
		t.Errorf("node %s adopted n1's server registered by URL: %v", n2.ID, err)
	}
}

// TestRegisterOwnServer: a transform server that is not the cluster's
// sidecar (any server that speaks the protocol; here insitu's own, as a
// user would run it) is registered by its URL on the node it serves, with
// that node's transform secret, and reads on that node go through it.
func TestRegisterOwnServer(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	n1 := c.Map().Nodes()[0]
	srv, err := transport.NewServer(reverse, &transport.ServerOptions{Secret: c.Secret().TransformSecret(n1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	if _, err := client.RegisterTransform(t.Context(), n1, "mine", locality.TransformSpec{URL: hs.URL, Mode: "hpush"}); err != nil {
		t.Fatal(err)
	}
	// A key n1 owns.
	var name insitu.Name
	for i := 0; ; i++ {
		name = insitu.Name{Bucket: "in", Key: fmt.Sprintf("own-%d", i)}
		if c.Map().Owner(name).ID == n1.ID {
			break
		}
	}
	if _, err := c.Put(t.Context(), name, strings.NewReader("stressed"), -1); err != nil {
		t.Fatal(err)
	}
	if got, err := readTransformed(t, client, name, []string{"mine", "upper"}, ""); err != nil || string(got) != "DESSERTS" {
		t.Fatalf("through my server: %q, %v", got, err)
	}
	// The other nodes do not know it.
	if _, err := client.Transform(t.Context(), c.Map().Nodes()[1], "mine"); !errors.Is(err, insitu.NotFound) {
		t.Errorf("another node: %v, want not_found", err)
	}
}

// TestRegisteredServerAnswersGarbage: a server that passes its health
// check but answers transform requests with garbage fails the read with
// a code, and the node stays healthy.
func TestRegisteredServerAnswersGarbage(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	n1 := c.Map().Nodes()[0]
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "\x00\x01 this is not what the protocol says")
	}))
	defer garbage.Close()
	var name insitu.Name
	for i := 0; ; i++ {
		name = insitu.Name{Bucket: "in", Key: fmt.Sprintf("g-%d", i)}
		if c.Map().Owner(name).ID == n1.ID {
			break
		}
	}
	if _, err := c.Put(t.Context(), name, strings.NewReader("abc"), -1); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"hpush", "hpull", "ws"} {
		if _, err := client.RegisterTransform(t.Context(), n1, "junk-"+mode, locality.TransformSpec{URL: garbage.URL, Mode: mode}); err != nil {
			// ws dials at registration's first use; hpush and hpull register.
			t.Fatalf("%s: %v", mode, err)
		}
		got, err := readTransformed(t, client, name, []string{"junk-" + mode}, "")
		if err == nil || insitu.CodeOf(err) == insitu.Unknown {
			t.Errorf("%s: read %q, %v; want an error with a code", mode, got, err)
		} else {
			t.Logf("%s: %v", mode, err)
		}
	}
	if got, err := readTransformed(t, client, name, []string{"upper"}, ""); err != nil || string(got) != "ABC" {
		t.Errorf("the node after: %q, %v", got, err)
	}
}

// TestHealthCheckFollowsNoRedirect: a server whose health check redirects
// (here to a healthy server) is not registered: a redirect could lead the
// node's request past its URL policy.
func TestHealthCheckFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer healthy.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, healthy.URL+"/health", http.StatusFound)
	}))
	defer redirect.Close()
	n1 := c.Map().Nodes()[0]
	if _, err := c.Client().RegisterTransform(t.Context(), n1, "detour", locality.TransformSpec{URL: redirect.URL, Mode: "hpush"}); !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("a redirecting health check: %v, want unavailable", err)
	}
}

// TestAdoptionDespiteAHangingServer: a peer with a registered server
// whose health check hangs still hands its set to a restarted node at
// once (the adoption lists without health checks).
func TestAdoptionDespiteAHangingServer(t *testing.T) {
	t.Parallel()
	c := registryCluster(t)
	client := c.Client()
	var hang atomic.Bool
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer slow.Close()
	defer close(stop)
	if err := cluster.RegisterTransform(t.Context(), client, "rev", locality.TransformSpec{Mode: "hpush"}); err != nil {
		t.Fatal(err)
	}
	nodes := c.Map().Nodes()
	for _, n := range []locality.Node{nodes[0], nodes[2]} {
		if _, err := client.RegisterTransform(t.Context(), n, "slow", locality.TransformSpec{URL: slow.URL, Mode: "hpush"}); err != nil {
			t.Fatal(err)
		}
	}
	hang.Store(true)
	n2 := nodes[1]
	if err := c.StopNode(t.Context(), n2.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartNode(t.Context(), n2.ID); err != nil {
		t.Fatal(err)
	}
	// Well within the 2 s a peer's health-checked listing would take.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		if _, err := client.Transform(t.Context(), n2, "rev"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not adopt rev within 1.5 s with a hanging server on its peers", n2.ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
