package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// fileStore is a real HTTP store that is not an insitu node: objects at
// GET /objects/<node>/<key> (each node's objects under its own path, a
// read needing the token "read-<key>"), outputs by PUT /files/<path>,
// answered as a SeaweedFS filer answers: 201 {"name":"<base>","size":N}.
// answer, when set, replaces the JSON of a PUT's answer.
type fileStore struct {
	srv    *httptest.Server
	answer func(n int) string

	mu    sync.Mutex
	objs  map[string][]byte // "<node>/<key>" → bytes
	files map[string][]byte // path → bytes
}

func newFileStore(t *testing.T) *fileStore {
	s := &fileStore{objs: map[string][]byte{}, files: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/objects/"):
			id := strings.TrimPrefix(r.URL.Path, "/objects/")
			if r.Header.Get("Authorization") != "Bearer read-"+path.Base(id) {
				http.Error(w, "bad token", http.StatusForbidden)
				return
			}
			s.mu.Lock()
			b, ok := s.objs[id]
			s.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		case r.Method == http.MethodPut && r.URL.Path == "/down/o.wav": // a filer whose volume server is down
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"assign volume: no free volumes"}`)
		case r.Method == http.MethodPut && r.URL.Path == "/broken/o.wav": // an insitu node's internal error
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Insitu-Error-Code", "internal")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":"internal","message":"a bug"}`)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/files/"):
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return // the body was cut: store nothing
			}
			s.mu.Lock()
			s.files[strings.TrimPrefix(r.URL.Path, "/files/")] = b
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			if s.answer != nil {
				io.WriteString(w, s.answer(len(b)))
				return
			}
			fmt.Fprintf(w, `{"name":%q,"size":%d}`, path.Base(r.URL.Path), len(b))
		default:
			http.Error(w, "no", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fileStore) file(p string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[p]
	return b, ok
}

// storePlacement places the objects of a fileStore: nodes "a" and "b",
// each with a transform server; an object at /objects/<owner>/<key>.
type storePlacement struct {
	m       *locality.Map
	store   *fileStore
	calls   atomic.Int64
	failFor string // a key whose SourceURL fails with Unavailable
}

func (p *storePlacement) Map() *locality.Map { return p.m }

func (p *storePlacement) SourceURL(ctx context.Context, obj insitu.Object) (string, string, error) {
	p.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if obj.Name.Key == p.failFor {
		return "", "", insitu.Errorf(insitu.Unavailable, "the store lost track of it")
	}
	return p.store.srv.URL + "/objects/" + obj.Owner + "/" + obj.Name.Key, "read-" + obj.Name.Key, nil
}

// flipServer starts a transform server running flip whose every fetch
// source is recorded in sources.
func flipServer(t *testing.T, secret locality.Secret, sources *sync.Map) string {
	t.Helper()
	srv, err := transport.NewServer(flip, &transport.ServerOptions{
		Secret: secret,
		AllowSource: func(u *url.URL) bool {
			n, _ := sources.LoadOrStore(u.Path, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return transport.LoopbackOnly(u)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Shutdown(context.Background())
	})
	return hs.URL
}

// Placed over a store that is not an insitu cluster: each object goes to
// the server of its owner, which fetches it from the placement's source
// URL with its token (ws, hpull) or gets its bytes from the caller
// (hpush), and puts the output to a destination that answers as a
// SeaweedFS filer does; the result names the output, with its size and
// the XXH64 of its bytes.
func TestPlaced(t *testing.T) {
	t.Parallel()
	store := newFileStore(t)
	secret := locality.Secret("transform-servers-secret")
	var fetched [2]sync.Map // path → count, per server
	srvA, srvB := flipServer(t, secret, &fetched[0]), flipServer(t, secret, &fetched[1])
	m, err := locality.NewMap(1,
		locality.Node{ID: "a", URL: store.srv.URL, TransformURL: srvA},
		locality.Node{ID: "b", URL: store.srv.URL, TransformURL: srvB})
	if err != nil {
		t.Fatal(err)
	}
	p := &storePlacement{m: m, store: store, failFor: "lost.bin"}
	inputs := map[string][]byte{}
	for i := range 8 {
		owner := []string{"a", "b"}[i%2]
		key := fmt.Sprintf("k%d.bin", i)
		inputs[key] = randBytes(uint64(i+1), 1000+i*5000)
		store.objs[owner+"/"+key] = inputs[key]
	}
	for _, mode := range transport.Modes() {
		t.Run(mode.String(), func(t *testing.T) {
			fetched[0].Clear()
			fetched[1].Clear()
			p.calls.Store(0)
			tr, err := transport.Placed(p, &transport.ClusterOptions{Mode: mode, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for i := range 8 {
				owner := []string{"a", "b"}[i%2]
				key := fmt.Sprintf("k%d.bin", i)
				in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: key}, Size: int64(len(inputs[key])), Owner: owner}}
				if mode == transport.HPush {
					in.Body = bytes.NewReader(inputs[key])
				}
				out := insitu.Name{Bucket: "out", Key: key}
				file := mode.String() + "/" + key
				res, err := tr.TransformTo(t.Context(), in, insitu.Destination{Name: out, URL: store.srv.URL + "/files/" + file})
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				want := flipped(inputs[key])
				if got, _ := store.file(file); !bytes.Equal(got, want) {
					t.Errorf("%s: stored %d bytes, want the %d flipped", key, len(got), len(want))
				}
				if res.Name != out || res.Size != int64(len(want)) || res.Checksum != fmt.Sprintf("%016x", xxhash.Sum64(want)) {
					t.Errorf("%s: result %+v", key, res)
				}
			}
			// The servers fetched each object once, each only its own
			// node's; in hpush none.
			for i, id := range []string{"a", "b"} {
				fetched[i].Range(func(k, v any) bool {
					if mode == transport.HPush || !strings.HasPrefix(k.(string), "/objects/"+id+"/") || v.(*atomic.Int64).Load() != 1 {
						t.Errorf("the server of %s fetched %s %d times", id, k, v.(*atomic.Int64).Load())
					}
					return true
				})
			}
			wantCalls := int64(8)
			if mode == transport.HPush {
				wantCalls = 0
			}
			if n := p.calls.Load(); n != wantCalls {
				t.Errorf("SourceURL called %d times, want %d", n, wantCalls)
			}

			// A SourceURL error fails the object with its code, named.
			if mode == transport.HPush {
				return
			}
			lost := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "lost.bin"}, Owner: "a"}}
			_, err = tr.TransformTo(t.Context(), lost, insitu.Destination{URL: store.srv.URL + "/files/lost"})
			if !errors.Is(err, insitu.Unavailable) || !strings.Contains(err.Error(), "in/lost.bin") || !strings.Contains(err.Error(), "lost track") {
				t.Errorf("a failing SourceURL: %v", err)
			}
			if _, ok := store.file("lost"); ok {
				t.Error("a failed object stored an output")
			}
			// The context reaches SourceURL.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := tr.Transform(ctx, lost, io.Discard); !errors.Is(err, context.Canceled) {
				t.Errorf("a canceled context: %v", err)
			}
		})
	}
	if _, err := transport.Placed(nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Placed(nil): %v", err)
	}
	if _, err := transport.Placed(p, &transport.ClusterOptions{Mode: 9}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("an unknown mode: %v", err)
	}
}

// A direct put's destination answers a JSON object with the size stored;
// "name" (when not a put result's), and fields of its own are ignored, a
// checksum is checked when given, a size that is not the one sent is
// Internal, an answer that is not such JSON Unavailable.
func TestDirectPutAnswers(t *testing.T) {
	t.Parallel()
	store := newFileStore(t)
	srv, err := transport.NewServer(flip, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	input := randBytes(7, 3000)
	want := flipped(input)
	sum := fmt.Sprintf("%016x", xxhash.Sum64(want))
	for _, mode := range transport.Modes() {
		if mode == transport.HPull {
			continue // needs a source; the answer is read the same way
		}
		c, err := transport.Dial(t.Context(), hs.URL, &transport.DialOptions{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			answer string // %d: the size received
			code   insitu.Code
		}{
			{`{"name":"o.wav","size":%d,"fid":"3,01637037d6"}`, 0}, // a SeaweedFS filer
			{`{"size":%d,"checksum":"` + sum + `","owner":"n1","etag":"x"}`, 0},
			{`{"name":{"bucket":"out","key":"o"},"size":%d}`, 0},
			{`{"size":1%d}`, insitu.Internal},
			{`{"name":"o.wav"}`, insitu.Internal}, // no size: 0 bytes
			{`{"size":%d,"checksum":"0000000000000000"}`, insitu.Internal},
			{`{"size":"%d"}`, insitu.Unavailable},
			{`stored %d bytes`, insitu.Unavailable},
		} {
			store.answer = func(n int) string { return strings.ReplaceAll(tc.answer, "%d", fmt.Sprint(n)) }
			res, err := c.TransformTo(t.Context(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "o.flac"}, Size: int64(len(input))}, Body: bytes.NewReader(input)},
				insitu.Destination{URL: store.srv.URL + "/files/o.wav"})
			if tc.code != 0 {
				if !errors.Is(err, tc.code) {
					t.Errorf("%s, answer %s: %v, want %s", mode, tc.answer, err, tc.code)
				}
				continue
			}
			if err != nil || res.Size != int64(len(want)) || res.Checksum != sum {
				t.Errorf("%s, answer %s: %+v, %v", mode, tc.answer, res, err)
			}
			if strings.Contains(tc.answer, `"bucket"`) && res.Name != (insitu.Name{Bucket: "out", Key: "o"}) {
				t.Errorf("%s: a put result's name is kept: %+v", mode, res)
			}
		}
		// A 5xx without an insitu code is transient; an insitu node's
		// coded error keeps its code.
		for path, code := range map[string]insitu.Code{"/down/o.wav": insitu.Unavailable, "/broken/o.wav": insitu.Internal} {
			_, err := c.TransformTo(t.Context(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "o.flac"}, Size: int64(len(input))}, Body: bytes.NewReader(input)},
				insitu.Destination{URL: store.srv.URL + path})
			if !errors.Is(err, code) {
				t.Errorf("%s, a put to %s: %v, want %s", mode, path, err, code)
			}
		}
		c.Close()
	}
}
