package ffmpeg

import (
	"fmt"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	tl := &tail{max: 100}
	if got := tl.oneLine(); got != "no message" {
		t.Fatalf("empty oneLine = %q", got)
	}
	fmt.Fprint(tl, "first line\n\n  second line  \n")
	if got := tl.oneLine(); got != "first line; second line" {
		t.Fatalf("oneLine = %q", got)
	}
	for i := range 50 {
		fmt.Fprintf(tl, "line %02d\n", i)
	}
	s := tl.String()
	if len(s) > 100+len("…") {
		t.Fatalf("kept %d bytes, want at most 100", len(s))
	}
	if !strings.HasPrefix(s, "…line ") || !strings.HasSuffix(s, "line 49\n") {
		t.Fatalf("kept %q, want whole lines ending with the last", s)
	}
}
