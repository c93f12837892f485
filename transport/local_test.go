//go:build unix

package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
)

// localModes are the client options that send a local path.
var localModes = []DialOptions{{Mode: WS, LocalFile: true}, {Mode: HPush, LocalFile: true}, {Mode: HPull, LocalFile: true}}

// dialLocal dials base in each local-file mode.
func dialLocal(t *testing.T, base string, o DialOptions) *Client {
	t.Helper()
	o.Pool = 1
	o.Logger = quietLogger()
	c, err := Dial(testCtx(t), base, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localInput(key, path string) *insitu.Input {
	return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: key}, Size: -1, Path: path}}
}

// TestLocalFileSwappedAfterCheck: the checked file is swapped, once the
// transform has it, for a link to a file outside the root or for a FIFO
// (the transform itself swaps it, so the race is certain); the transform
// then opens Input.Path itself, as transform/ffmpeg does, and reads
// Input.Body. Both must give the checked file, and Input.Path must resolve
// to its inode: the server opened the file once and hands that open file
// on, so there is no second open for a swap to redirect or block. (The
// server used to hand on the path, which the link then led outside the
// root, and opened the body on its first read, which a FIFO blocked.)
func TestLocalFileSwappedAfterCheck(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Input.Path names the open file on Linux only")
	}
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	swaps := map[string]func(p string) error{
		"link": func(p string) error { return os.Symlink(secret, p) },
		"fifo": func(p string) error { return syscall.Mkfifo(p, 0o600) },
	}
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		swap, _, _ := strings.Cut(in.Name.Key, "/")
		p := filepath.Join(root, in.Name.Key)
		checked, err := os.Stat(p)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := swaps[swap](p); err != nil {
			return err
		}
		// As a tool would: open Input.Path (without blocking, so that a
		// FIFO fails the test instead of hanging it).
		f, err := os.OpenFile(in.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("opening Input.Path %s: %w", in.Path, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !os.SameFile(fi, checked) {
			return fmt.Errorf("Input.Path %s is not the checked file (mode %v, size %d)", in.Path, fi.Mode(), fi.Size())
		}
		viaPath, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		viaBody, err := io.ReadAll(in.Body)
		if err != nil {
			return fmt.Errorf("reading Input.Body: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s|%s", viaPath, viaBody)
		return err
	})
	_, base := startServer(t, tr, &ServerOptions{Roots: []string{root}})
	for _, o := range localModes {
		c := dialLocal(t, base, o)
		for swap := range swaps {
			key := swap + "/" + o.Mode.String()
			p := filepath.Join(root, key)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("checked"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var out bytes.Buffer
			err := c.Transform(ctx, localInput(key, p), &out)
			cancel()
			if err != nil || out.String() != "checked|checked" {
				t.Errorf("%s, the file swapped for a %s: %q, %v; want the checked file's bytes by Path and Body", o.Mode, swap, out.String(), err)
			}
		}
	}
}

// TestLocalFileNotRegular: a FIFO, a directory, a socket, and a link even
// to a file inside the root are refused at once, before the transform.
func TestLocalFileNotRegular(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(root, "fifo")
	must(syscall.Mkfifo(fifo, 0o600))
	dir := filepath.Join(root, "dir")
	must(os.Mkdir(dir, 0o755))
	file := filepath.Join(root, "file")
	must(os.WriteFile(file, []byte("x"), 0o644))
	link := filepath.Join(root, "link")
	must(os.Symlink(file, link))
	sock := filepath.Join(root, "sock")
	ln, err := net.Listen("unix", sock)
	must(err)
	defer ln.Close()

	ran := make(chan string, 100)
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		ran <- in.Path
		return insitu.Identity.Transform(ctx, in, out)
	})
	_, base := startServer(t, tr, &ServerOptions{Roots: []string{root}})
	cases := []struct {
		what, path string
		code       insitu.Code
	}{
		{"a FIFO", fifo, insitu.InvalidArgument},
		{"a directory", dir, insitu.InvalidArgument},
		{"the root itself", root, insitu.InvalidArgument},
		{"a socket", sock, insitu.InvalidArgument},
		{"a FIFO on the way", filepath.Join(fifo, "x"), insitu.NotFound},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases, struct {
			what, path string
			code       insitu.Code
		}{"a link to a file in the root", link, insitu.PermissionDenied})
	}
	for _, o := range localModes {
		c := dialLocal(t, base, o)
		for _, tc := range cases {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Transform(ctx, localInput("k", tc.path), io.Discard)
			cancel()
			if !errors.Is(err, tc.code) {
				t.Errorf("%s, %s: %v, want %v", o.Mode, tc.what, err, tc.code)
			}
		}
	}
	select {
	case p := <-ran:
		t.Errorf("the transform ran on %s", p)
	default:
	}
}

// TestLocalFileErrorsSayNothingOutside: a path outside the roots is refused
// with the same PermissionDenied message whether or not it exists, also
// when a link inside a root leads there; so a client cannot probe the
// machine's files. (The server used to resolve the path first: a missing
// file outside got another message, and one behind a link in the root
// NotFound.)
func TestLocalFileErrorsSayNothingOutside(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "present"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	_, base := startServer(t, insitu.Identity, &ServerOptions{Roots: []string{root}})
	for _, o := range localModes {
		c := dialLocal(t, base, o)
		for _, pair := range [][2]string{
			{filepath.Join(outside, "present"), filepath.Join(outside, "missing")},
			{filepath.Join(root, "out", "present"), filepath.Join(root, "out", "missing")},
			{filepath.Join(root, "..", filepath.Base(outside), "present"), filepath.Join(root, "..", filepath.Base(outside), "missing")},
		} {
			var msgs [2]string
			for i, p := range pair {
				err := c.Transform(testCtx(t), localInput("k", p), io.Discard)
				var ie *insitu.Error
				if !errors.As(err, &ie) || ie.Code != insitu.PermissionDenied {
					t.Errorf("%s, %s: %v, want PermissionDenied", o.Mode, p, err)
					continue
				}
				msgs[i] = strings.ReplaceAll(ie.Msg, filepath.Clean(p), "<path>")
			}
			if msgs[0] != msgs[1] {
				t.Errorf("%s: a present and a missing file outside the roots get different messages:\n%s\n%s", o.Mode, msgs[0], msgs[1])
			}
		}
	}
}
