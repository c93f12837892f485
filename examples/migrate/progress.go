package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/insitu-data/insitu/pipeline"
)

// logInterval is the time between progress lines when stderr is not a
// terminal (a log, a pipe): a line every half second would flood it.
const logInterval = 5 * time.Second

// progressTo returns how the run shows its progress on w, the program's
// stderr: one live line on a terminal, else a plain line every
// logInterval and a last one at the end. (The library writes nothing by
// itself; a CLI picks.) The interval 0 is the runner's default.
func progressTo(w io.Writer) (func(pipeline.Stats), time.Duration) {
	if isTerminal(w) {
		return pipeline.TerminalProgress(w), 0
	}
	return pipeline.LogProgress(w), logInterval
}

// isTerminal reports whether w is a terminal (a character device other
// than one of TERM=dumb).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// createFailures creates (or truncates) the -failures file at path and
// returns the run's OnFailure, which appends each failure to it as one
// JSON line as it happens, and the function that closes the file and
// returns the first error writing it. With no path there is no file: a
// nil OnFailure and a close that does nothing.
func createFailures(path string) (onFailure func(pipeline.Failure), closeFile func() error, err error) {
	if path == "" {
		return nil, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("-failures: %w", err)
	}
	log := pipeline.NewFailureLog(f)
	return log.Add, func() error { return errors.Join(log.Err(), f.Close()) }, nil
}
