package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/transport"
)

// TestAuthRequired checks that every endpoint but health refuses requests
// without the secret's token, or with a wrong one, with 401 and writes
// nothing; and that no log line holds the secret or the token.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	secret := locality.Secret("correct horse battery staple")
	c := startCluster(t, 1, &nodetest.Options{Secret: secret, Logger: debugLogger(logs)})
	base, _ := c.Map().Node("n1")
	ctx := context.Background()
	existing := insitu.Name{Bucket: "b", Key: "existing"}
	if _, err := c.Put(ctx, existing, strings.NewReader("keep me"), 7); err != nil {
		t.Fatal(err)
	}
	wrong := locality.Secret("wrong secret")
	requests := []struct{ method, path, body string }{
		{"PUT", "/v1/objects/b/new", "intruder"},
		{"PUT", "/v1/objects/b/existing", "overwritten"},
		{"GET", "/v1/objects/b/existing", ""},
		{"HEAD", "/v1/objects/b/existing", ""},
		{"DELETE", "/v1/objects/b/existing", ""},
		{"GET", "/v1/objects/b", ""},
		{"GET", "/v1/map", ""},
		{"PUT", "/v1/map", `{"version":99,"nodes":[{"id":"evil","url":"http://127.0.0.1:1"}]}`},
	}
	for _, rq := range requests {
		hour := time.Now().Add(time.Hour)
		for _, auth := range []string{"", "Bearer " + wrong.AdminToken(hour), "Bearer ", "Basic " + secret.AdminToken(hour), secret.AdminToken(hour), "Bearer " + string(secret),
			"Bearer " + secret.AdminToken(time.Now().Add(-time.Second)),                   // expired
			"Bearer " + secret.TransformSecret("n1").AdminToken(hour),                     // a transform server's
			"Bearer " + secret.AdminToken(time.Now().Add(locality.MaxTokenTTL+time.Hour)), // lives too long
		} {
			req, _ := http.NewRequest(rq.method, base.URL+rq.path, strings.NewReader(rq.body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(wire.ErrorCode) != "permission_denied" {
				t.Errorf("%s %s with %.12q: %s, want 401", rq.method, rq.path, auth, resp.Status)
			}
			if rq.method != "HEAD" && errorBody(t, body).Code != insitu.PermissionDenied {
				t.Errorf("%s %s: body %s", rq.method, rq.path, body)
			}
		}
	}
	// Health needs no secret.
	resp, err := http.Get(base.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health: %s", resp.Status)
	}
	// Nothing changed: the one object is whole, the map is the first.
	if fs := files(t, c.Nodes()[0].Dir()); len(fs) != 1 || fs["b/existing"] != 7 {
		t.Errorf("store after refused requests: %v", fs)
	}
	if v := c.Nodes()[0].Map().Version(); v != 1 {
		t.Errorf("map version %d after a refused PUT /v1/map", v)
	}
	// A client with the wrong secret gets PermissionDenied.
	bad, _ := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: wrong})
	defer bad.Close()
	if _, err := bad.Put(ctx, insitu.Name{Bucket: "b", Key: "x"}, strings.NewReader("x"), 1); !errors.Is(err, insitu.PermissionDenied) {
		t.Errorf("Put with a wrong secret: %v", err)
	}
	if _, err := bad.Head(ctx, existing); !errors.Is(err, insitu.PermissionDenied) {
		t.Errorf("Head with a wrong secret: %v", err)
	}
	// Make the node log more: a failing and a successful request.
	if _, err := c.Client().Head(ctx, insitu.Name{Bucket: "b", Key: "missing"}); !errors.Is(err, insitu.NotFound) {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "request refused") {
		t.Fatalf("no log line about the refused requests:\n%s", out)
	}
	for _, leak := range []string{string(secret), "insitu1."} {
		if strings.Contains(out, leak) {
			t.Fatalf("a log line holds the secret or a token %.8q…", leak)
		}
	}
	if bytes.Contains([]byte(out), []byte("Authorization")) {
		t.Fatal("a log line holds an Authorization header")
	}
}

// TestNoSecretNoAuth checks that a node with the zero Secret serves anyone.
func TestNoSecretNoAuth(t *testing.T) {
	t.Parallel()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"})
	nd, err := node.New(t.Context(), "n1", t.TempDir(), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown(context.Background())
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodGet, "/v1/map", nil)
	nd.Handler().ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		t.Fatalf("GET /v1/map without a secret: %d", rec.status)
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(s int) { r.status = s }

// TestTransformServerCredentialsCannotAdminister: what a transform server
// holds (the transform servers' secret) and receives (an object token to
// read its input, one to put its output) lets it read that input and put
// that output, and nothing else: not another object, not a listing, not a
// map change (the takeover of a map at the highest version listing only
// the attacker), not a job.
func TestTransformServerCredentialsCannotAdminister(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{Secret: locality.Secret("cluster secret, 32 bytes or so..")})
	n1, _ := c.Map().Node("n1")
	ctx := context.Background()
	in := insitu.Name{Bucket: "in", Key: "a.flac"}
	out := insitu.Name{Bucket: "out", Key: "a.wav"}
	other := insitu.Name{Bucket: "in", Key: "b.flac"}
	for _, nm := range []insitu.Name{in, other} {
		if _, err := c.Put(ctx, nm, strings.NewReader("input "+nm.Key), -1); err != nil {
			t.Fatal(err)
		}
	}
	readTok := c.Client().ObjectToken(locality.Read, in)
	sk, err := sink.Cluster(c.Client())
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sk.Destination(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	serverTok := c.Secret().TransformSecret("n1").AdminToken(time.Now().Add(time.Hour))
	takeover := fmt.Sprintf(`{"version":%d,"nodes":[{"id":"evil","url":"http://127.0.0.1:1"}]}`, locality.MaxMapVersion)
	do := func(method, u, tok, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		what, method, url, tok, body string
		want                         int
	}{
		{"read its input", "GET", locality.ObjectURL(n1, in), readTok, "", 200},
		{"put its output", "PUT", dst.URL, dst.Token, "output", 200},
		{"read another input", "GET", locality.ObjectURL(n1, other), readTok, "", 401},
		{"overwrite its input", "PUT", locality.ObjectURL(n1, in), readTok, "x", 401},
		{"put another output", "PUT", locality.ObjectURL(n1, other), dst.Token, "x", 401},
		{"delete its output", "DELETE", dst.URL, dst.Token, "", 401},
		{"list the bucket", "GET", n1.URL + "/v1/objects/in", readTok, "", 401},
		{"take the map over (object token)", "PUT", n1.URL + "/v1/map", dst.Token, takeover, 401},
		{"take the map over (its own secret)", "PUT", n1.URL + "/v1/map", serverTok, takeover, 401},
		{"start a job", "POST", n1.URL + "/v1/jobs", serverTok, `{"id":"j","source":{"bucket":"in"},"dest_bucket":"x","transform":"identity"}`, 401},
		{"read with its own secret", "GET", locality.ObjectURL(n1, other), serverTok, "", 401},
	} {
		if got := do(tc.method, tc.url, tc.tok, tc.body); got != tc.want {
			t.Errorf("%s: %s %s answered %d, want %d", tc.what, tc.method, tc.url, got, tc.want)
		}
	}
	if v := c.Nodes()[0].Map().Version(); v != c.Map().Version() {
		t.Errorf("the node's map is at version %d after the refused takeover, want %d", v, c.Map().Version())
	}
	got, _, err := readAll(ctx, c.Client(), other)
	if err != nil || string(got) != "input b.flac" {
		t.Errorf("the other input is %q, %v", got, err)
	}
}

// TestTransformServersHaveOwnSecrets: the transform server next to each
// node checks tokens of its own secret, so one server's secret (and the
// tokens its clients send it) opens no other server, which could read its
// node's store by local path.
func TestTransformServersHaveOwnSecrets(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, &nodetest.Options{Sidecar: insitu.Identity})
	n2, _ := c.Map().Node("n2")
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 2}}
	for _, tc := range []struct {
		node string
		want error
	}{{"n1", insitu.PermissionDenied}, {"n2", nil}} {
		cl, err := transport.Dial(t.Context(), n2.TransformURL, &transport.DialOptions{Mode: transport.HPush, Secret: c.Secret().TransformSecret(tc.node)})
		if err != nil {
			t.Fatal(err)
		}
		in.Body = strings.NewReader("hi")
		var out bytes.Buffer
		err = cl.Transform(t.Context(), in, &out)
		cl.Close()
		if tc.want == nil && (err != nil || out.String() != "hi") {
			t.Errorf("n2's server with n2's secret: %q, %v", out.String(), err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("n2's server with %s's secret: %v, want %v", tc.node, err, tc.want)
		}
	}
}
