package transporttest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// Server is the harness of a real [transport.Server] on 127.0.0.1 reached
// with [transport.Dial] in mode. For HPull it also runs a source server,
// where each object's bytes wait for the transform server to fetch them.
func Server(mode transport.Mode) Harness {
	return Harness{
		Name:       mode.String(),
		Remote:     true,
		SendsBytes: mode != transport.HPull,
		Start: func(t *testing.T, tr insitu.Transform, cfg Config) (*Endpoint, error) {
			return startServer(t, mode, tr, cfg)
		},
	}
}

func startServer(t *testing.T, mode transport.Mode, tr insitu.Transform, cfg Config) (*Endpoint, error) {
	t.Helper()
	opts := &transport.ServerOptions{
		Timeout:  cfg.Timeout,
		Roots:    cfg.Roots,
		Secret:   cfg.Secret,
		AllowPut: cfg.AllowPut,
	}
	if _, err := transport.NewServer(tr, opts); err != nil {
		t.Fatalf("transport.NewServer: %v", err)
	}
	ks := startKillable(t, func() http.Handler {
		s, err := transport.NewServer(tr, opts)
		if err != nil {
			panic(err) // it succeeded with the same arguments before
		}
		return s
	})

	dopts := &transport.DialOptions{Mode: mode, Secret: cfg.ClientSecret, LocalFile: cfg.LocalFile}
	var src *source
	if mode == transport.HPull {
		src = startSource(t, cfg.Secret)
		dopts.SourceURL = src.url
	}
	c, err := transport.Dial(t.Context(), "http://"+ks.addr, dopts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	e := &Endpoint{Client: c, TransformTo: c.TransformTo, Kill: ks.kill, Restart: ks.restart}
	if src != nil {
		e.Client = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
			defer src.offer(in)()
			return c.Transform(ctx, in, out)
		})
		e.TransformTo = func(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
			defer src.offer(in)()
			return c.TransformTo(ctx, in, dst)
		}
	}
	return e, nil
}

// killable is an http.Server on 127.0.0.1 that can be killed, connections
// and all (WebSocket ones included), and restarted on the same address.
type killable struct {
	t          *testing.T
	newHandler func() http.Handler
	addr       string

	mu    sync.Mutex
	srv   *http.Server
	h     http.Handler
	conns map[net.Conn]struct{}
}

func startKillable(t *testing.T, newHandler func() http.Handler) *killable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	k := &killable{t: t, newHandler: newHandler, addr: ln.Addr().String()}
	k.serve(ln)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) serve(ln net.Listener) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.h = k.newHandler()
	k.conns = make(map[net.Conn]struct{})
	k.srv = &http.Server{
		Handler:           k.h,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			k.mu.Lock()
			defer k.mu.Unlock()
			switch s {
			case http.StateNew:
				k.conns[c] = struct{}{}
			case http.StateClosed:
				delete(k.conns, c)
			}
		},
	}
	go k.srv.Serve(ln)
}

// kill closes the listener and every connection at once, then waits for
// the server's objects to end.
func (k *killable) kill() {
	k.mu.Lock()
	srv, h := k.srv, k.h
	conns := make([]net.Conn, 0, len(k.conns))
	for c := range k.conns {
		conns = append(conns, c)
	}
	k.conns = make(map[net.Conn]struct{})
	k.mu.Unlock()
	srv.Close()
	for _, c := range conns {
		c.Close() // hijacked (WebSocket) connections too
	}
	if s, ok := h.(interface{ Shutdown(context.Context) error }); ok {
		// Its connections are gone, which ends every object on them.
		s.Shutdown(context.Background())
	}
}

// restart serves a new server on the same address.
func (k *killable) restart() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a kill
		if ln, err = net.Listen("tcp", k.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		k.t.Fatalf("restart on %s: %v", k.addr, err)
	}
	k.serve(ln)
}

// source serves the objects an hpull server fetches: each call offers its
// input's body under the object's name for as long as it runs.
type source struct {
	srv    *http.Server
	base   string
	secret locality.Secret // a node's: the source checks the tokens it hands out

	mu     sync.Mutex
	bodies map[string]*offered
}

type offered struct {
	mu   sync.Mutex
	r    io.Reader
	size int64
	done bool
}

func (o *offered) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return 0, errors.New("the call ended")
	}
	return o.r.Read(p)
}

func startSource(t *testing.T, secret locality.Secret) *source {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &source{base: "http://" + ln.Addr().String(), secret: secret, bodies: make(map[string]*offered)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/objects/{bucket}/{key...}", s.get)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *source) get(w http.ResponseWriter, r *http.Request) {
	if !s.secret.Verify(r) {
		http.Error(w, `{"code":"permission_denied","message":"bad token"}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	b := r.PathValue("bucket")
	if b == "~" {
		b = ""
	}
	o := s.bodies[b+"/"+r.PathValue("key")]
	s.mu.Unlock()
	if o == nil {
		http.Error(w, `{"code":"not_found","message":"no such object"}`, http.StatusNotFound)
		return
	}
	if o.size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(o.size, 10))
	}
	io.Copy(w, o)
}

// offer makes in's body fetchable under its name; the returned func takes
// it back, after which the source reads it no more.
func (s *source) offer(in *insitu.Input) func() {
	body := in.Body
	if body == nil {
		body = http.NoBody
	}
	o := &offered{r: body, size: in.Size}
	key := in.Name.Bucket + "/" + in.Name.Key
	s.mu.Lock()
	s.bodies[key] = o
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.bodies[key] == o {
			delete(s.bodies, key)
		}
		s.mu.Unlock()
		o.mu.Lock()
		o.done = true
		o.mu.Unlock()
	}
}

// url is the DialOptions.SourceURL of the source.
func (s *source) url(obj insitu.Object) (string, string, error) {
	b := obj.Name.Bucket
	if b == "" {
		b = "~"
	}
	tok := s.secret.ObjectToken(locality.Read, insitu.Name{Bucket: b, Key: obj.Name.Key}, time.Now().Add(locality.DefaultTokenTTL))
	return s.base + "/v1/objects/" + url.PathEscape(b) + "/" + escapeKey(obj.Name.Key), tok, nil
}

// escapeKey escapes each segment of a key for a URL path.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
