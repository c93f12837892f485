// Package wire is the one place that knows how insitu's HTTP APIs (the
// storage node's and the transform server's, docs/PROTOCOL.md) spell
// things on the wire: header names, the JSON error body, and the mapping
// between error codes and HTTP statuses. Servers answer errors with
// [WriteError]; clients turn error responses back into *insitu.Error with
// [DecodeError].
//
// One rule for codes everywhere: a code travels as it is. An error with no
// code of its own is sent as unknown (HTTP 500), never promoted to another
// code, so that a client sees what an in-process call would have returned.
// A response that carries no code (an answer from a proxy, say) gets the
// code its status suggests ([CodeOfStatus]).
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// Headers of the node API and the transform server's HTTP modes. Values
// that may hold any text (args, paths, owners, messages) are
// percent-encoded UTF-8.
const (
	// MapVersion carries the version of the map a node answered with, on
	// every authenticated response of a node (and on NotOwner errors).
	MapVersion = "Insitu-Map-Version"
	// ErrorCode carries the code of a failed request, so that a HEAD
	// request, which has no body, still gets it; as a trailer, the code of
	// a transform that failed after its output began to stream.
	ErrorCode = "Insitu-Error-Code"
	// ErrorMessage is the trailer that goes with ErrorCode.
	ErrorMessage = "Insitu-Error-Message"
	// Checksum carries the XXH64 of a stored object as 16 lowercase hex
	// digits (the response to a PUT).
	Checksum = "Insitu-Checksum"
	// Owner carries the ID of the node that owns an object.
	Owner = "Insitu-Owner"
	// Version carries, on a node's GET and HEAD of an object, the
	// object's version: "<size>-<mtime in ns>" of its file
	// (insitu.Object.Version).
	Version = "Insitu-Version"
	// Job and Input go with a job's PUT of an output to the output's
	// owner: the job's ID and the input's name (percent-encoded
	// "bucket/key"), so that the owner can refuse a second, different
	// input renamed to the same output.
	Job   = "Insitu-Job"
	Input = "Insitu-Input"
	// Origin carries the text of an object's insitu.Origin: on a PUT, the
	// origin to record with the bytes; on the answer to a GET or HEAD, the
	// origin recorded (absent when none is).
	Origin = "Insitu-Origin"

	// The request headers of hpush and hpull.
	Args        = "Insitu-Args"
	Path        = "Insitu-Path"
	Size        = "Insitu-Size"
	Timeout     = "Insitu-Timeout"
	SourceURL   = "Insitu-Source-Url"
	SourceToken = "Insitu-Source-Token"
	PutURL      = "Insitu-Put-Url"
	PutToken    = "Insitu-Put-Token"
	// PutOrigin is the origin a direct put sends on as its Origin header.
	PutOrigin = "Insitu-Put-Origin"
	// Skipped is "true" on a 204 response of hpush or hpull (or in the
	// trailer of a 200 one) when the transform dropped the object with
	// [insitu.ErrSkip].
	Skipped = "Insitu-Skipped"

	// Window and MaxStreams are the WebSocket handshake's flow-control
	// headers.
	Window     = "Insitu-Window"
	MaxStreams = "Insitu-Max-Streams"
)

// StatusClientClosed is the status (nginx's) that carries
// [insitu.Canceled]: the client canceled the request.
const StatusClientClosed = 499

// MaxErrorBody bounds how much of an error response a client reads.
const MaxErrorBody = 64 << 10

// ErrorBody is the JSON body of every error response, and the payload of
// a WebSocket ERROR frame, such as {"code":"not_found","message":"no such
// object"}.
type ErrorBody struct {
	Code    insitu.Code `json:"code"`
	Message string      `json:"message"`
	// MapVersion is the version of the node's map, set on NotOwner errors.
	MapVersion int64 `json:"map_version,omitempty"`
}

// Body returns the wire form of err: its code (see the package doc for
// the rule) and its text without the object's name and the trailing
// " (code)", which the client knows or reads apart.
func Body(err error) ErrorBody {
	code := insitu.CodeOf(err)
	msg := err.Error()
	var e *insitu.Error
	if errors.As(err, &e) && error(e) == err {
		msg = e.Message()
	}
	// An error that wraps an *insitu.Error (fmt.Errorf("...: %w", e))
	// ends with e's " (code)", which the client adds back.
	msg = strings.TrimSuffix(msg, " ("+code.String()+")")
	if msg == "" {
		msg = code.String()
	}
	return ErrorBody{Code: code, Message: msg}
}

// Status returns the HTTP status that carries the code.
func Status(c insitu.Code) int {
	switch c {
	case insitu.InvalidArgument:
		return http.StatusBadRequest
	case insitu.NotFound:
		return http.StatusNotFound
	case insitu.NotOwner:
		return http.StatusConflict
	case insitu.Unavailable:
		return http.StatusServiceUnavailable
	case insitu.Canceled:
		return StatusClientClosed
	case insitu.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case insitu.PermissionDenied:
		return http.StatusForbidden
	case insitu.TooLarge:
		return http.StatusRequestEntityTooLarge
	case insitu.Exists:
		return http.StatusPreconditionFailed
	}
	return http.StatusInternalServerError
}

// CodeOfStatus guesses the code of an HTTP error response that carries
// none; it is the inverse of [Status] where that is one to one.
func CodeOfStatus(status int) insitu.Code {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusLengthRequired:
		return insitu.InvalidArgument
	case http.StatusNotFound:
		return insitu.NotFound
	case http.StatusConflict, http.StatusMisdirectedRequest:
		return insitu.NotOwner
	case http.StatusUnauthorized, http.StatusForbidden:
		return insitu.PermissionDenied
	case http.StatusRequestEntityTooLarge:
		return insitu.TooLarge
	case StatusClientClosed:
		return insitu.Canceled
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return insitu.DeadlineExceeded
	case http.StatusInternalServerError:
		return insitu.Internal
	case http.StatusPreconditionFailed:
		return insitu.Exists
	}
	if status >= 500 {
		return insitu.Unavailable
	}
	return insitu.Unknown
}

// WriteError answers with err's [Body] and the [Status] of its code, and
// returns the body it sent.
func WriteError(w http.ResponseWriter, err error) ErrorBody {
	b := Body(err)
	WriteBody(w, Status(b.Code), b)
	return b
}

// WriteBody answers with the error body b and status (0: the status of
// b's code). It sets the ErrorCode header, so that a HEAD response carries
// the code too.
func WriteBody(w http.ResponseWriter, status int, b ErrorBody) {
	if status == 0 {
		status = Status(b.Code)
	}
	h := w.Header()
	h.Set(ErrorCode, b.Code.String())
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	raw, _ := json.Marshal(b)
	_, _ = w.Write(append(raw, '\n'))
}

// DecodeError turns an error response into an *insitu.Error about name,
// whose message starts with who (such as "node n2") when who is not
// empty, and returns the body it decoded. It reads at most MaxErrorBody
// bytes of the body and closes it. The code is the body's; else the
// ErrorCode header's; else [CodeOfStatus]. The message is the body's; else
// the start of the body's text, after the status; else the status.
func DecodeError(resp *http.Response, name insitu.Name, who string) (ErrorBody, error) {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	var b ErrorBody
	if len(raw) == 0 || json.Unmarshal(raw, &b) != nil || b.Message == "" && b.Code == insitu.Unknown {
		b = ErrorBody{Code: insitu.ParseCode(resp.Header.Get(ErrorCode))}
		text := strings.TrimSpace(string(raw))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		switch {
		case text == "" || resp.Request != nil && resp.Request.Method == http.MethodHead:
			b.Message = resp.Status
		default:
			b.Message = resp.Status + ": " + text
		}
	}
	if b.Code == insitu.Unknown && resp.Header.Get(ErrorCode) == "" {
		b.Code = CodeOfStatus(resp.StatusCode)
	}
	if b.MapVersion == 0 {
		if v, err := strconv.ParseInt(resp.Header.Get(MapVersion), 10, 64); err == nil {
			b.MapVersion = v
		}
	}
	msg := b.Message
	if who != "" {
		msg = fmt.Sprintf("%s: %s", who, msg)
	}
	return b, &insitu.Error{Code: b.Code, Name: name, Msg: msg}
}
