// Package exec runs any command-line program as an [insitu.Transform]:
// [New] takes the program's argv (never a shell command line) with
// placeholders for the input file, an output file, the object's key and
// the job's args, and [Command.Transform] runs it once per object.
//
// Without an {input} placeholder the object's bytes stream to the
// program's standard input; without an {output} placeholder its standard
// output is the output. Each run has its own process group (on unix
// systems; elsewhere only the process is killed), killed whole when the
// context ends, when the output grows over [Options].MaxOutput, and after
// the program exits, so no child is left behind. A job's args
// reach the program only as separate argv elements, each checked by an
// allow-list ([DefaultAllowArg] by default), so they can never add options
// or name files.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/procio"
)

// The placeholders of an argv given to [New]. {input}, {output}, {key} and
// {bucket} are replaced wherever they appear in an element (so
// "--out={output}" works); {args} must be a whole element.
const (
	// PlaceholderInput is replaced by the absolute path of the input:
	// Input.Path when the object has one, else a temporary file the
	// transform writes the body to and removes afterwards. With it, the
	// program's standard input is empty (/dev/null).
	PlaceholderInput = "{input}"
	// PlaceholderOutput is replaced by the absolute path of a file that
	// does not exist yet, in a private temporary directory; the program
	// must create it. After a zero exit its bytes are the output. With it,
	// the program's standard output is discarded.
	PlaceholderOutput = "{output}"
	// PlaceholderKey is replaced by the object's key (Name.Key).
	PlaceholderKey = "{key}"
	// PlaceholderBucket is replaced by the object's bucket (Name.Bucket).
	PlaceholderBucket = "{bucket}"
	// PlaceholderArgs, a whole argv element, is replaced by the words of
	// the job's args (Input.Args split at spaces and tabs), zero or more
	// elements, each checked by [Options].AllowArg.
	PlaceholderArgs = "{args}"
)

// DefaultMaxOutput is the default of [Options].MaxOutput: 1 GiB.
const DefaultMaxOutput int64 = 1 << 30

// MaxArgsLen bounds the length in bytes of a job's args (Input.Args).
const MaxArgsLen = 4096

// StderrTail is how many bytes from the end of the program's standard
// error an error message keeps (its lines are then joined by "; ").
const StderrTail = 4 << 10

// pipeGrace bounds how long the transform waits for the program's pipes
// to close once its process group is killed (a descendant that left the
// group can hold them open).
const pipeGrace = 2 * time.Second

// ErrNotInstalled is the cause of the error [New] returns when the
// program cannot be found or is not executable; check it with errors.Is
// (the error's code is [insitu.NotFound], as for ffmpeg.Lookup).
var ErrNotInstalled = errors.New("program not installed")

// Options configure [New]. A nil *Options means all defaults.
type Options struct {
	// AllowArg checks one word of a job's args (Input.Args) before the
	// program runs; a non-nil error fails the object with
	// [insitu.InvalidArgument] and the program is not started. Default:
	// [DefaultAllowArg].
	AllowArg func(arg string) error
	// MaxOutput bounds the output in bytes: once the program's standard
	// output, or its {output} file, grows past it, the process group is
	// killed and the object fails with [insitu.TooLarge]. Default
	// [DefaultMaxOutput] (1 GiB); negative means no bound.
	MaxOutput int64
	// OutputExt is the extension of the {output} file name, such as
	// ".wav", for programs that choose a format by it. Default: none (the
	// file is named "output").
	OutputExt string
	// TempDir is where each run's private temporary directory (the
	// program's working directory, holding {output} and a staged
	// {input}) is made. Default os.TempDir().
	TempDir string
	// Env is the program's environment, as "KEY=value" entries. Default
	// (nil): the environment of the current process.
	Env []string
	// Logger receives a debug record per object and a warning when a
	// temporary directory cannot be removed. Default: discard.
	Logger *slog.Logger
}

// DefaultAllowArg is the default [Options].AllowArg. It refuses an empty
// word, a word over 256 bytes, one that starts with '-' (an option), one
// that contains a path separator ('/' or '\'), a NUL or another control
// character, and the words "." and ".." — so a job's args can neither add
// options nor name files outside the run's empty working directory.
func DefaultAllowArg(arg string) error {
	switch {
	case arg == "":
		return errors.New("empty argument")
	case len(arg) > 256:
		return fmt.Errorf("argument %.40q… is %d bytes long; at most 256", arg, len(arg))
	case strings.HasPrefix(arg, "-"):
		return fmt.Errorf("argument %q starts with '-': job args cannot add options", arg)
	case strings.ContainsAny(arg, `/\`):
		return fmt.Errorf("argument %q contains a path separator: job args cannot name files", arg)
	case arg == "." || arg == "..":
		return fmt.Errorf("argument %q names a directory: job args cannot name files", arg)
	}
	for i := 0; i < len(arg); i++ {
		if c := arg[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("argument %q has the control character %q", arg, c)
		}
	}
	return nil
}

// Command is an [insitu.Transform] that runs a program once per object. It
// is safe for concurrent use.
//
// Errors (each naming the object): bad job args are
// [insitu.InvalidArgument] and the program is not run; a non-zero exit
// (the program rejected the input) is [insitu.InvalidArgument] with the
// tail of its standard error; an output over MaxOutput is
// [insitu.TooLarge]; a program that cannot be started (removed or made
// non-executable after New), is killed by a signal it did not get from
// the transform, or exits 0 without writing its {output} file is
// [insitu.Internal], and so is a descendant that left the process group
// (setsid) and still holds standard output open 2 s after the program
// exited; a missing Input.Path is [insitu.NotFound]; when ctx
// ends the process group is killed and ctx's error (code
// [insitu.Canceled] or [insitu.DeadlineExceeded]) is returned; errors
// reading in.Body or writing out are returned as they are.
//
// Output is all-or-nothing: with {output}, nothing is written to out
// unless the program exits 0; with standard output streamed to out, a
// failure returns an error after part of the output may have been
// written, and the caller (a pipeline's sink) discards it. A program that
// exits 0 without reading all of its standard input succeeds: it chose to
// stop.
type Command struct {
	bin       string
	argv      []string // argv[1:], with placeholders
	hasInput  bool
	hasOutput bool
	hasArgs   bool
	allow     func(string) error
	maxOut    int64
	outExt    string
	tempDir   string
	env       []string
	log       *slog.Logger
}

// New returns a Command that runs argv: argv[0] is the program, a name
// searched on PATH or a path, the rest its arguments with the
// placeholders {input}, {output}, {key}, {bucket} and {args} (see
// [PlaceholderInput] and the others). No shell is involved: each element
// is one argument as written.
//
// It fails with [insitu.InvalidArgument] when argv is empty, {args} is
// part of an element, or the options are invalid; when the program cannot
// be found or is not executable the error wraps [ErrNotInstalled], has
// the code [insitu.NotFound] (as ffmpeg.Lookup's when ffmpeg is missing),
// names the program, says where it was looked for and how to install it.
func New(argv []string, opts *Options) (*Command, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "exec: empty argv; argv[0] is the program")
	}
	if o.AllowArg == nil {
		o.AllowArg = DefaultAllowArg
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if strings.ContainsAny(o.OutputExt, `/\`) || strings.ContainsRune(o.OutputExt, 0) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "exec: OutputExt %q contains a path separator or NUL", o.OutputExt)
	}
	if fi, err := os.Stat(o.TempDir); err != nil || !fi.IsDir() {
		return nil, insitu.Errorf(insitu.InvalidArgument, "exec: TempDir %q is not a directory", o.TempDir)
	}
	c := &Command{
		argv:    append([]string(nil), argv[1:]...),
		allow:   o.AllowArg,
		maxOut:  o.MaxOutput,
		outExt:  o.OutputExt,
		tempDir: o.TempDir,
		env:     o.Env,
		log:     o.Logger,
	}
	for _, a := range c.argv {
		if a != PlaceholderArgs && strings.Contains(a, PlaceholderArgs) {
			return nil, insitu.Errorf(insitu.InvalidArgument, "exec: argument %q: %s must be a whole argument", a, PlaceholderArgs)
		}
		c.hasArgs = c.hasArgs || a == PlaceholderArgs
		c.hasInput = c.hasInput || strings.Contains(a, PlaceholderInput)
		c.hasOutput = c.hasOutput || strings.Contains(a, PlaceholderOutput)
	}
	bin, err := osexec.LookPath(argv[0])
	if err == nil {
		bin, err = filepath.Abs(bin)
	}
	if err != nil {
		return nil, notInstalled(argv[0], err)
	}
	c.bin = bin
	return c, nil
}

// notInstalled is the error of New when the program argv0 cannot be run:
// lookErr is why, from LookPath.
func notInstalled(argv0 string, lookErr error) error {
	var e *osexec.Error
	if errors.As(lookErr, &e) {
		lookErr = e.Err // without Go's "exec: name:" prefix, named below
	}
	hint := "install it (with the system's package manager, such as apt-get or brew) or give its path as argv[0]"
	if strings.ContainsRune(argv0, filepath.Separator) || strings.ContainsRune(argv0, '/') {
		hint = "no executable file at that path: install the program there or fix the path"
	}
	return insitu.Errorf(insitu.NotFound, "exec: %q: %w: %v; %s", argv0, ErrNotInstalled, lookErr, hint)
}

// Binary returns the absolute path of the program the command runs.
func (c *Command) Binary() string { return c.bin }

// expand returns the program's arguments for one object.
func (c *Command) expand(name insitu.Name, inPath, outPath string, args []string) ([]string, error) {
	r := strings.NewReplacer(PlaceholderInput, inPath, PlaceholderOutput, outPath, PlaceholderKey, name.Key, PlaceholderBucket, name.Bucket)
	var out []string
	for _, a := range c.argv {
		if a == PlaceholderArgs {
			out = append(out, args...)
			continue
		}
		if (a == PlaceholderKey && strings.HasPrefix(name.Key, "-")) || (a == PlaceholderBucket && strings.HasPrefix(name.Bucket, "-")) {
			return nil, fmt.Errorf("the object's name %q starts with '-' and would be read as an option", name.String())
		}
		out = append(out, r.Replace(a))
	}
	return out, nil
}

// jobArgs splits and checks a job's args.
func (c *Command) jobArgs(s string) ([]string, error) {
	if len(s) > MaxArgsLen {
		return nil, fmt.Errorf("args are %d bytes long; at most %d", len(s), MaxArgsLen)
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; (ch < ' ' && ch != '\t') || ch == 0x7f {
			return nil, fmt.Errorf("control character %q at byte %d; args are one line of words separated by spaces", ch, i)
		}
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(words) > 0 && !c.hasArgs {
		return nil, fmt.Errorf("the command takes no args (its argv has no %s)", PlaceholderArgs)
	}
	for _, w := range words {
		if err := c.allow(w); err != nil {
			return nil, err
		}
	}
	return words, nil
}

// Transform runs the program on one object and streams its output to out.
func (c *Command) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(code insitu.Code, msg string, err error) error {
		return &insitu.Error{Code: code, Name: in.Name, Msg: "exec " + filepath.Base(c.bin) + ": " + msg, Err: err}
	}
	args, err := c.jobArgs(in.Args)
	if err != nil {
		return fail(insitu.InvalidArgument, "job args", err)
	}
	if in.Path == "" && in.Body == nil {
		return fail(insitu.InvalidArgument, "input has neither Path nor Body", nil)
	}
	dir, err := os.MkdirTemp(c.tempDir, ".insitu-exec-*")
	if err != nil {
		return fmt.Errorf("exec: temporary directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			c.log.Warn("exec: cannot remove temporary directory", "path", dir, "err", err)
		}
	}()

	var inPath, outPath string
	if c.hasInput {
		if in.Path != "" {
			if inPath, err = filepath.Abs(in.Path); err != nil {
				return fmt.Errorf("exec: input path: %w", err)
			}
			if _, err := os.Stat(inPath); errors.Is(err, fs.ErrNotExist) {
				return fail(insitu.NotFound, "input file not found", err)
			}
		} else {
			inPath = filepath.Join(dir, "input"+safeExt(in.Name.Key))
			if err := stage(ctx, inPath, in.Body); err != nil {
				return err
			}
		}
	}
	if c.hasOutput {
		outPath = filepath.Join(dir, "output"+c.outExt)
	}
	argv, err := c.expand(in.Name, inPath, outPath, args)
	if err != nil {
		return fail(insitu.InvalidArgument, "argv", err)
	}

	start := time.Now()
	var stdout io.Writer
	if !c.hasOutput {
		stdout = out
	}
	if err := c.run(ctx, in, dir, argv, stdout, outPath, fail); err != nil {
		return err
	}
	c.log.Debug("exec: ran", "name", in.Name.String(), "program", c.bin, "elapsed", time.Since(start))
	if !c.hasOutput {
		return nil
	}
	f, err := os.Open(outPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(insitu.Internal, "exited 0 without writing its "+PlaceholderOutput+" file", err)
	}
	if err != nil {
		return fmt.Errorf("exec: output file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && c.maxOut >= 0 && fi.Size() > c.maxOut {
		return fail(insitu.TooLarge, fmt.Sprintf("output is %d bytes; at most %d (MaxOutput)", fi.Size(), c.maxOut), nil)
	}
	_, err = io.Copy(out, procio.CtxReader{Ctx: ctx, R: f})
	return err
}

// safeExt returns key's extension when it is short and plain, else "".
func safeExt(key string) string {
	ext := filepath.Ext(key)
	if len(ext) < 2 || len(ext) > 16 {
		return ""
	}
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return ext
}

// stage writes body to the new file path.
func stage(ctx context.Context, path string, body io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("exec: staging the input: %w", err)
	}
	_, err = io.Copy(f, procio.CtxReader{Ctx: ctx, R: body})
	if cerr := f.Close(); err == nil && cerr != nil {
		return fmt.Errorf("exec: staging the input: %w", cerr)
	}
	return err
}

// run runs the program with argv in dir and waits for it and its pipes.
// stdout, when not nil, receives its standard output (bounded by
// MaxOutput); outPath, when not empty, is watched against MaxOutput.
func (c *Command) run(ctx context.Context, in *insitu.Input, dir string, argv []string, stdout io.Writer, outPath string, fail func(insitu.Code, string, error) error) error {
	cmd := osexec.Command(c.bin, argv...)
	cmd.Dir = dir
	cmd.Env = c.env
	newGroup(cmd)

	var (
		closeAfterStart []*os.File // the child's ends
		readers         sync.WaitGroup
		stdinW          *os.File
		pipes           []*os.File // our read ends, closed at the end
	)
	defer func() {
		for _, f := range closeAfterStart {
			f.Close()
		}
		for _, f := range pipes {
			f.Close()
		}
	}()
	newPipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("exec: pipe: %w", err)
		}
		return r, w, nil
	}

	// tooLarge is closed when the output passes MaxOutput, outFailed when
	// writing it to out fails: either kills the group.
	tooLarge, outFailed := make(chan struct{}), make(chan struct{})
	var tooLargeOnce sync.Once
	overLimit := func() { tooLargeOnce.Do(func() { close(tooLarge) }) }

	// All pipes first, so that a failure leaves no reader running.
	er, ew, err := newPipe()
	if err != nil {
		return err
	}
	cmd.Stderr, closeAfterStart, pipes = ew, append(closeAfterStart, ew), append(pipes, er)
	var or *os.File
	if stdout != nil {
		var ow *os.File
		if or, ow, err = newPipe(); err != nil {
			return err
		}
		cmd.Stdout, closeAfterStart, pipes = ow, append(closeAfterStart, ow), append(pipes, or)
	}
	if !c.hasInput { // standard input: the body
		ir, iw, err := newPipe()
		if err != nil {
			return err
		}
		cmd.Stdin, closeAfterStart, stdinW = ir, append(closeAfterStart, ir), iw
	}

	// Standard error: its tail goes into errors.
	stderr := &procio.Tail{Max: StderrTail}
	readers.Add(1)
	go func() {
		defer readers.Done()
		io.Copy(stderr, er) //nolint:errcheck // a read error ends the tail
	}()

	// Standard output: to out, bounded; or discarded.
	var outErr error
	if stdout != nil {
		lw := &limitWriter{w: stdout, max: c.maxOut, over: overLimit}
		readers.Add(1)
		go func() {
			defer readers.Done()
			if _, err := io.Copy(lw, or); err != nil && !lw.exceeded {
				outErr = err
				close(outFailed)
			}
			if lw.exceeded || outErr != nil {
				io.Copy(io.Discard, or) //nolint:errcheck // drain so the program is not blocked before it is killed
			}
		}()
	}

	var copyDone chan error
	if err := cmd.Start(); err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		for _, f := range closeAfterStart {
			f.Close()
		}
		closeAfterStart = nil
		readers.Wait()
		return fail(insitu.Internal, fmt.Sprintf("cannot start %s", c.bin), err)
	}
	for _, f := range closeAfterStart {
		f.Close() // the child has its copies
	}
	closeAfterStart = nil

	if stdinW != nil {
		copyDone = make(chan error, 1)
		go func() {
			_, err := io.Copy(stdinW, procio.BodyReader{R: in.Body})
			stdinW.Close()
			copyDone <- err
		}()
	}

	// Watch ctx and, with {output}, the output file's size.
	waitDone := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		var tick <-chan time.Time
		if outPath != "" && c.maxOut >= 0 {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-waitDone:
				return
			case <-ctx.Done():
				killGroup(cmd)
				return
			case <-tooLarge:
				killGroup(cmd)
				return
			case <-outFailed:
				killGroup(cmd)
				return
			case <-tick:
				if fi, err := os.Stat(outPath); err == nil && fi.Size() > c.maxOut {
					overLimit()
				}
			}
		}
	}()
	waitErr := cmd.Wait() // the leader has exited; its pipes are ours
	close(waitDone)
	<-watchDone
	killGroup(cmd) // no child outlives the run

	// Wait for the pipes to close; a descendant that left the group may
	// hold them, so close our ends after a grace period.
	held := false // a pipe stayed open after the group was killed
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(pipeGrace):
		held = true
		for _, f := range pipes {
			f.Close()
		}
		<-readersDone
	}
	var copyErr error
	if copyDone != nil {
		copyErr = <-copyDone
	}

	select {
	case <-tooLarge:
		return fail(insitu.TooLarge, fmt.Sprintf("output over %d bytes (MaxOutput); the program was killed", c.maxOut), nil)
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var be procio.BodyError
	if errors.As(copyErr, &be) {
		return be.Err // the source's error, as it is
	}
	if held && stdout != nil && errors.Is(outErr, os.ErrClosed) {
		return fail(insitu.Internal, fmt.Sprintf("a process that left the process group held standard output open %v after the program exited; the output may be incomplete", pipeGrace), nil)
	}
	if outErr != nil {
		return outErr // writing out failed
	}
	if waitErr != nil {
		msg := stderr.OneLine("no message on standard error")
		var ee *osexec.ExitError
		if errors.As(waitErr, &ee) && ee.ExitCode() > 0 {
			return fail(insitu.InvalidArgument, fmt.Sprintf("exit status %d: %s", ee.ExitCode(), msg), waitErr)
		}
		return fail(insitu.Internal, msg, waitErr)
	}
	return nil
}

// limitWriter passes writes to w until more than max bytes in all would
// be written (max < 0: no bound); it then calls over and fails.
type limitWriter struct {
	w        io.Writer
	max, n   int64
	over     func()
	exceeded bool
}

var errTooLarge = errors.New("exec: output over MaxOutput")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.max >= 0 && l.n+int64(len(p)) > l.max {
		l.exceeded = true
		l.over()
		return 0, errTooLarge
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}
