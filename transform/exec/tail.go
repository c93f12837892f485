package exec

import (
	"bytes"
	"strings"
)

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// oneLine returns what was kept as one line, its lines joined by "; ",
// or "no message on standard error".
func (t *tail) oneLine() string {
	b := t.buf
	prefix := ""
	if t.cut {
		// Start at a line boundary when one is near.
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < 200 {
			b = b[i+1:]
		}
		prefix = "…"
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "no message on standard error"
	}
	return prefix + strings.Join(lines, "; ")
}
