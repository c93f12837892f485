package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// newTransform returns the transform named by -transform, after checking
// the arguments it will get.
func newTransform(name, args string) (insitu.Transform, error) {
	switch name {
	case "copy":
		return insitu.Identity, nil
	case "upper":
		return insitu.TransformFunc(upper), nil
	case "gzip":
		if _, err := gzipLevel(args); err != nil {
			return nil, err
		}
		return insitu.TransformFunc(gzipT), nil
	}
	return nil, fmt.Errorf("-transform %q: want copy, upper or gzip", name)
}

// upper streams its input with ASCII letters in upper case.
func upper(_ context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Body.Read(buf)
		b := buf[:n]
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
		}
		if _, werr := out.Write(b); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// gzipT compresses its input; Args is the level, 1 to 9 (default 6).
func gzipT(_ context.Context, in *insitu.Input, out io.Writer) error {
	level, err := gzipLevel(in.Args)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(out, level)
	if err != nil {
		return err
	}
	zw.Name = in.Name.Key
	if _, err := io.Copy(zw, in.Body); err != nil {
		return err
	}
	return zw.Close()
}

// gzipLevel parses the gzip transform's arguments: a level from 1 to 9,
// or nothing for the default.
func gzipLevel(args string) (int, error) {
	a := strings.TrimSpace(args)
	if a == "" {
		return gzip.DefaultCompression, nil
	}
	l, err := strconv.Atoi(a)
	if err != nil || l < gzip.BestSpeed || l > gzip.BestCompression {
		return 0, insitu.Errorf(insitu.InvalidArgument, "gzip: -args %q: want a level from 1 to 9", args)
	}
	return l, nil
}
