package transport

import (
	"io"

	"github.com/insitu-data/insitu"
)

// sizedReader checks that r holds exactly size bytes, where the request
// announced size >= 0. An end before size bytes, or a byte after them, is
// an [insitu.InvalidArgument] error, which it keeps: a mismatch is the
// caller's mistake, and resending the same input cannot help.
//
// It looks ahead: the Read that brings the count to size first makes sure
// that r ends there, and returns the error instead of the last bytes if it
// does not, so that no receiver ever gets a whole input of the announced
// size from a longer one. On the client this keeps a server from
// transforming (and putting) the first size bytes of a longer input; on
// the server it checks what a client sent.
type sizedReader struct {
	r    io.Reader
	name insitu.Name
	size int64
	what string // who announced the size: "Input.Size" on the client, "the request" on the server

	n   int64 // bytes read from r
	eof bool  // r ended after exactly size bytes
	err error // the mismatch, once seen
}

func newSizedReader(r io.Reader, name insitu.Name, size int64, what string) *sizedReader {
	return &sizedReader{r: r, name: name, size: size, what: what}
}

func (s *sizedReader) Read(p []byte) (int, error) {
	switch {
	case s.err != nil:
		return 0, s.err
	case s.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if left := s.size - s.n; int64(len(p)) > left+1 {
		p = p[:left+1] // at most one byte past the end, to see it
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case s.n > s.size:
		return 0, s.longer()
	case err == io.EOF && s.n < s.size:
		s.err = insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"the input ended after %d bytes, short of the %d that %s announced", s.n, s.size, s.what), s.name)
		return n, s.err
	case err == io.EOF:
		s.eof = true
		return n, io.EOF
	case err != nil:
		return n, err
	case s.n == s.size:
		// Every byte announced is in: the input must end here.
		if err := s.atEnd(); err != nil {
			if s.err != nil {
				return 0, s.err
			}
			return n, err
		}
	}
	return n, nil
}

// maxEmptyReads is how many reads in a row may return nothing and no error
// before a reader is taken to be stuck (as io.ReadAll's callers do).
const maxEmptyReads = 100

// atEnd reads on after size bytes until r ends (nil) or yields a byte (the
// mismatch) or an error of its own; a reader that keeps returning nothing
// fails with io.ErrNoProgress.
func (s *sizedReader) atEnd() error {
	var one [1]byte
	for range maxEmptyReads {
		n, err := s.r.Read(one[:])
		if n > 0 {
			s.n += int64(n)
			return s.longer()
		}
		if err == io.EOF {
			s.eof = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (s *sizedReader) longer() error {
	s.err = insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
		"the input is longer than the %d bytes that %s announced", s.size, s.what), s.name)
	return s.err
}

// mismatch returns the mismatch seen, if any. Call it only once nothing
// else reads s.
func (s *sizedReader) mismatch() error { return s.err }

// check reads the input of a request that announced size 0, before
// anything is sent, and returns the mismatch if it holds a byte.
func (s *sizedReader) check() error {
	if s.size != 0 || s.n != 0 || s.eof || s.err != nil {
		return s.err
	}
	if err := s.atEnd(); err != nil {
		if s.err != nil {
			return s.err
		}
		return err
	}
	return nil
}
