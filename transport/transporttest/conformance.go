package transporttest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// Conformance is the transform a server under [RunServer] serves. What it
// does with an object depends on the segments of the object's key, so
// that the suite can ask for each behaviour over the wire; a server
// written in another language implements the same:
//
//	echo/...         copies the input to the output
//	info/...         reads the input to its end, then writes the lines
//	                 bucket, key, Input.Size, owner, path, the number of
//	                 bytes read, and last the args (which may hold
//	                 newlines), joined by "\n"
//	fail/CODE/...    fails with the code named CODE (such as not_found)
//	                 and the message args ("failed as asked" when the
//	                 args are empty), reading nothing
//	late/CODE/...    copies the input to the output, then fails as fail
//	skip/...         drops the object (insitu.ErrSkip), reading nothing
//	skiplate/...     copies the input to the output, then drops the object
//	wait/...         reads nothing and waits until its context ends (the
//	                 request canceled, its timeout passed, the server
//	                 shutting down), then returns the context's error
//	gen/N/...        writes N bytes, byte i being i mod 251, reading
//	                 nothing
//	readpath/...     opens the file at Input.Path itself, as a tool such
//	                 as ffmpeg does, and copies it to the output, reading
//	                 nothing from Input.Body; fails with invalid_argument
//	                 when Input.Path is empty
//
// Any other key fails with [insitu.InvalidArgument].
var Conformance insitu.Transform = insitu.TransformFunc(conformance)

func conformance(ctx context.Context, in *insitu.Input, out io.Writer) error {
	segs := strings.Split(in.Name.Key, "/")
	fail := func() error {
		msg := in.Args
		if msg == "" {
			msg = "failed as asked"
		}
		code := insitu.Unknown
		if len(segs) > 1 {
			code = insitu.ParseCode(segs[1])
		}
		return &insitu.Error{Code: code, Msg: msg}
	}
	switch segs[0] {
	case "echo":
		_, err := io.Copy(out, in.Body)
		return err
	case "info":
		n, err := io.Copy(io.Discard, in.Body)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n%s\n%d\n%s\n%s\n%d\n%s", in.Name.Bucket, in.Name.Key, in.Size, in.Owner, in.Path, n, in.Args)
		return err
	case "fail":
		return fail()
	case "late":
		if _, err := io.Copy(out, in.Body); err != nil {
			return err
		}
		return fail()
	case "skip":
		return insitu.ErrSkip
	case "skiplate":
		if _, err := io.Copy(out, in.Body); err != nil {
			return err
		}
		return insitu.ErrSkip
	case "wait":
		<-ctx.Done()
		return ctx.Err()
	case "readpath":
		if in.Path == "" {
			return insitu.Errorf(insitu.InvalidArgument, "readpath: the input has no Path")
		}
		f, err := os.Open(in.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(out, f)
		return err
	case "gen":
		if len(segs) < 2 {
			break
		}
		n, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil || n < 0 {
			break
		}
		_, err = io.Copy(out, io.LimitReader(&pattern{}, n))
		return err
	}
	return insitu.Errorf(insitu.InvalidArgument, "key %q names no behaviour of the conformance transform", in.Name.Key)
}

// pattern reads the bytes of gen/N: byte i is i mod 251.
type pattern struct{ i int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for k := range b {
		b[k] = byte(p.i % 251)
		p.i++
	}
	return len(b), nil
}

// patternBytes returns the first n bytes of gen/N's output.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	(&pattern{}).Read(b)
	return b
}
