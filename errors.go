package insitu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Code classifies an error. A Code is itself an error, so that
// errors.Is(err, insitu.NotFound) reports whether err carries that code.
// Codes travel over the wire as the strings of [Code.String].
type Code uint8

// The error codes. Only [Unavailable] is worth retrying as is; [NotOwner]
// is worth retrying after refreshing the cluster map.
const (
	// Unknown is the code of an error insitu did not classify.
	Unknown Code = iota
	// InvalidArgument: the request can never succeed as made (a bad name,
	// option, template, job spec or input data).
	InvalidArgument
	// NotFound: the object, bucket or directory does not exist.
	NotFound
	// NotOwner: the node does not own the name under its map, which is newer
	// or older than the caller's; refresh the map and retry.
	NotOwner
	// Unavailable: a transient failure (a connection refused or reset, a
	// node shutting down, a 5xx); retrying may succeed.
	Unavailable
	// Canceled: the operation was canceled by its caller.
	Canceled
	// DeadlineExceeded: the operation's deadline, such as the per-object
	// timeout, passed.
	DeadlineExceeded
	// PermissionDenied: the caller is not allowed to do this (bad
	// credentials, an unwritable directory).
	PermissionDenied
	// TooLarge: the object is over a configured size limit.
	TooLarge
	// Internal: a bug, such as a panic in a transform.
	Internal
	// Exists: a write that may only create its object found it there
	// already (a PUT with If-None-Match: *).
	Exists
)

var codeNames = [...]string{
	Unknown:          "unknown",
	InvalidArgument:  "invalid_argument",
	NotFound:         "not_found",
	NotOwner:         "not_owner",
	Unavailable:      "unavailable",
	Canceled:         "canceled",
	DeadlineExceeded: "deadline_exceeded",
	PermissionDenied: "permission_denied",
	TooLarge:         "too_large",
	Internal:         "internal",
	Exists:           "exists",
}

// String returns the code's wire name, such as "not_found".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// Error returns the code's wire name, so a Code can be an errors.Is target.
func (c Code) Error() string { return c.String() }

// ParseCode returns the Code whose wire name is s, or [Unknown].
func ParseCode(s string) Code {
	for c, n := range codeNames {
		if n == s {
			return Code(c)
		}
	}
	return Unknown
}

// MarshalText encodes the code as its wire name.
func (c Code) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes a wire name; names it does not know become [Unknown].
func (c *Code) UnmarshalText(b []byte) error {
	*c = ParseCode(string(b))
	return nil
}

// Error is the error type of insitu: a code, the object it is about (if
// any), a message and an optional cause.
type Error struct {
	Code Code
	Name Name   // the object the error is about; zero when none
	Msg  string // what went wrong, in words; may be empty when Err says it
	Err  error  // the cause; may be nil

	msgHasCause bool // Msg already spells out Err (made by Errorf)
}

// Error formats the error as "name: msg: cause (code)".
func (e *Error) Error() string {
	s := ""
	if e.Name != (Name{}) {
		s = e.Name.String()
	}
	if m := e.text(); m != "" {
		if s != "" {
			s += ": "
		}
		s += m
	}
	return s + " (" + e.Code.String() + ")"
}

// Message returns the error's text without its name and code, "msg: cause",
// for carriers that hold those apart, such as a JSON error body or a
// failure record. It is the code's name when there is no text.
func (e *Error) Message() string {
	if s := e.text(); s != "" {
		return s
	}
	return e.Code.String()
}

// text is "msg: cause", or "" when the error has neither.
func (e *Error) text() string {
	s := ""
	add := func(p string) {
		if p == "" {
			return
		}
		if s != "" {
			s += ": "
		}
		s += p
	}
	add(e.Msg)
	if e.Err != nil && !e.msgHasCause {
		add(causeText(e.Code, e.Err))
	}
	return s
}

// causeText is the text of the cause err of an error with code c: its
// Error(), less the trailing " (code)" when err is an *Error with the
// same code, so that a wrapped node or transport error does not print
// its code twice.
func causeText(c Code, err error) string {
	if ie, ok := err.(*Error); ok && ie.Code == c {
		return strings.TrimSuffix(ie.Error(), " ("+c.String()+")")
	}
	return err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's [Code].
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Errorf returns an *Error with the code and a formatted message and no
// name. A %w verb in format makes the wrapped error its cause.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg, cause := err.Error(), errors.Unwrap(err)
	if ie, ok := cause.(*Error); ok && ie.Code == code {
		msg = strings.Replace(msg, ie.Error(), causeText(code, ie), 1)
	}
	return &Error{Code: code, Msg: msg, Err: cause, msgHasCause: true}
}

// CodeOf returns the code of err: the code of the first *Error in its
// chain; [Canceled] or [DeadlineExceeded] for the context errors; [Unknown]
// for any other non-nil error.
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return Unknown
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Unknown
}

// WithName attaches the object's name to err, wrapping it once: context
// errors, io.EOF and errors that already name an object come back as they
// are; an *Error without a name is copied with the name; any other error
// becomes the cause of an *Error with code [CodeOf](err).
func WithName(err error, name Name) error {
	if err == nil || err == io.EOF || err == context.Canceled || err == context.DeadlineExceeded {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Name != (Name{}) {
			return err
		}
		if err == error(e) {
			c := *e
			c.Name = name
			return &c
		}
	}
	return &Error{Code: CodeOf(err), Name: name, Err: err}
}
