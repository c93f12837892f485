package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// shelf is a store of its own: one node serving its objects at
// GET /o/<key> and storing outputs at PUT /o/<key>, answering the size
// stored.
type shelf struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (s *shelf) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/o/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPut {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.objs[key] = b
		fmt.Fprintf(w, `{"size":%d}`, len(b))
		return
	}
	w.Write(s.objs[key])
}

// shelfPlacement tells where the shelf's objects are: all on its one
// node, next to which runs a transform server.
type shelfPlacement struct {
	m   *locality.Map
	url string
}

func (p shelfPlacement) Map() *locality.Map { return p.m }

func (p shelfPlacement) SourceURL(_ context.Context, obj insitu.Object) (string, string, error) {
	return p.url + "/o/" + obj.Name.Key, "", nil
}

// Remote mode over a store that is not an insitu cluster: the Placement
// says which node holds each object and where its bytes are; the
// transform server next to that node fetches them and puts the output
// to the destination itself.
func ExamplePlaced() {
	ctx := context.Background()
	store := &shelf{objs: map[string][]byte{"greeting": []byte("hello")}}
	storeSrv := httptest.NewServer(store)
	defer storeSrv.Close()
	upper, err := transport.NewServer(insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = out.Write(bytes.ToUpper(b))
		return err
	}), nil)
	if err != nil {
		panic(err)
	}
	transformSrv := httptest.NewServer(upper)
	defer transformSrv.Close()

	m, err := locality.NewMap(1, locality.Node{ID: "shelf1", URL: storeSrv.URL, TransformURL: transformSrv.URL})
	if err != nil {
		panic(err)
	}
	t, err := transport.Placed(shelfPlacement{m: m, url: storeSrv.URL}, &transport.ClusterOptions{Mode: transport.HPull})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "greeting"}, Owner: "shelf1"}}
	res, err := t.TransformTo(ctx, in, insitu.Destination{Name: insitu.Name{Bucket: "b", Key: "loud"}, URL: storeSrv.URL + "/o/loud"})
	if err != nil {
		panic(err)
	}
	store.mu.Lock()
	fmt.Printf("%s: %d bytes, %s\n", res.Name, res.Size, store.objs["loud"])
	store.mu.Unlock()
	// Output:
	// b/loud: 5 bytes, HELLO
}
