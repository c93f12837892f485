package procio_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/insitu-data/insitu/internal/procio"
)

func TestTail(t *testing.T) {
	tl := &procio.Tail{Max: 100}
	if got := tl.OneLine("no message"); got != "no message" {
		t.Fatalf("empty oneLine = %q", got)
	}
	fmt.Fprint(tl, "first line\n\n  second line  \n")
	if got := tl.OneLine("no message"); got != "first line; second line" {
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
