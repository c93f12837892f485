package pipeline

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// startProgress starts reporting the stats that snapshot returns every
// interval, to report or, when that is nil and stderr is a terminal, as a
// line redrawn on stderr. The returned function stops it after one final
// report.
func startProgress(report func(Stats), interval time.Duration, snapshot func() Stats) (stop func()) {
	if report == nil {
		if !isTerminal(os.Stderr) {
			return func() {}
		}
		report = terminalLine(os.Stderr)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				s := snapshot()
				s.Final = true
				report(s)
				return
			case <-t.C:
				report(snapshot())
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
