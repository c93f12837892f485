package node_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

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

	n, err := node.New(ctx, "n1", dir, m, &node.Options{Secret: secret})
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

// Shut a node down with the server that serves it, at the same time: the
// server stops taking requests and lets those in flight finish, while the
// node aborts its jobs and waits for them and for its requests; ctx bounds
// both, after which what is left is cut off.
func ExampleNode_Shutdown() {
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://" + ln.Addr().String()})
	n, err := node.New(context.Background(), "n1", dir, m, nil)
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(ctx) }()
	if err := srv.Shutdown(ctx); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	_, err = n.Put(ctx, insitu.Name{Bucket: "b", Key: "late"}, strings.NewReader("x"), 1)
	fmt.Println(insitu.CodeOf(err))
	// Output: unavailable
}
