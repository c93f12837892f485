package insitu_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

func TestCodesRoundTrip(t *testing.T) {
	for c := insitu.Unknown; c <= insitu.Internal; c++ {
		if got := insitu.ParseCode(c.String()); got != c {
			t.Errorf("ParseCode(%q) = %v, want %v", c.String(), got, c)
		}
		b, _ := c.MarshalText()
		var back insitu.Code
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("text round trip of %v = %v, %v", c, back, err)
		}
	}
	if got := insitu.ParseCode("no_such_code"); got != insitu.Unknown {
		t.Errorf("ParseCode(unknown) = %v", got)
	}
}

func TestErrorIsAndAs(t *testing.T) {
	cause := fs.ErrNotExist
	err := insitu.Errorf(insitu.NotFound, "opening shard: %w", cause)
	if !errors.Is(err, insitu.NotFound) || errors.Is(err, insitu.Unavailable) {
		t.Fatalf("errors.Is on %v is wrong", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("cause lost: %v", err)
	}
	if got, want := err.Error(), "opening shard: file does not exist (not_found)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	named := insitu.WithName(err, insitu.Name{Bucket: "b", Key: "k"})
	var e *insitu.Error
	if !errors.As(named, &e) || e.Name.Key != "k" || e.Code != insitu.NotFound {
		t.Fatalf("WithName = %#v", named)
	}
	if got, want := named.Error(), "b/k: opening shard: file does not exist (not_found)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// Wrapped once: naming again changes nothing.
	if again := insitu.WithName(named, insitu.Name{Key: "other"}); again != named {
		t.Errorf("WithName wrapped a named error again: %v", again)
	}
}

func TestWithNameLeavesContextErrorsAlone(t *testing.T) {
	n := insitu.Name{Key: "k"}
	for _, err := range []error{nil, io.EOF, context.Canceled, context.DeadlineExceeded} {
		if got := insitu.WithName(err, n); got != err {
			t.Errorf("WithName(%v) = %v, want it unchanged", err, got)
		}
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want insitu.Code
	}{
		{nil, insitu.Unknown},
		{errors.New("plain"), insitu.Unknown},
		{context.Canceled, insitu.Canceled},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), insitu.DeadlineExceeded},
		{fmt.Errorf("op: %w", insitu.Errorf(insitu.NotOwner, "map v3")), insitu.NotOwner},
		{insitu.WithName(errors.New("boom"), insitu.Name{Key: "k"}), insitu.Unknown},
	}
	for _, tc := range tests {
		if got := insitu.CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	e := &insitu.Error{Code: insitu.NotFound, Name: insitu.Name{Bucket: "b", Key: "k"}, Msg: "no such object", Err: fs.ErrNotExist}
	if got, want := e.Message(), "no such object: file does not exist"; got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
	if got := (&insitu.Error{Code: insitu.Unavailable}).Message(); got != "unavailable" {
		t.Errorf("empty Message() = %q, want the code's name", got)
	}
	if got, want := insitu.Errorf(insitu.Internal, "wrapped: %w", io.EOF).(*insitu.Error).Message(), "wrapped: EOF"; got != want {
		t.Errorf("Errorf Message() = %q, want %q", got, want)
	}
}

func TestValidatePut(t *testing.T) {
	name := insitu.Name{Bucket: "b", Key: "k"}
	body := strings.NewReader("abc")
	for _, tc := range []struct {
		r    io.Reader
		size int64
		ok   bool
	}{{body, 3, true}, {body, -1, true}, {body, 0, true}, {nil, 3, false}, {body, -2, false}} {
		err := insitu.ValidatePut(name, tc.r, tc.size)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, insitu.InvalidArgument)) {
			t.Errorf("ValidatePut(nil reader: %v, size %d) = %v", tc.r == nil, tc.size, err)
		}
		if err != nil && !strings.Contains(err.Error(), "b/k") {
			t.Errorf("%v does not name the object", err)
		}
	}
}

// TestWrappedCodeOnce: an error that wraps an *Error of the same code
// prints the code once, whether made by a struct literal or by Errorf
// (the coordinator's "node n1: starting the job: ..." printed it twice).
func TestWrappedCodeOnce(t *testing.T) {
	inner := &insitu.Error{Code: insitu.PermissionDenied, Msg: "node n1: missing or wrong bearer token"}
	for _, err := range []error{
		&insitu.Error{Code: insitu.PermissionDenied, Msg: "node n1: starting the job", Err: inner},
		insitu.Errorf(insitu.PermissionDenied, "node n1: starting the job: %w", inner),
	} {
		want := "node n1: starting the job: node n1: missing or wrong bearer token (permission_denied)"
		if got := err.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		if !errors.Is(err, insitu.PermissionDenied) || !errors.Is(err, inner) {
			t.Errorf("%v: lost its code or cause", err)
		}
	}
	// A cause with another code keeps it: it says something.
	other := &insitu.Error{Code: insitu.Unavailable, Msg: "outer", Err: &insitu.Error{Code: insitu.NotFound, Msg: "inner"}}
	if got, want := other.Error(), "outer: inner (not_found) (unavailable)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
