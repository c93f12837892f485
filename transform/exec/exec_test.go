//go:build unix

package exec_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/exec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Known answers from /work/shared/testdata/README.md.
const (
	textMD5  = "7c62ad0eef19d3cc595bd60727555502"
	imageMD5 = "33b8d66b1a703796ea16e370dcbcc68d"
)

func newCmd(t *testing.T, argv []string, opts *exec.Options) *exec.Command {
	t.Helper()
	c, err := exec.New(argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func name(key string) insitu.Name { return insitu.Name{Bucket: "b", Key: key} }

func bodyInput(key, body string) *insitu.Input {
	return &insitu.Input{Object: insitu.Object{Name: name(key)}, Body: strings.NewReader(body)}
}

func pathInput(t *testing.T, file string) *insitu.Input {
	p := testutil.Testdata(t, file)
	return &insitu.Input{Object: insitu.Object{Name: name(file), Path: p}}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func wantCode(t *testing.T, err error, code insitu.Code) {
	t.Helper()
	if insitu.CodeOf(err) != code || !errors.Is(err, code) {
		t.Fatalf("err = %v (code %v), want code %v", err, insitu.CodeOf(err), code)
	}
}

// groupAlive returns the processes of the process group pgid that are not
// zombies, from /proc.
func groupAlive(t *testing.T, pgid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var alive []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if f[2] == strconv.Itoa(pgid) {
			alive = append(alive, s[:i+1]+" "+f[0])
		}
	}
	return alive
}

// assertGroupGone checks that no live process is left of those whose pids
// are in pidFile, one a line, the first the group's leader, nor in the
// leader's process group. A SIGKILLed process may take a moment to finish
// exiting, so the check allows a bounded time.
func assertGroupGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		alive := groupAlive(t, pids[0])
		for _, pid := range pids {
			if st, ok := procState(pid); ok && st != "Z" && st != "X" {
				alive = append(alive, fmt.Sprintf("pid %d (%s)", pid, st))
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of group %d still alive: %v", pids[0], alive)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procState returns the state letter of process pid, false when it does
// not exist.
func procState(pid int) (string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return "", false
	}
	return f[0], true
}

func TestStdinToStdout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr := newCmd(t, []string{"tr", "a-z", "A-Z"}, nil)
	var out bytes.Buffer
	if err := tr.Transform(ctx, bodyInput("a.txt", "hello, world\n"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "HELLO, WORLD\n" {
		t.Fatalf("out = %q", out.String())
	}

	// cat over the real text file, from its Body and from its Path (no
	// {input}: the Path is not used, the body streams to stdin).
	cat := newCmd(t, []string{"cat"}, nil)
	text, err := os.ReadFile(testutil.Testdata(t, "test-text.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := cat.Transform(ctx, bodyInput("t.txt", string(text)), &out); err != nil {
		t.Fatal(err)
	}
	if got := md5hex(out.Bytes()); got != textMD5 {
		t.Fatalf("md5 = %s, want %s", got, textMD5)
	}
}

func TestInputOutputFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := newCmd(t, []string{"cp", "{input}", "{output}"}, nil)

	// From Input.Path: the file is read where it is.
	var out bytes.Buffer
	if err := cp.Transform(ctx, pathInput(t, "test-image.jpg"), &out); err != nil {
		t.Fatal(err)
	}
	if got := md5hex(out.Bytes()); got != imageMD5 || out.Len() != 2246022 {
		t.Fatalf("cp from Path: %d bytes, md5 %s; want 2246022, %s", out.Len(), got, imageMD5)
	}

	// From Body only: the transform stages it in a temporary file.
	img, err := os.ReadFile(testutil.Testdata(t, "test-image.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	in := &insitu.Input{Object: insitu.Object{Name: name("x.jpg")}, Body: bytes.NewReader(img)}
	if err := cp.Transform(ctx, in, &out); err != nil {
		t.Fatal(err)
	}
	if got := md5hex(out.Bytes()); got != imageMD5 {
		t.Fatalf("cp from Body: md5 %s, want %s", got, imageMD5)
	}

	// md5sum reads {input}; its stdout is the output.
	sum := newCmd(t, []string{"md5sum", "{input}"}, nil)
	out.Reset()
	if err := sum.Transform(ctx, pathInput(t, "test-text.txt"), &out); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := strings.Cut(out.String(), " "); got != textMD5 {
		t.Fatalf("md5sum output %q, want %s", out.String(), textMD5)
	}

	// {key}, {bucket} and an {output} inside an element; OutputExt.
	dir := t.TempDir()
	sh := newCmd(t, []string{"sh", "-c", `printf '%s' "$1" > "${2#out=}"; pwd > ` + filepath.Join(dir, "pwd"), "sh", "{bucket}:{key}", "out={output}"}, &exec.Options{OutputExt: ".txt", TempDir: dir})
	out.Reset()
	if err := sh.Transform(ctx, bodyInput("k/x.bin", ""), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "b:k/x.bin" {
		t.Fatalf("out = %q, want %q", out.String(), "b:k/x.bin")
	}
	// The run's working directory was private, under TempDir, and is gone.
	wd, _ := os.ReadFile(filepath.Join(dir, "pwd"))
	if !strings.HasPrefix(string(wd), dir+"/.insitu-exec-") {
		t.Fatalf("working directory %q, want one under %s", wd, dir)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("TempDir holds %d entries, want only the pwd file: %v", len(ents), ents)
	}

	// A missing Input.Path.
	err = cp.Transform(ctx, &insitu.Input{Object: insitu.Object{Name: name("gone"), Path: filepath.Join(dir, "gone")}}, &out)
	wantCode(t, err, insitu.NotFound)
}

func TestArgs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "log")
	// The program logs each start, then prints its arguments one a line.
	argv := []string{"sh", "-c", `echo ran >> ` + log + `; for a in "$@"; do echo "[$a]"; done`, "sh", "fixed", "{args}"}
	c := newCmd(t, argv, nil)
	runs := func() int {
		b, _ := os.ReadFile(log)
		return bytes.Count(b, []byte("ran\n"))
	}

	in := bodyInput("a", "")
	in.Args = "  one\ttwo   3;id $(x) * "
	var out bytes.Buffer
	if err := c.Transform(ctx, in, &out); err != nil {
		t.Fatal(err)
	}
	// Each word is one argument, as written: no shell, no glob.
	if want := "[fixed]\n[one]\n[two]\n[3;id]\n[$(x)]\n[*]\n"; out.String() != want {
		t.Fatalf("out = %q, want %q", out.String(), want)
	}

	for _, args := range []string{
		"-n", "ok --help", "-", "/etc/passwd", "ok ../secret", "a/b", `a\b`, ".", "..",
		"a\x00b", "a\nb", "a\rb", "\x7f", strings.Repeat("x", 257), strings.Repeat("a ", 3000),
	} {
		in := bodyInput("a", "")
		in.Args = args
		out.Reset()
		err := c.Transform(ctx, in, &out)
		if insitu.CodeOf(err) != insitu.InvalidArgument || out.Len() != 0 {
			t.Errorf("args %q: err = %v, out %q; want InvalidArgument and nothing", args, err, out.String())
		}
	}
	if n := runs(); n != 1 {
		t.Fatalf("the program ran %d times, want once (refused args must not start it)", n)
	}

	// A command without {args} takes none.
	cat := newCmd(t, []string{"cat"}, nil)
	in = bodyInput("a", "x")
	in.Args = "word"
	wantCode(t, cat.Transform(ctx, in, io.Discard), insitu.InvalidArgument)

	// A caller's allow-list: only numbers.
	num := newCmd(t, []string{"echo", "{args}"}, &exec.Options{AllowArg: func(a string) error {
		if _, err := strconv.Atoi(a); err != nil {
			return fmt.Errorf("%q is not a number", a)
		}
		return nil
	}})
	in = bodyInput("a", "")
	in.Args = "1 -2 3"
	out.Reset()
	if err := num.Transform(ctx, in, &out); err != nil || out.String() != "1 -2 3\n" {
		t.Fatalf("out %q, err %v", out.String(), err)
	}
	in = bodyInput("a", "")
	in.Args = "1 x"
	err := num.Transform(ctx, in, io.Discard)
	wantCode(t, err, insitu.InvalidArgument)
	if !strings.Contains(err.Error(), `"x" is not a number`) {
		t.Fatalf("err = %v", err)
	}

	// An object whose key would be read as an option, as a whole {key}.
	k := newCmd(t, []string{"echo", "{key}"}, nil)
	wantCode(t, k.Transform(ctx, bodyInput("-n", ""), io.Discard), insitu.InvalidArgument)

	// {args} inside an element is refused by New.
	_, err = exec.New([]string{"echo", "x{args}"}, nil)
	wantCode(t, err, insitu.InvalidArgument)
}

func TestMissingCommand(t *testing.T) {
	t.Parallel()
	// Not installed: not_found, as ffmpeg.Lookup says of a missing
	// ffmpeg, naming the program, where it was looked for and what to do.
	_, err := exec.New([]string{"no-such-program-insitu"}, nil)
	wantCode(t, err, insitu.NotFound)
	for _, want := range []string{`"no-such-program-insitu"`, "program not installed", "not found in $PATH", "install it"} {
		if !errors.Is(err, exec.ErrNotInstalled) || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want ErrNotInstalled saying %q", err, want)
		}
	}
	t.Log(err)
	// A path: no such file, or a file that is not executable.
	noExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "gone"), noExec} {
		_, err = exec.New([]string{p}, nil)
		wantCode(t, err, insitu.NotFound)
		if !errors.Is(err, exec.ErrNotInstalled) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "no executable file at that path") {
			t.Errorf("err = %v; want ErrNotInstalled naming %s", err, p)
		}
		t.Log(err)
	}
	_, err = exec.New(nil, nil)
	wantCode(t, err, insitu.InvalidArgument)

	// Removed after New: it cannot start, an Internal error naming it.
	bin := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ncat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCmd(t, []string{bin}, nil)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	err = c.Transform(context.Background(), bodyInput("a", "x"), io.Discard)
	wantCode(t, err, insitu.Internal)
	if !strings.Contains(err.Error(), bin) {
		t.Fatalf("err = %v; want it to name %s", err, bin)
	}
}

func TestNonZeroExit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCmd(t, []string{"sh", "-c", "echo partial output; echo 'bad input: no header' >&2; exit 3"}, nil)
	err := c.Transform(ctx, bodyInput("a", "x"), io.Discard)
	wantCode(t, err, insitu.InvalidArgument)
	for _, want := range []string{"exit status 3", "bad input: no header", "b/a"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to contain %q", err, want)
		}
	}

	// A long standard error: only its bounded tail is kept.
	c = newCmd(t, []string{"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i >&2; i=$((i+1)); done; exit 1"}, nil)
	err = c.Transform(ctx, bodyInput("a", ""), io.Discard)
	wantCode(t, err, insitu.InvalidArgument)
	if msg := err.Error(); len(msg) > 2*exec.StderrTail || !strings.Contains(msg, "line 2999") || strings.Contains(msg, "line 1;") {
		t.Fatalf("err is %d bytes: %.300s…", len(msg), msg)
	}

	// With {output}: nothing is written to out on a non-zero exit.
	c = newCmd(t, []string{"sh", "-c", `echo written > "$1"; exit 1`, "sh", "{output}"}, nil)
	var out bytes.Buffer
	err = c.Transform(ctx, bodyInput("a", ""), &out)
	wantCode(t, err, insitu.InvalidArgument)
	if out.Len() != 0 {
		t.Fatalf("out = %q, want nothing", out.String())
	}

	// Exit 0 without the {output} file.
	c = newCmd(t, []string{"true", "{output}"}, nil)
	wantCode(t, c.Transform(ctx, bodyInput("a", ""), io.Discard), insitu.Internal)
}

func TestDeadlineKillsGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes that hang")
	}
	t.Parallel()
	for _, cancel := range []bool{false, true} {
		pid := filepath.Join(t.TempDir(), "pid")
		c := newCmd(t, []string{"sh", "-c", "echo $$ > " + pid + "; sleep 30 & echo $! >> " + pid + "; sleep 31 & echo $! >> " + pid + "; wait"}, nil)
		ctx, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
		want := insitu.DeadlineExceeded
		if cancel {
			want = insitu.Canceled
			ctx, stop = context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, stop)
		}
		start := time.Now()
		err := c.Transform(ctx, bodyInput("a", ""), io.Discard)
		stop()
		// A context error comes back as it is (insitu.WithName's rule).
		if insitu.CodeOf(err) != want || !errors.Is(err, ctx.Err()) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Transform returned after %v", d)
		}
		assertGroupGone(t, pid)
	}
}

func TestChildLeftBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Parallel()
	// The leader exits 0 at once, leaving children: one holding stdout,
	// one detached from every pipe. Both are killed; the output stands.
	pid := filepath.Join(t.TempDir(), "pid")
	c := newCmd(t, []string{"sh", "-c", "echo $$ > " + pid + "; sleep 30 & echo $! >> " + pid + "; sleep 31 </dev/null >/dev/null 2>&1 & echo $! >> " + pid + "; echo done"}, nil)
	start := time.Now()
	var out bytes.Buffer
	if err := c.Transform(context.Background(), bodyInput("a", ""), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "done\n" {
		t.Fatalf("out = %q", out.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Transform returned after %v", d)
	}
	assertGroupGone(t, pid)
}

func TestMaxOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Parallel()
	ctx := context.Background()
	// Standard output without end ("writes gigabytes").
	pid := filepath.Join(t.TempDir(), "pid")
	c := newCmd(t, []string{"sh", "-c", "echo $$ > " + pid + "; exec yes"}, &exec.Options{MaxOutput: 1 << 20})
	var n countWriter
	err := c.Transform(ctx, bodyInput("a", ""), &n)
	wantCode(t, err, insitu.TooLarge)
	if n > 1<<20 {
		t.Fatalf("%d bytes written to out, over MaxOutput", n)
	}
	assertGroupGone(t, pid)

	// An {output} file without end: killed while it grows.
	pid = filepath.Join(t.TempDir(), "pid")
	c = newCmd(t, []string{"sh", "-c", `echo $$ > ` + pid + `; exec yes > "$1"`, "sh", "{output}"}, &exec.Options{MaxOutput: 1 << 20})
	n = 0
	wantCode(t, c.Transform(ctx, bodyInput("a", ""), &n), insitu.TooLarge)
	if n != 0 {
		t.Fatalf("%d bytes written to out, want none", n)
	}
	assertGroupGone(t, pid)

	// An {output} file just over the bound, written at once.
	c = newCmd(t, []string{"head", "-c", "1001", "/dev/zero"}, &exec.Options{MaxOutput: 1000})
	wantCode(t, c.Transform(ctx, bodyInput("a", ""), io.Discard), insitu.TooLarge)
	c = newCmd(t, []string{"sh", "-c", `head -c 1001 /dev/zero > "$1"`, "sh", "{output}"}, &exec.Options{MaxOutput: 1000})
	wantCode(t, c.Transform(ctx, bodyInput("a", ""), io.Discard), insitu.TooLarge)
	// Exactly at the bound is fine.
	c = newCmd(t, []string{"head", "-c", "1000", "/dev/zero"}, &exec.Options{MaxOutput: 1000})
	if err := c.Transform(ctx, bodyInput("a", ""), io.Discard); err != nil {
		t.Fatal(err)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// A run over a directory with good and bad objects: under ContinueOnError
// the run goes on, the bad objects fail with their codes and leave nothing
// in the sink.
func TestPipelineContinueOnError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Parallel()
	in, outDir := t.TempDir(), t.TempDir()
	files := map[string]string{
		"good1.txt": "alpha\n",
		"good2.txt": "beta\n",
		"bad.txt":   "BAD\n",   // partial output, then exit 1
		"hang.txt":  "HANG\n",  // past the per-object timeout
		"huge.txt":  "HUGE\n",  // over MaxOutput
		"child.txt": "CHILD\n", // leaves a child holding stdout, then fails
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(in, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `x=$(cat)
case "$x" in
BAD) echo partial; echo "not a good input" >&2; exit 1;;
HANG) sleep 30;;
HUGE) exec yes;;
CHILD) sleep 30 & echo partial; exit 2;;
esac
printf '%s\n' "$x" | tr a-z A-Z`
	tmp := t.TempDir()
	c := newCmd(t, []string{"sh", "-c", script}, &exec.Options{MaxOutput: 64 << 10, TempDir: tmp})
	src, err := source.Dir(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Dir(outDir, &sink.DirOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// The pipeline does not wait for a transform past its per-object
	// timeout; the test does, to check what it leaves behind.
	var calls sync.WaitGroup
	tracked := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		calls.Add(1)
		defer calls.Done()
		return c.Transform(ctx, in, out)
	})
	rep, err := pipeline.Run(context.Background(), src, tracked, dst, &pipeline.Options{ContinueOnError: true, Timeout: 500 * time.Millisecond})
	calls.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 2 || rep.Failed != 4 {
		t.Fatalf("report: %v", rep)
	}
	want := map[string]insitu.Code{"bad.txt": insitu.InvalidArgument, "hang.txt": insitu.DeadlineExceeded, "huge.txt": insitu.TooLarge, "child.txt": insitu.InvalidArgument}
	for _, f := range rep.Failures {
		if want[f.Name.Key] != f.Code {
			t.Errorf("failure %v; want code %v", f, want[f.Name.Key])
		}
	}
	var stored []string
	err = filepath.WalkDir(outDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			stored = append(stored, strings.TrimPrefix(p, outDir+"/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("sink holds %v, want only good1.txt and good2.txt", stored)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temporary directories left behind: %v", ents)
	}
	for k, v := range map[string]string{"good1.txt": "ALPHA\n", "good2.txt": "BETA\n"} {
		b, err := os.ReadFile(filepath.Join(outDir, k))
		if err != nil || string(b) != v {
			t.Errorf("%s = %q, %v; want %q", k, b, err, v)
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// Errors of out and of in.Body come back as they are, and the program is
// killed rather than left running.
func TestOutAndBodyErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Parallel()
	ctx := context.Background()
	errSink := errors.New("sink broke")
	pid := filepath.Join(t.TempDir(), "pid")
	c := newCmd(t, []string{"sh", "-c", "echo $$ > " + pid + "; exec yes"}, nil)
	if err := c.Transform(ctx, bodyInput("a", ""), failWriter{errSink}); !errors.Is(err, errSink) {
		t.Fatalf("err = %v, want %v", err, errSink)
	}
	assertGroupGone(t, pid)

	errSource := errors.New("source broke")
	for _, argv := range [][]string{{"cat"}, {"cat", "{input}"}} {
		c = newCmd(t, argv, nil)
		in := &insitu.Input{Object: insitu.Object{Name: name("a")}, Body: io.MultiReader(strings.NewReader("some bytes"), iotest.ErrReader(errSource))}
		var out bytes.Buffer
		if err := c.Transform(ctx, in, &out); !errors.Is(err, errSource) {
			t.Fatalf("%v: err = %v, want %v", argv, err, errSource)
		}
	}
}

// A descendant that leaves the process group (setsid) cannot be killed
// with it; when it holds standard output open, the object fails after a
// bounded wait instead of hanging.
func TestEscapedChildHoldsStdout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	if _, err := osexec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	t.Parallel()
	pid := filepath.Join(t.TempDir(), "pid")
	// The leader waits, through a FIFO, until the child has left the group.
	c := newCmd(t, []string{"sh", "-c", "mkfifo f; setsid sh -c 'echo $$ > " + pid + "; echo > f; exec sleep 30' & read x < f; echo done"}, nil)
	t.Cleanup(func() {
		b, _ := os.ReadFile(pid)
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if st, ok := procState(p); ok && st != "Z" {
				syscall.Kill(p, syscall.SIGKILL) // the escaped sleep this test started
			}
		}
	})
	start := time.Now()
	err := c.Transform(context.Background(), bodyInput("a", ""), io.Discard)
	wantCode(t, err, insitu.Internal)
	if !strings.Contains(err.Error(), "left the process group") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Transform returned after %v", d)
	}
}
