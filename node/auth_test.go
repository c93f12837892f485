package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
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
		for _, auth := range []string{"", "Bearer " + wrong.Token(), "Bearer ", "Basic " + secret.Token(), secret.Token(), "Bearer " + string(secret)} {
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
	for _, leak := range []string{string(secret), secret.Token(), wrong.Token()} {
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
