package pipeline

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/insitu-data/insitu"
)

// failuresFile writes one JSON line per failure as it happens, so the file
// is useful even if the process dies. The zero of *failuresFile (nil)
// writes nothing.
type failuresFile struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

func openFailuresFile(path string) (*failuresFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		code := insitu.InvalidArgument
		if os.IsPermission(err) {
			code = insitu.PermissionDenied
		}
		return nil, insitu.Errorf(code, "pipeline: creating the failures file: %w", err)
	}
	w := bufio.NewWriter(f)
	return &failuresFile{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

// write appends one failure and flushes it; the caller serializes calls.
func (ff *failuresFile) write(f Failure) {
	if ff == nil || ff.err != nil {
		return
	}
	if ff.err = ff.enc.Encode(f); ff.err == nil {
		ff.err = ff.w.Flush()
	}
}

func (ff *failuresFile) close() error {
	if ff == nil {
		return nil
	}
	err := ff.err
	if cerr := ff.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return insitu.Errorf(insitu.Unknown, "pipeline: writing the failures file: %w", err)
	}
	return nil
}
