package pipeline

import (
	"io"
	"os"
	"time"
)

// TerminalProgress returns an [Options.Progress] function that draws the
// stats as one line on w, a terminal, redrawn in place on each call
// (carriage return, the line, erase to its end) and ended with a newline
// by the final call. The line is [Stats.Line]. Each call is one Write.
// Calls must not overlap (the runner's never do).
func TerminalProgress(w io.Writer) func(Stats) {
	return func(s Stats) {
		end := ""
		if s.Final {
			end = "\n"
		}
		io.WriteString(w, "\r"+s.Line()+"\x1b[K"+end)
	}
}

// LogProgress returns an [Options.Progress] function for logs and pipes,
// where a redrawn line would pile up: each call writes one plain line to
// w, "progress at <elapsed>: " and [Stats.Line], and the final call marks
// its line "progress at <elapsed> (final): ". Each call is one Write.
// Calls are as frequent as Options.ProgressInterval: a few seconds suits a
// log. Calls must not overlap (the runner's never do).
func LogProgress(w io.Writer) func(Stats) {
	return func(s Stats) {
		mark := ""
		if s.Final {
			mark = " (final)"
		}
		io.WriteString(w, "progress at "+roundElapsed(s.Elapsed).String()+mark+": "+s.Line()+"\n")
	}
}

// roundElapsed rounds d to a precision that reads well in a log line.
func roundElapsed(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// AutoProgress returns the [Options.Progress] function a command-line tool
// usually wants on w, its stderr: [TerminalProgress] when w is a terminal
// (an *os.File that is a character device, with TERM not "dumb"), else
// [LogProgress] at most once per logEvery of the run's elapsed time (0
// means every call), plus the final line. Calls must not overlap (the
// runner's never do).
func AutoProgress(w io.Writer, logEvery time.Duration) func(Stats) {
	if isTerminal(w) {
		return TerminalProgress(w)
	}
	log := LogProgress(w)
	var next time.Duration
	return func(s Stats) {
		if s.Final || s.Elapsed >= next {
			log(s)
			next = s.Elapsed + logEvery
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
