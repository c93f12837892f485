package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/insitu-data/insitu/pipeline"
)

// logEvery is the time between progress lines when stderr is not a
// terminal (a log, a pipe): a line every half second would flood it. (The
// library writes nothing by itself; a CLI asks, with pipeline.AutoProgress.)
const logEvery = 5 * time.Second

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
