package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/insitu-data/insitu/locality"
)

// writeFiles writes a one-node map for id at listen and a secret file of
// mode perm holding secret, and returns their paths.
func writeFiles(t *testing.T, id, listen, secret string, perm os.FileMode) (mapFile, secretFile string) {
	t.Helper()
	dir := t.TempDir()
	m, err := locality.NewMap(1, locality.Node{ID: id, URL: "http://" + listen})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	mapFile, secretFile = filepath.Join(dir, "map.json"), filepath.Join(dir, "secret")
	if err := os.WriteFile(mapFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secretFile, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return mapFile, secretFile
}

// TestRefused: bad flags and unsafe or short secrets are exit status 2,
// with a message that says what is wrong, before the node starts.
func TestRefused(t *testing.T) {
	const good = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name   string
		perm   os.FileMode
		secret string
		args   func(mapFile, secretFile, dir string) []string
		want   string
	}{
		{"missing flags", 0o600, good, func(_, _, _ string) []string { return []string{"-id", "n1"} },
			"missing -listen, -dir, -map, -secret-file"},
		{"world-readable secret", 0o604, good, nil, "other users may access it"},
		{"short secret", 0o600, " short\n", nil, "a secret needs at least 16"},
		{"bad map", 0o600, good, func(_, secretFile, dir string) []string {
			bad := filepath.Join(dir, "bad.json")
			os.WriteFile(bad, []byte(`{"version":1,"nodes":[{"id":"n1"}]`), 0o644)
			return []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", dir, "-map", bad, "-secret-file", secretFile}
		}, "reading the map"},
		{"bad shutdown timeout", 0o600, good, func(mapFile, secretFile, dir string) []string {
			return []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", dir, "-map", mapFile, "-secret-file", secretFile, "-shutdown-timeout", "0s"}
		}, "-shutdown-timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mapFile, secretFile := writeFiles(t, "n1", "127.0.0.1:1", tc.secret, tc.perm)
			dir := filepath.Join(t.TempDir(), "store")
			args := []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", dir, "-map", mapFile, "-secret-file", secretFile}
			if tc.args != nil {
				args = tc.args(mapFile, secretFile, t.TempDir())
			}
			var stdout, stderr bytes.Buffer
			// A node that starts when it should not stops when ctx ends.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			code := run(ctx, func() {}, args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q", code, stdout.String(), stderr.String(), tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the store directory was made before the flags were checked")
			}
		})
	}
}

// TestRunInProcess runs the command's run in this process: it serves,
// prints its address once, warns about a group-readable secret file and
// a map entry at another port, answers only requests with the secret's
// token, and shuts down cleanly when its context ends, leaving no
// goroutine behind.
func TestRunInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const secret = "0123456789abcdef0123456789abcdef"
	mapFile, secretFile := writeFiles(t, "n1", "127.0.0.1:1", "\n"+secret+"\n", 0o640)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	exited := make(chan int, 1)
	stopped := make(chan struct{})
	go func() {
		defer pw.Close()
		exited <- run(ctx, func() { close(stopped) }, []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", t.TempDir(),
			"-map", mapFile, "-secret-file", secretFile, "-log-level", "debug"}, pw, &stderr)
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no line on stdout; exit %d\n%s", <-exited, stderr.String())
	}
	line := sc.Text()
	addr, ok := strings.CutPrefix(line, "insitu-node n1 listening on ")
	if !ok {
		t.Fatalf("stdout line %q", line)
	}
	nd := locality.Node{ID: "n1", URL: addr}
	m, _ := locality.NewMap(1, nd)
	for _, tc := range []struct {
		secret locality.Secret
		ok     bool
	}{{locality.Secret(secret), true}, {locality.Secret("another secret, as long"), false}} {
		c, err := locality.NewClient(m, &locality.ClientOptions{Secret: tc.secret})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetMap(ctx, nd)
		c.Close()
		if (err == nil) != tc.ok {
			t.Errorf("GET /v1/map with secret ok=%v: %v", tc.ok, err)
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after the context ended; want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context's end")
	}
	<-stopped
	if rest, _ := io.ReadAll(pr); len(rest) != 0 {
		t.Errorf("more on stdout: %q", rest)
	}
	log := stderr.String()
	for _, want := range []string{"accessible to its group", "not at the port it listens on", "shut down"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) || strings.Contains(log, "insitu1.") {
		t.Errorf("the log holds the secret or its token:\n%s", log)
	}
}
