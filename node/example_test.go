package node_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
)

// Embed one storage node in a service: its Handler serves the node API,
// here behind an httptest server, and a locality.Client talks to it.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)

	// The node's address goes into the map before the node exists, so
	// the server starts first, with the node's handler installed after.
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: srv.URL})
	secret := locality.Secret("a secret of at least sixteen bytes")

	n, err := node.New(ctx, &node.Options{ID: "n1", Dir: dir, Map: m, Secret: secret})
	if err != nil {
		panic(err)
	}
	defer n.Shutdown(ctx)
	h = n.Handler()

	client, _ := locality.NewClient(m, &locality.ClientOptions{Secret: secret})
	name := insitu.Name{Bucket: "docs", Key: "hello.txt"}
	if _, err := client.Put(ctx, name, strings.NewReader("hello"), 5); err != nil {
		panic(err)
	}
	rc, obj, err := client.Get(ctx, name)
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Printf("%s: %q from %s\n", obj.Name, b, obj.Owner)
	// Output: docs/hello.txt: "hello" from n1
}
