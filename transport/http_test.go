package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// call makes a raw HTTP request to the server.
func call(t *testing.T, method, u string, h map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func wantHTTPError(t *testing.T, resp *http.Response, body []byte, status int, code insitu.Code, msg string) {
	t.Helper()
	var we wire.ErrorBody
	if err := json.Unmarshal(body, &we); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error", resp.StatusCode, body)
	}
	if resp.StatusCode != status || we.Code != code || !strings.Contains(we.Message, msg) {
		t.Fatalf("got %d %s %q, want %d %s with %q", resp.StatusCode, we.Code, we.Message, status, code, msg)
	}
}

func TestHTTPBadRequests(t *testing.T) {
	_, base := startServer(t, insitu.Identity, &ServerOptions{
		MaxObjectSize: 1000,
		AllowSource:   func(u *url.URL) bool { return u.Port() != "1" },
	})
	obj := base + "/v1/transform/b/dir/k"
	cases := []struct {
		name   string
		method string
		url    string
		h      map[string]string
		body   string
		status int
		code   insitu.Code
		msg    string
	}{
		{"bad size", "PUT", obj, map[string]string{wire.Size: "ten"}, "", 400, insitu.InvalidArgument, "header Insitu-Size"},
		{"size not the length", "PUT", obj, map[string]string{wire.Size: "5"}, "abc", 400, insitu.InvalidArgument, "does not match the Content-Length 3"},
		{"bad escape", "PUT", obj, map[string]string{wire.Args: "%zz"}, "", 400, insitu.InvalidArgument, "header Insitu-Args"},
		{"bad timeout", "PUT", obj, map[string]string{wire.Timeout: "soon"}, "", 400, insitu.InvalidArgument, "header Insitu-Timeout"},
		{"bad name", "PUT", base + "/v1/transform/b/a%2F%2Fb", nil, "", 400, insitu.InvalidArgument, "empty path segment"},
		{"bad bucket", "PUT", base + "/v1/transform/b%20c/k", nil, "", 400, insitu.InvalidArgument, "bucket name has the character"},
		{"pull without source", "GET", obj, nil, "", 400, insitu.InvalidArgument, "names its input"},
		{"path and body", "PUT", obj, map[string]string{wire.Path: "/tmp/x"}, "abc", 400, insitu.InvalidArgument, "has an empty body"},
		{"relative path", "PUT", obj, map[string]string{wire.Path: "tmp/x"}, "", 400, insitu.InvalidArgument, "not an absolute path"},
		{"path and source", "GET", obj, map[string]string{wire.Path: "/tmp/x", wire.SourceURL: "http://127.0.0.1:2/x"}, "", 400, insitu.InvalidArgument, "both a local path and a source URL"},
		{"source not http", "GET", obj, map[string]string{wire.SourceURL: "file:///etc/passwd"}, "", 400, insitu.InvalidArgument, "not an http or https URL"},
		{"source not allowed", "GET", obj, map[string]string{wire.SourceURL: "http://127.0.0.1:1/x"}, "", 400, insitu.InvalidArgument, "not allowed by the server"},
		{"put with credentials", "PUT", obj, map[string]string{wire.PutURL: "http://u:p@127.0.0.1:2/x"}, "", 400, insitu.InvalidArgument, "carries credentials"},
		{"put not allowed", "PUT", obj, map[string]string{wire.PutURL: "http://10.0.0.1:7001/v1/objects/b/k"}, "", 400, insitu.InvalidArgument, "not allowed by the server"},
		{"too large", "PUT", obj, nil, strings.Repeat("x", 1001), 413, insitu.TooLarge, "over the server's limit of 1000"},
		{"local file disabled", "PUT", obj, map[string]string{wire.Path: "/etc/passwd"}, "", 403, insitu.PermissionDenied, "local-file input is disabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			resp, b := call(t, c.method, c.url, c.h, body)
			wantHTTPError(t, resp, b, c.status, c.code, c.msg)
		})
	}
	t.Run("too large, size unknown", func(t *testing.T) {
		// A body of unknown length over the limit fails as it streams: the
		// output had started, so the error comes in the trailer.
		for _, m := range Modes()[:2] {
			c, err := Dial(testCtx(t), base, &DialOptions{Mode: m, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "big"}, Size: -1}, Body: strings.NewReader(strings.Repeat("x", 100000))}
			err = c.Transform(testCtx(t), in, io.Discard)
			if !errors.Is(err, insitu.TooLarge) || !strings.Contains(err.Error(), "over the server's limit of 1000") {
				t.Errorf("%v: an input over the limit: %v", m, err)
			}
		}
	})
}

// TestShutdownDrains: Shutdown refuses new objects, lets those in flight
// finish, and then returns.
func TestShutdownDrains(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s, base := startServer(t, insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		close(started)
		<-release
		_, err := io.Copy(out, in.Body)
		return err
	}), nil)
	for _, mode := range []Mode{WS} {
		c, err := Dial(testCtx(t), base, &DialOptions{Mode: mode, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res := make(chan error, 1)
		var out bytes.Buffer
		go func() {
			res <- c.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 5}, Body: strings.NewReader("drain")}, &out)
		}()
		<-started
		down := make(chan error, 1)
		go func() { down <- s.Shutdown(testCtx(t)) }()

		// Once shutting down, new work is refused.
		for {
			resp, b := call(t, "GET", base+"/health", nil, nil)
			if resp.StatusCode == 503 {
				wantHTTPError(t, resp, b, 503, insitu.Unavailable, "shutting down")
				break
			}
		}
		resp, b := call(t, "PUT", base+"/v1/transform/b/new", nil, strings.NewReader("x"))
		wantHTTPError(t, resp, b, 503, insitu.Unavailable, "shutting down")
		select {
		case err := <-down:
			t.Fatalf("Shutdown returned (%v) with an object in flight", err)
		default:
		}
		close(release)
		if err := <-res; err != nil || out.String() != "drain" {
			t.Fatalf("the object in flight: %q, %v", out.String(), err)
		}
		if err := <-down; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
}

// TestShutdownGivesUp: a Shutdown whose context ends cancels what is left.
func TestShutdownGivesUp(t *testing.T) {
	started := make(chan struct{})
	s, base := startServer(t, insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), nil)
	c, err := Dial(testCtx(t), base, &DialOptions{Mode: HPush, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := make(chan error, 1)
	go func() {
		res <- c.Transform(testCtx(t), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 1}, Body: strings.NewReader("x")}, io.Discard)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's error", err)
	}
	err = <-res
	if !errors.Is(err, insitu.Unavailable) || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("the object cut by the shutdown: %v, want Unavailable", err)
	}
}

func TestClientOptions(t *testing.T) {
	ctx := testCtx(t)
	if _, err := Dial(ctx, "ftp://x", nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Dial of a non-http URL: %v", err)
	}
	if _, err := Dial(ctx, "http://127.0.0.1:1", &DialOptions{Mode: HPull}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("hpull without SourceURL: %v", err)
	}
	if _, err := Dial(ctx, "http://127.0.0.1:1", &DialOptions{Mode: Mode(9)}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("an unknown mode: %v", err)
	}
	// Nothing listens on port 1 of loopback.
	if _, err := Dial(ctx, "http://127.0.0.1:1", nil); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("ws Dial of a dead address: %v", err)
	}
	c, err := Dial(ctx, "http://127.0.0.1:1", &DialOptions{Mode: HPush})
	if err != nil {
		t.Fatal(err)
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 1}, Body: strings.NewReader("x")}
	if err := c.Transform(ctx, in, io.Discard); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("hpush to a dead address: %v", err)
	}
	bad := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "../k"}, Size: 1}, Body: strings.NewReader("x")}
	if err := c.Transform(ctx, bad, io.Discard); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := c.TransformTo(ctx, in, insitu.Destination{}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("TransformTo without a destination: %v", err)
	}
	c.Close()
	if err := c.Transform(ctx, in, io.Discard); !errors.Is(err, insitu.Canceled) {
		t.Errorf("Transform after Close: %v", err)
	}
}

func TestModeText(t *testing.T) {
	for _, m := range Modes() {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Mode
		if err := got.UnmarshalText(b); err != nil || got != m {
			t.Errorf("%v: round trip gave %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("carrier-pigeon"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("ParseMode of an unknown name: %v", err)
	}
	if _, err := Mode(7).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown mode succeeded")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:7001/x": true, "http://127.9.9.9/": true, "http://[::1]:80/": true,
		"http://localhost:1/": true, "http://LOCALHOST/": true,
		"http://10.0.0.1/": false, "http://example.com/": false, "http://[::2]/": false, "http://127.0.0.1.nip.io/": false,
	} {
		p, _ := url.Parse(u)
		if got := LoopbackOnly(p); got != want {
			t.Errorf("LoopbackOnly(%s) = %v", u, got)
		}
	}
}
