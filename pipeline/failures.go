package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// A FailureLog appends failures to a writer as JSON lines, one object per
// failure, written as it happens, so that the log is complete up to the
// last failure even if the process dies:
//
//	{"name":{"bucket":"b","key":"k"},"code":"invalid_argument","message":"..."}
//
// Pass its Add method as [Options.OnFailure]. A FailureLog is safe for
// concurrent use: each line is one Write to w, never interleaved with
// another.
type FailureLog struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewFailureLog returns a FailureLog that writes to w; opening and closing
// w are the caller's.
func NewFailureLog(w io.Writer) *FailureLog { return &FailureLog{w: w} }

// Add writes f as one JSON line. After a write error it writes nothing
// more; Err returns that error.
func (l *FailureLog) Add(f Failure) {
	b, err := json.Marshal(f) // a Failure always encodes
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if err == nil {
		_, err = l.w.Write(append(b, '\n'))
	}
	if err != nil {
		l.err = fmt.Errorf("pipeline: writing a failure to the log: %w", err)
	}
}

// Err returns the first error writing to the log, or nil.
func (l *FailureLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
