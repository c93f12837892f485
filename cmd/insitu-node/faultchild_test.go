package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// The fault tests run some of their parts as child processes, so that they
// can kill them with SIGKILL: the test binary itself, run again with
// $INSITU_FAULT_CHILD set, which TestMain hands to faultChild instead of
// running the tests.
//
//   - "node": the command's main, with the arguments of insitu-node (so
//     that startCluster can start the test binary as a node process);
//   - "transform-server": a real transform server (transport.NewServer) of
//     xorTransform, configured by the $INSITU_FAULT_* variables below, that
//     prints "LISTEN <url>" once it serves and "STALL <bucket/key>" for each
//     object it stalls on.
const (
	childEnv       = "INSITU_FAULT_CHILD"
	childSecretEnv = "INSITU_FAULT_SECRET" // the server's secret, in hexadecimal
	childRootEnv   = "INSITU_FAULT_ROOT"   // its local-file root, if any
	childStallEnv  = "INSITU_FAULT_STALL"  // the key prefix of the objects it stalls on, if any
)

// faultChild runs the child process that $INSITU_FAULT_CHILD names, and
// exits; it returns when the variable is not set.
func faultChild() {
	switch v := os.Getenv(childEnv); v {
	case "":
		return
	case "node":
		main() // exits
	case "transform-server":
		os.Exit(transformServerChild())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, v)
		os.Exit(2)
	}
}

// xorKey is what xorTransform xors each byte with.
const xorKey = 0x5a

// xor xors each byte of b with xorKey, in place, and returns b.
func xor(b []byte) []byte {
	for i := range b {
		b[i] ^= xorKey
	}
	return b
}

// xorTransform is the transform of the fault tests: it streams its input
// with each byte xored with xorKey, so that an output is checked against
// the input it was made from, byte for byte.
var xorTransform = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		k, err := in.Body.Read(buf)
		if k > 0 {
			if _, werr := out.Write(xor(buf[:k])); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

// transformServerChild serves xorTransform until the process is killed or
// its standard input ends (the parent is gone). An object whose key starts
// with $INSITU_FAULT_STALL is read whole, half of its output written, and
// then the transform prints "STALL <bucket/key>" and waits for its
// context's end, which comes with the process's.
func transformServerChild() int {
	stall := os.Getenv(childStallEnv)
	var outMu sync.Mutex // one line at a time on stdout
	println := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	t := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if stall == "" || !strings.HasPrefix(in.Name.Key, stall) {
			return xorTransform(ctx, in, out)
		}
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		if _, err := out.Write(xor(b)[:len(b)/2]); err != nil {
			return err
		}
		println("STALL %s", in.Name)
		<-ctx.Done()
		return ctx.Err()
	})
	secret, err := hex.DecodeString(os.Getenv(childSecretEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := &transport.ServerOptions{Secret: locality.Secret(secret)}
	if root := os.Getenv(childRootEnv); root != "" {
		opts.Roots = []string{root}
	}
	srv, err := transport.NewServer(t, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent is gone
	}()
	println("LISTEN http://%s", ln.Addr())
	err = hs.Serve(ln)
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// childServer is a transform server running as a child process.
type childServer struct {
	url    string
	cmd    *exec.Cmd
	stalls chan string // the names of the objects it stalls on, as it does
	stderr lockedBuffer
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// startTransformServer starts a transform server process (see
// transformServerChild) with the given secret, local-file root ("" for
// none) and stall prefix ("" for none), and waits up to 30 seconds for it
// to serve. It is killed in t.Cleanup.
func startTransformServer(t *testing.T, secret locality.Secret, root, stall string) *childServer {
	t.Helper()
	s := &childServer{stalls: make(chan string, 64), exited: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), childEnv+"=transform-server", childSecretEnv+"="+hex.EncodeToString(secret),
		childRootEnv+"="+root, childStallEnv+"="+stall)
	s.cmd.Stderr = &s.stderr
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		stdin.Close()
		<-s.exited
		if t.Failed() {
			t.Logf("stderr of the transform server:\n%s", s.stderr.String())
		}
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "LISTEN "); ok {
				listening <- u
			} else if name, ok := strings.CutPrefix(line, "STALL "); ok {
				s.stalls <- name
			}
		}
		io.Copy(io.Discard, stdout)
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.url = <-listening:
		return s
	case <-s.exited:
		t.Fatalf("the transform server exited before it served: %v\n%s", s.err, s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the transform server did not serve within 30s\n%s", s.stderr.String())
	}
	return nil
}

// kill kills the server with SIGKILL and waits up to 10 seconds for it to
// exit.
func (s *childServer) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the transform server did not exit within 10s of SIGKILL")
	}
	var ee *exec.ExitError
	if !errors.As(s.err, &ee) || ee.ExitCode() != -1 {
		t.Errorf("the transform server exited with %v; want killed by a signal", s.err)
	}
}
