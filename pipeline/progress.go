package pipeline

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// startProgress starts reporting live stats, to Options.Progress or, when
// that is nil and stderr is a terminal, as a line redrawn on stderr. The
// returned function stops it after one final report.
func (r *runner) startProgress() (stop func()) {
	report := r.o.Progress
	if report == nil {
		if !isTerminal(os.Stderr) {
			return func() {}
		}
		report = terminalLine(os.Stderr)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				s := r.stats()
				s.Final = true
				report(s)
				return
			case <-t.C:
				report(r.stats())
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// terminalLine redraws one line on w; the final call ends it with a newline.
func terminalLine(w io.Writer) func(Stats) {
	return func(s Stats) {
		end := ""
		if s.Final {
			end = "\n"
		}
		fmt.Fprintf(w, "\r%s\x1b[K%s", s.Line(), end)
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
