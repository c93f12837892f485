package pipeline

import (
	"io"
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
