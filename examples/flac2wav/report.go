package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/insitu-data/insitu/pipeline"
)

// logEvery is the time between progress lines when stderr is not a
// terminal (a log, a pipe): a line every half second would flood it. (The
// library writes nothing by itself; a CLI asks, with pipeline.AutoProgress.)
const logEvery = 5 * time.Second

// failuresFile is the -failures file: one JSON object per line for each
// failure, written as it happens in a run of this process, or from the
// report after a job on the cluster. The zero failuresFile (no -failures)
// records nothing.
type failuresFile struct {
	f   *os.File
	log *pipeline.FailureLog
}

// createFailures creates (or truncates) the file at path; "" is none.
func createFailures(path string) (*failuresFile, error) {
	if path == "" {
		return &failuresFile{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-failures: %w", err)
	}
	return &failuresFile{f: f, log: pipeline.NewFailureLog(f)}, nil
}

// onFailure is the file's pipeline.Options.OnFailure: nil when there is
// no file.
func (ff *failuresFile) onFailure() func(pipeline.Failure) {
	if ff.log == nil {
		return nil
	}
	return ff.log.Add
}

// addReport records the failures of a job's report, and says on stderr
// when the report did not keep them all.
func (ff *failuresFile) addReport(rep pipeline.Report, stderr io.Writer) {
	if ff.log == nil {
		return
	}
	for _, f := range rep.Failures {
		ff.log.Add(f)
	}
	if rep.FailuresDropped > 0 {
		fmt.Fprintf(stderr, "flac2wav: the failures file has the first %d failures; the report kept no more (%d others)\n",
			len(rep.Failures), rep.FailuresDropped)
	}
}

// close closes the file and returns the first error writing it.
func (ff *failuresFile) close() error {
	if ff.f == nil {
		return nil
	}
	return errors.Join(ff.log.Err(), ff.f.Close())
}
